// The version-less links lilo.conf boots: vmlinuz → newest install, vmlinuz.old → the one before,
// the same pair for initramfs.img. Unlike compat, the links are created when they are missing; a
// removal moves them as compat's does, but one that leaves vmlinuz no kernel to name is refused.
import path from 'node:path';
import { KinstallError, pathExists, type Context, type Plan, type StagedKernel } from '../../src/core/plugin-api.js';
import { compatNames, imagePrefix } from '../shared/compat-files.js';

/** Adds the links compat only updates when they exist (it already moved existing ones). */
export async function planMissingLinks(ctx: Context, plan: Plan, kernel: StagedKernel): Promise<void> {
  const names = compatNames(kernel.version, imagePrefix(kernel));
  const pairs: Array<[string, string]> = [['vmlinuz', names.image]];
  if (kernel.initrd) pairs.push(['initramfs.img', names.initrd]);
  for (const [name, target] of pairs) {
    const link = path.join(ctx.paths.boot, name);
    if (!(await pathExists(link))) plan.link.push({ path: link, target });
  }
}

/**
 * Plans nothing: planCompatRemove already moved the links off `version`'s files (to the other
 * link's file or the newest remaining kernel), and removes vmlinuz when no kernel is left for it.
 * That removal is refused here: lilo would have nothing to boot.
 */
export function refuseRemovingLastKernel(ctx: Context, plan: Plan, version: string): void {
  const link = path.join(ctx.paths.boot, 'vmlinuz');
  if (plan.remove.includes(link)) {
    throw new KinstallError('EPREFLIGHT', {
      count: '1',
      summary: `refusing to remove ${version}: it is the last kernel ${link} can point at, and lilo would have nothing to boot`,
    });
  }
}
