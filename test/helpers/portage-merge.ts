// What portage does between the phases, for the packaging tests: merge an image into a root and
// record it in /var/db/pkg/CATEGORY/PF/CONTENTS (obj, dir, sym lines), unmerge a package's files
// (never a path another installed package lists, never a file changed since the merge, directories
// only when empty), and drop its database entry after pkg_postrm.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { assertScratch } from './root.js';

export interface InstalledPackage {
  category: string;
  /** The database entry's name: PF, or `-MERGING-PF` while a replacement is being merged. */
  entry: string;
}

const vdb = (root: string) => path.join(root, 'var/db/pkg');
const entryDir = (root: string, pkg: InstalledPackage) => path.join(vdb(root), pkg.category, pkg.entry);

/** Copies the image into the root (replacing what is there) and writes the CONTENTS and saved environment. */
export function mergeImage(image: string, root: string, pkg: InstalledPackage, environment: string): void {
  assertScratch(root);
  const lines: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(image, rel)).sort()) {
      const itemRel = path.join(rel, name);
      const from = path.join(image, itemRel);
      const to = path.join(root, itemRel);
      const info = lstatSync(from);
      if (info.isDirectory()) {
        mkdirSync(to, { recursive: true, mode: info.mode & 0o7777 });
        lines.push(`dir /${itemRel}`);
        walk(itemRel);
      } else if (info.isSymbolicLink()) {
        rmSync(to, { force: true });
        symlinkSync(readlinkSync(from), to);
        lines.push(`sym /${itemRel} -> ${readlinkSync(from)} ${Math.floor(lstatSync(to).mtimeMs / 1000)}`);
      } else {
        rmSync(to, { force: true });
        copyFileSync(from, to);
        const md5 = createHash('md5').update(readFileSync(to)).digest('hex');
        lines.push(`obj /${itemRel} ${md5} ${Math.floor(lstatSync(to).mtimeMs / 1000)}`);
      }
    }
  };
  walk('');
  mkdirSync(entryDir(root, pkg), { recursive: true });
  writeFileSync(path.join(entryDir(root, pkg), 'CONTENTS'), `${lines.join('\n')}\n`);
  copyFileSync(environment, path.join(entryDir(root, pkg), 'environment'));
}

/** Every path the other installed packages list. */
function pathsOfOthers(root: string, pkg: InstalledPackage): Set<string> {
  const owned = new Set<string>();
  for (const category of readdirSync(vdb(root))) {
    for (const entry of readdirSync(path.join(vdb(root), category))) {
      if (category === pkg.category && entry === pkg.entry) continue;
      for (const line of readFileSync(path.join(vdb(root), category, entry, 'CONTENTS'), 'utf8').split('\n')) {
        const m = /^(?:obj|dir|sym) (\/.*?)(?: -> .*| [0-9a-f]{32} [0-9]+)?$/.exec(line);
        if (m?.[1]) owned.add(m[1]);
      }
    }
  }
  return owned;
}

/** Deletes the package's files as portage's unmerge does (between pkg_prerm and pkg_postrm). */
export function unmergeFiles(root: string, pkg: InstalledPackage): void {
  assertScratch(root);
  const others = pathsOfOthers(root, pkg);
  const dirs: string[] = [];
  for (const line of readFileSync(path.join(entryDir(root, pkg), 'CONTENTS'), 'utf8').split('\n')) {
    const [kind] = line.split(' ', 1);
    if (kind === 'dir') {
      dirs.push(line.slice(4));
      continue;
    }
    const m =
      kind === 'obj'
        ? /^obj (.*) [0-9a-f]{32} ([0-9]+)$/.exec(line)
        : kind === 'sym'
          ? /^sym (.*) -> .* ([0-9]+)$/.exec(line)
          : null;
    if (!m?.[1] || others.has(m[1])) continue;
    const file = path.join(root, m[1]);
    if (!existsSync(file) && !isLink(file)) continue;
    // Portage leaves a file whose mtime changed since the merge ("!mtime").
    if (kind === 'obj' && String(Math.floor(lstatSync(file).mtimeMs / 1000)) !== m[2]) continue;
    unlinkSync(file);
  }
  for (const dir of dirs.sort((a, b) => b.length - a.length)) {
    const full = path.join(root, dir);
    if (others.has(dir) || !existsSync(full) || isLink(full) || readdirSync(full).length > 0) continue;
    rmdirSync(full);
  }
}

const isLink = (p: string) => {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
};

/** Removes the package's database entry (after its pkg_postrm). */
export function dropEntry(root: string, pkg: InstalledPackage): void {
  assertScratch(root);
  rmSync(entryDir(root, pkg), { recursive: true, force: true });
}

/** A replacement's entry takes the place of the one it replaced: `-MERGING-PF` becomes `PF`. */
export function settleEntry(root: string, merging: InstalledPackage, pf: string): void {
  assertScratch(root);
  renameSync(entryDir(root, merging), entryDir(root, { category: merging.category, entry: pf }));
}
