// Try-once boots by the Boot Loader Specification's boot counting, for the bls and uki layouts: a
// trial's file is TOKEN-KVER+1.EXT; systemd-boot renames it +0-1 when it starts it, and an entry
// with no tries left sorts below every other, so the boot after a failed trial takes the previous
// kernel. Confirming renames it without the counter, as systemd-bless-boot does.
import path from 'node:path';
import {
  compareVersions,
  emptyPlan,
  type Context,
  type InstalledKernel,
  type TransactionHandle,
  type TrialSupport,
} from '../../src/core/plugin-api.js';
import { bootCounter, versionFiles } from './bls-naming.js';
import type { BootTarget } from './boot-target.js';

/** Where a layout keeps its counted files: the directory and extension, given the boot target. */
export interface CountedFiles {
  dir(target: BootTarget): string;
  ext: string;
  findTarget(ctx: Context): Promise<BootTarget | undefined>;
  /** The layout's kernels, the default marked. */
  list(ctx: Context): Promise<InstalledKernel[]>;
}

/** The name without its counter: `TOKEN-KVER.EXT`. */
const uncounted = (name: string, ext: string) => name.replace(new RegExp(`\\+\\d+(?:-\\d+)?${ext.replace('.', '\\.')}$`), ext);

export function countedTrial(files: CountedFiles): TrialSupport {
  const versionNames = async (ctx: Context, version: string) => {
    const target = await files.findTarget(ctx);
    return target ? versionFiles(files.dir(target), target.token, version, files.ext) : [];
  };
  return {
    // systemd-boot starts the highest version: a trial below the default would never be tried.
    async preflight(ctx, kernel) {
      const current = (await files.list(ctx)).find((k) => k.isDefault && k.version !== kernel.version);
      if (!current || compareVersions(kernel.version, current.version) > 0) return [];
      return [
        `${kernel.version} sorts below the default ${current.version}: systemd-boot starts the newest entry, so it would never be tried (install it without --try, then choose it in the boot menu)`,
      ];
    },
    async state(ctx, version) {
      const [file] = await versionNames(ctx, version);
      if (!file) return undefined;
      const counter = bootCounter(path.basename(file), files.ext);
      if (!counter) return 'default';
      return counter.left > 0 ? 'armed' : 'spent';
    },
    async confirm(ctx: Context, version: string, txn: TransactionHandle) {
      const plan = emptyPlan();
      for (const file of await versionNames(ctx, version)) {
        const name = path.basename(file);
        if (!bootCounter(name, files.ext)) continue;
        const to = path.join(path.dirname(file), uncounted(name, files.ext));
        plan.place.push({ from: file, to, mode: 0o644 });
        plan.remove.push(file);
        ctx.log.info(`confirming ${version}: ${name} becomes ${path.basename(to)} (no boot counting: a good entry)`);
      }
      if (plan.place.length > 0) await txn.apply(plan);
    },
  };
}
