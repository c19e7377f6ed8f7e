// The LILO layout: compat files in the boot dir, the vmlinuz/vmlinuz.old (and initramfs.img) links
// always maintained, then lilo rewrites its map. lilo records the files' disk sectors, so whenever a
// rollback restores the old files, lilo runs again on them (registered with the transaction).
import { stat } from 'node:fs/promises';
import type { Context } from '../../src/core/context.js';
import type { Layout, TransactionHandle } from '../../src/core/types.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../layout-compat/index.js';
import { checkLiloConf, liloCommand, liloConfig, liloOptions, liloSchema } from './conf.js';
import { planLinksAfterRemove, planMissingLinks } from './links.js';

/** `lilo -C CONF`, with `-r ROOT` under another root: lilo chroots there before reading anything. */
function liloArgs(ctx: Context, extra: string[]): string[] {
  return [...extra, ...(ctx.isHostRoot ? [] : ['-r', ctx.paths.root]), '-C', liloConfig(ctx)];
}

async function runLilo(ctx: Context, txn: TransactionHandle): Promise<void> {
  const command = liloCommand(ctx);
  txn.onRollback(async () => {
    ctx.log.warn(`running ${command} again on the restored files, so the boot map matches them`);
    await ctx.exec.run(command, liloArgs(ctx, []), { streamOutput: true });
  });
  if (liloOptions(ctx).testFirst !== false) await ctx.exec.run(command, liloArgs(ctx, ['-t']));
  await ctx.exec.run(command, liloArgs(ctx, []), { streamOutput: true });
}

export const liloLayout: Layout = {
  name: 'lilo',
  architectures: ['x86', 'x86_64'],
  optionSchema: liloSchema,
  async detect(ctx) {
    const conf = ctx.paths.under(liloConfig(ctx));
    return (await stat(conf).then((s) => s.isFile(), () => false)) ? `${conf} exists` : undefined;
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
  activate: (ctx, _plan, txn) => runLilo(ctx, txn),
  async planRemove(ctx, version) {
    const plan = await planCompatRemove(ctx, version);
    if (plan.remove.length > 0) await planLinksAfterRemove(ctx, plan, version);
    return plan;
  },
  deactivate: (ctx, _version, _plan, txn) => runLilo(ctx, txn),
  list: (ctx) => listCompatKernels(ctx, 'lilo'),
};
