// The version-less links lilo.conf boots: vmlinuz → newest install, vmlinuz.old → the one before,
// the same pair for initramfs.img. Unlike compat, the links are created when they are missing; a
// removal moves them as compat's does, but one that leaves vmlinuz no kernel to name is refused.
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../../src/core/context.js';
import { KinstallError } from '../../src/core/errors.js';
import type { Plan, StagedKernel } from '../../src/core/types.js';
import { compatNames, imagePrefix } from '../layout-compat/index.js';

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

/**
 * planCompatRemove already moved the links off `version`'s files (to the other link's file or the
 * newest remaining kernel, or removed them with nothing left). Removing the kernel vmlinuz needs
 * when no other remains is refused: lilo would have nothing to boot.
 */
export async function planLinksAfterRemove(ctx: Context, plan: Plan, version: string): Promise<void> {
  const link = path.join(ctx.paths.boot, 'vmlinuz');
  if (plan.remove.includes(link)) {
    throw new KinstallError('EPREFLIGHT', {
      count: '1',
      summary: `refusing to remove ${version}: it is the last kernel ${link} can point at, and lilo would have nothing to boot`,
    });
  }
}
