// Files a package manager owns, read from its database under --root: Gentoo's
// /var/db/pkg/CATEGORY/PF/CONTENTS and dpkg's /var/lib/dpkg/info/PACKAGE.list. `remove` leaves
// them in place; removing the package deletes them (and keeps the package database true).
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pathExists } from '../fs.js';
import type { Paths } from '../paths.js';

/** What a package manager owns at or under one path kinstall was about to delete. */
export interface PackageOwned {
  /** The path asked about, as given (under the root). */
  path: string;
  /** The owning packages, as `sys-kernel/gentoo-kernel-6.1.0 (portage)` or `linux-image-6.1.0-1-amd64 (dpkg)`. */
  owners: string[];
  /** How many of the owned paths exist at or under it now. */
  count: number;
}

interface PackageFiles {
  owner: string;
  /** The database's text, and how to read the paths out of it. */
  text: string;
  parse: (text: string) => string[];
}

/** CONTENTS lines: `obj PATH MD5 MTIME`, `sym PATH -> TARGET MTIME`, `dir PATH` (also `dev`, `fif`); a PATH may hold spaces. */
export function parseContents(text: string): string[] {
  const owned: string[] = [];
  for (const line of text.split('\n')) {
    const kind = line.slice(0, 4);
    const rest = line.slice(4);
    if (kind === 'obj ') owned.push(rest.replace(/ [0-9a-f]+ [0-9]+$/, ''));
    else if (kind === 'sym ') owned.push(rest.split(' -> ')[0] ?? '');
    else if (kind === 'dir ' || kind === 'dev ' || kind === 'fif ') owned.push(rest);
  }
  return owned.filter((p) => p.startsWith('/'));
}

/** A dpkg .list: one path a line, the first being `/.`. */
export const parseDpkgList = (text: string): string[] => text.split('\n').filter((p) => p.startsWith('/') && p !== '/.');

async function* packageDatabases(paths: Paths): AsyncGenerator<PackageFiles> {
  const vdb = paths.under('/var/db/pkg');
  for (const category of await readdir(vdb).catch(() => [])) {
    for (const pf of await readdir(path.join(vdb, category)).catch(() => [])) {
      const text = await readFile(path.join(vdb, category, pf, 'CONTENTS'), 'utf8').catch(() => undefined);
      if (text !== undefined) yield { owner: `${category}/${pf} (portage)`, text, parse: parseContents };
    }
  }
  const dpkg = paths.under('/var/lib/dpkg/info');
  for (const name of await readdir(dpkg).catch(() => [])) {
    if (!name.endsWith('.list')) continue;
    const text = await readFile(path.join(dpkg, name), 'utf8').catch(() => undefined);
    if (text !== undefined) yield { owner: `${name.slice(0, -'.list'.length)} (dpkg)`, text, parse: parseDpkgList };
  }
}

/**
 * A target path with a merged-/usr top directory followed (`/lib` → `/usr/lib`), so Debian's
 * `/usr/lib/modules/…` and kinstall's `/lib/modules/…` name the same files.
 */
function canonicalizer(paths: Paths): (p: string) => Promise<string> {
  const tops = new Map<string, Promise<string>>();
  return async (p) => {
    const top = p.split('/')[1] ?? '';
    if (!tops.has(top)) {
      tops.set(
        top,
        readlink(paths.under(`/${top}`)).then(
          (t) => path.resolve('/', t),
          () => `/${top}`,
        ),
      );
    }
    const resolved = await (tops.get(top) ?? `/${top}`);
    return path.posix.join(resolved, p.slice(top.length + 1));
  };
}

/** Of the given paths (under the root), those at or under which a package owns files that exist. */
export async function findPackageOwned(paths: Paths, candidates: string[]): Promise<PackageOwned[]> {
  if (candidates.length === 0) return [];
  const canonical = canonicalizer(paths);
  const wanted = await Promise.all(candidates.map(async (c) => ({ path: c, target: await canonical(paths.inTarget(c)) })));
  const found = new Map<string, PackageOwned>();
  // Most packages own nothing there: a substring test skips them before any line is parsed.
  const tails = wanted.map((w) => w.target.slice(Math.max(0, w.target.indexOf('/', 1))));
  for await (const db of packageDatabases(paths)) {
    if (!tails.some((t) => db.text.includes(t))) continue;
    for (const owned of db.parse(db.text)) {
      const target = await canonical(owned);
      for (const w of wanted) {
        if (target !== w.target && !target.startsWith(`${w.target}/`)) continue;
        if (!(await pathExists(paths.under(target)))) continue;
        const entry = found.get(w.path) ?? { path: w.path, owners: [], count: 0 };
        if (!entry.owners.includes(db.owner)) entry.owners.push(db.owner);
        entry.count += 1;
        found.set(w.path, entry);
      }
    }
  }
  return [...found.values()];
}
