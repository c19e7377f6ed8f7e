// The GRUB layout: compat files, then grub-mkconfig regenerates grub.cfg. The new grub.cfg is
// written beside the old one and handed to the transaction, so a failure restores both. A trial
// (add --try) then arms grubenv's next_entry (trial.ts).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  emptyPlan,
  isFile,
  KinstallError,
  type Context,
  type Layout,
  type StagedKernel,
  type TransactionHandle,
} from '../../src/core/plugin-api.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../shared/compat-files.js';
import { grubConfigPath, grubenvPath, grubSchema, mkconfigCommand } from './options.js';
import { armTrial, disarmRemoved, grubDefaultVersion, grubTrial } from './trial.js';

export { grubConfigPath } from './options.js';

/** What grub-mkconfig is told to write (`-o`), beside grub.cfg; it writes `.new` of that first. */
const temporaryOutputs = (hostCfg: string) => [`${hostCfg}.kinstall-new`, `${hostCfg}.kinstall-new.new`];

async function findInRoot(ctx: Context, command: string): Promise<string | undefined> {
  if (command.includes('/')) return (await isFile(ctx.paths.under(command))) ? command : undefined;
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (await isFile(ctx.paths.under(`${dir}/${command}`))) return `${dir}/${command}`;
  }
  return undefined;
}

/** Runs grub-mkconfig for the target: directly on the host, in a chroot under another --root. */
async function regenerate(ctx: Context, txn: TransactionHandle): Promise<void> {
  const cfg = grubConfigPath(ctx);
  const hostCfg = ctx.paths.under(cfg);
  const temp = `${cfg}.kinstall-new`;
  const hostTemp = ctx.paths.under(temp);
  const command = mkconfigCommand(ctx);
  try {
    if (ctx.isHostRoot) {
      await ctx.exec.run(command, ['-o', temp]);
    } else {
      // A failure is grub-mkconfig's, not chroot's: the message names it.
      await ctx.exec.run('chroot', [ctx.paths.root, command, '-o', temp]).catch((error: unknown) => {
        throw error instanceof KinstallError && error.code === 'ETOOL'
          ? error.withArgs({ tool: `${path.basename(command)} (in chroot ${ctx.paths.root})` })
          : error;
      });
    }
    if (!(await isFile(hostTemp))) {
      throw new KinstallError('ETOOL', { tool: 'grub-mkconfig', why: `it wrote no ${temp}` });
    }
    const plan = emptyPlan();
    if (await isFile(hostCfg)) plan.place.push({ from: hostCfg, to: `${hostCfg}~`, mode: 0o600 });
    plan.place.push({ from: hostTemp, to: hostCfg, mode: 0o600 });
    await txn.apply(plan);
  } finally {
    // grub-mkconfig leaves OUT.new behind when a script fails.
    await Promise.all(temporaryOutputs(hostCfg).map((file) => rm(file, { force: true })));
  }
}

/** grub.cfg regenerated; for a trial, grubenv armed against the default the old grub.cfg had. */
async function activate(ctx: Context, kernel: StagedKernel, txn: TransactionHandle): Promise<void> {
  const previous = kernel.trial ? await grubDefaultVersion(ctx) : undefined;
  await regenerate(ctx, txn);
  if (kernel.trial) await armTrial(ctx, kernel.version, previous, txn);
}

/** A grub-mkconfig killed with kinstall leaves its output beside grub.cfg, which no journal names. */
async function sweep(ctx: Context): Promise<string[]> {
  const swept: string[] = [];
  for (const file of temporaryOutputs(ctx.paths.under(grubConfigPath(ctx)))) {
    if (!(await isFile(file))) continue;
    await rm(file, { force: true });
    swept.push(file);
  }
  return swept;
}

/** The compat files, the default being what GRUB boots by default (grub.cfg and grubenv), when it can tell. */
async function list(ctx: Context) {
  const kernels = await listCompatKernels(ctx, 'grub');
  const selected = await grubDefaultVersion(ctx);
  return selected === undefined ? kernels : kernels.map((k) => ({ ...k, isDefault: k.version === selected }));
}

export const grubLayout: Layout = {
  name: 'grub',
  optionSchema: grubSchema,
  async inUse(ctx) {
    const cfg = ctx.paths.under(grubConfigPath(ctx));
    return (await isFile(cfg)) ? `${cfg} exists` : undefined;
  },
  requiredTools: (ctx) => (ctx.isHostRoot ? [mkconfigCommand(ctx)] : ['chroot']),
  async preflight(ctx) {
    const problems = await compatPreflight(ctx);
    if (!ctx.isHostRoot && !(await findInRoot(ctx, mkconfigCommand(ctx)))) {
      problems.push(`${mkconfigCommand(ctx)} is not installed in ${ctx.paths.root} (grub-mkconfig runs inside the root)`);
    }
    return problems;
  },
  async plan(ctx, kernel) {
    const plan = await planCompatFiles(ctx, kernel);
    plan.notes = [
      `then run ${mkconfigCommand(ctx)} -o ${grubConfigPath(ctx)}${ctx.isHostRoot ? '' : ` (in chroot ${ctx.paths.root})`}`,
      ...(kernel.trial
        ? [`then set next_entry in ${grubenvPath(ctx)} to ${kernel.version}'s entry (boots once; saved_entry stays the default)`]
        : []),
    ];
    return plan;
  },
  // grub.cfg lists every kernel in the boot dir: regenerating it is the same for any kernel.
  activate: (ctx, kernel, _plan, txn) => activate(ctx, kernel, txn),
  planRemove: planCompatRemove,
  // grub.cfg must stop naming the removed kernel: regenerated the same way, rolled back the same way;
  // a trial of it that never booted leaves no next_entry.
  async deactivate(ctx, version, _plan, txn) {
    await regenerate(ctx, txn);
    await disarmRemoved(ctx, version, txn);
  },
  sweep,
  list,
  trial: grubTrial,
};
