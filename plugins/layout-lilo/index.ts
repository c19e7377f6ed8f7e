// The LILO layout: compat files in the boot dir, the vmlinuz/vmlinuz.old (and initramfs.img) links
// always maintained, then lilo rewrites its map. lilo records the files' disk sectors, so whenever a
// rollback restores the old files, lilo runs again on them (registered with the transaction).
import { isFile, type Context, type Layout, type TransactionHandle } from '../../src/core/plugin-api.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../shared/compat-files.js';
import { checkLiloConf, liloCommand, liloConfig, liloOptions, liloSchema } from './conf.js';
import { planMissingLinks, refuseRemovingLastKernel } from './links.js';

/** `lilo -C CONF`, with `-r ROOT` under another root: lilo chroots there before reading anything. */
function liloArgs(ctx: Context, extra: string[]): string[] {
  return [...extra, ...(ctx.isHostRoot ? [] : ['-r', ctx.paths.root]), '-C', liloConfig(ctx)];
}

/** lilo's map written from the files as they are now (`lilo -t` first unless testFirst is false). */
async function rewriteMap(ctx: Context): Promise<void> {
  const command = liloCommand(ctx);
  if (liloOptions(ctx).testFirst !== false) await ctx.exec.run(command, liloArgs(ctx, ['-t']));
  await ctx.exec.run(command, liloArgs(ctx, []), { streamOutput: true });
}

async function runLilo(ctx: Context, txn: TransactionHandle): Promise<void> {
  const command = liloCommand(ctx);
  txn.onRollback(async () => {
    ctx.log.warn(`running ${command} again on the restored files, so the boot map matches them`);
    await ctx.exec.run(command, liloArgs(ctx, []), { streamOutput: true });
  });
  await rewriteMap(ctx);
}

export const liloLayout: Layout = {
  name: 'lilo',
  architectures: ['x86', 'x86_64'],
  optionSchema: liloSchema,
  async inUse(ctx) {
    const conf = ctx.paths.under(liloConfig(ctx));
    return (await isFile(conf)) ? `${conf} exists` : undefined;
  },
  requiredTools: (ctx) => [liloCommand(ctx)],
  async preflight(ctx, kernel) {
    return [...(await compatPreflight(ctx)), ...(await checkLiloConf(ctx, kernel.initrd !== undefined))];
  },
  async plan(ctx, kernel) {
    const plan = await planCompatFiles(ctx, kernel);
    await planMissingLinks(ctx, plan, kernel);
    plan.notes = [`then run ${[liloCommand(ctx), ...liloArgs(ctx, [])].join(' ')}`];
    return plan;
  },
  // lilo maps every image lilo.conf names: the run is the same for any kernel.
  activate: (ctx, _kernel, _plan, txn) => runLilo(ctx, txn),
  async planRemove(ctx, version) {
    const plan = await planCompatRemove(ctx, version);
    refuseRemovingLastKernel(ctx, plan, version);
    return plan;
  },
  deactivate: (ctx, _version, _plan, txn) => runLilo(ctx, txn),
  // After a crash the files are back as before the dead run: lilo's map must name them again.
  recover: (ctx) => rewriteMap(ctx),
  list: (ctx) => listCompatKernels(ctx, 'lilo'),
};
