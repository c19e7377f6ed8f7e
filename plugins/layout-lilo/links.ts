// The version-less links lilo.conf boots: vmlinuz → newest install, vmlinuz.old → the one before,
// the same pair for initramfs.img. Unlike compat, the links are created when they are missing, and a
// removal moves them to the kernels that remain.
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../../src/core/context.js';
import { KinstallError } from '../../src/core/errors.js';
import type { Plan, StagedKernel } from '../../src/core/types.js';
import { compareVersions } from '../../src/core/versions.js';
import { compatNames, imagePrefix, listCompatKernels } from '../layout-compat/index.js';

const lstatOrUndefined = (p: string) => lstat(p).catch(() => undefined);

/** Adds the links compat only updates when they exist (it already moved existing ones). */
export async function planMissingLinks(ctx: Context, plan: Plan, kernel: StagedKernel): Promise<void> {
  const names = compatNames(kernel.version, imagePrefix(kernel));
  const pairs: Array<[string, string]> = [['vmlinuz', names.image]];
  if (kernel.initrd) pairs.push(['initramfs.img', names.initrd]);
  for (const [name, target] of pairs) {
    const link = path.join(ctx.paths.boot, name);
    if (!(await lstatOrUndefined(link))) plan.link.push({ path: link, target });
  }
}

interface LinkPair {
  name: string;
  /** The file name this role has for a remaining version. */
  fileOf(version: string, image: string): string;
}

const PAIRS: LinkPair[] = [
  { name: 'vmlinuz', fileOf: (_v, image) => image },
  { name: 'initramfs.img', fileOf: (v) => compatNames(v).initrd },
];

/** Where a link points, when it is a symlink; null for a regular file (left alone), undefined when absent. */
async function linkTarget(file: string): Promise<string | null | undefined> {
  const info = await lstatOrUndefined(file);
  if (!info) return undefined;
  return info.isSymbolicLink() ? readlink(file) : null;
}

/**
 * Re-points the links after `version`'s files are removed: a link to a removed file moves to the
 * other link's file or to the newest remaining kernel; with nothing left it goes too. Removing the
 * kernel vmlinuz needs when no other remains is refused: lilo would have nothing to boot.
 */
export async function planLinksAfterRemove(ctx: Context, plan: Plan, version: string): Promise<void> {
  const boot = ctx.paths.boot;
  const gone = new Set(plan.remove.map((p) => path.basename(p)));
  const remaining = (await listCompatKernels(ctx, 'lilo'))
    .filter((k) => k.version !== version)
    .sort((a, b) => compareVersions(b.version, a.version))
    .map((k) => ({ version: k.version, image: path.basename(k.files[0] ?? '') }));
  for (const pair of PAIRS) {
    const currentPath = path.join(boot, pair.name);
    const [current, old] = await Promise.all([linkTarget(currentPath), linkTarget(`${currentPath}.old`)]);
    if (current === null || old === null) continue;
    const valid = async (name: string | undefined) => name !== undefined && !gone.has(name) && (await lstatOrUndefined(path.join(boot, name)))?.isFile() === true;
    const pool: string[] = [];
    for (const name of [current, old, ...remaining.map((k) => pair.fileOf(k.version, k.image))]) {
      if (name !== undefined && !pool.includes(name) && (await valid(name))) pool.push(name);
    }
    // Only a link to a removed file moves; a missing .old stays missing.
    const newCurrent = current !== undefined && !(await valid(current)) ? pool[0] : current;
    const oldMoves = old !== undefined && (old === newCurrent || !(await valid(old)));
    const newOld = oldMoves ? pool.find((n) => n !== newCurrent) : old;
    if (pair.name === 'vmlinuz' && current !== undefined && newCurrent === undefined) {
      throw new KinstallError('EPREFLIGHT', {
        count: '1',
        summary: `refusing to remove ${version}: it is the last kernel ${path.join(boot, 'vmlinuz')} can point at, and lilo would have nothing to boot`,
      });
    }
    for (const [file, before, after] of [[currentPath, current, newCurrent], [`${currentPath}.old`, old, newOld]] as const) {
      if (before === after) continue;
      if (after === undefined) plan.remove.push(file);
      else plan.link.push({ path: file, target: after });
    }
  }
}
