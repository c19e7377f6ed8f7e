// The GRUB layout: compat files, then grub-mkconfig regenerates grub.cfg. The new grub.cfg is
// written beside the old one and handed to the transaction, so a failure restores both.
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../../src/core/context.js';
import { KinstallError } from '../../src/core/errors.js';
import { emptyPlan, type Layout, type Plan } from '../../src/core/types.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../layout-compat/index.js';

interface GrubOptions {
  cfg?: string;
  mkconfig?: string;
}

const options = (ctx: Context): GrubOptions => (ctx.settings.pluginOptions.grub ?? {}) as GrubOptions;

/** grub.cfg as the target system names it: GRUB_CFG, then the config file, then <boot>/grub/grub.cfg. */
export function grubConfigPath(ctx: Context): string {
  return ctx.env.GRUB_CFG || options(ctx).cfg || path.posix.join(ctx.settings.bootDir, 'grub/grub.cfg');
}

const mkconfigCommand = (ctx: Context) => options(ctx).mkconfig ?? 'grub-mkconfig';

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

async function findInRoot(ctx: Context, command: string): Promise<string | undefined> {
  if (command.includes('/')) return (await isFile(ctx.paths.under(command))) ? command : undefined;
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (await isFile(ctx.paths.under(`${dir}/${command}`))) return `${dir}/${command}`;
  }
  return undefined;
}

/** Runs grub-mkconfig for the target: directly on the host, in a chroot under another --root. */
async function regenerate(ctx: Context, txn: { apply(plan: Plan): Promise<void> }): Promise<void> {
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
        throw error instanceof KinstallError && error.code === 'ETOOL' ? error.withArgs({ tool: `${path.basename(command)} (in chroot ${ctx.paths.root})` }) : error;
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
    // grub-mkconfig writes OUT.new first and leaves it behind when a script fails.
    await Promise.all([rm(hostTemp, { force: true }), rm(`${hostTemp}.new`, { force: true })]);
  }
}

export const grubLayout: Layout = {
  name: 'grub',
  optionSchema: { cfg: 'string', mkconfig: 'string' },
  async detect(ctx) {
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
    plan.notes = [`then run ${mkconfigCommand(ctx)} -o ${grubConfigPath(ctx)}${ctx.isHostRoot ? '' : ` (in chroot ${ctx.paths.root})`}`];
    return plan;
  },
  activate: (ctx, _plan, txn) => regenerate(ctx, txn),
  planRemove: planCompatRemove,
  // grub.cfg must stop naming the removed kernel: regenerated the same way, rolled back the same way.
  deactivate: (ctx, _version, _plan, txn) => regenerate(ctx, txn),
  list: (ctx) => listCompatKernels(ctx, 'grub'),
};
