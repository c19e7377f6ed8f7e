// The LILO layout: compat files in the boot dir, the vmlinuz/vmlinuz.old (and initramfs.img) links
// always maintained, then lilo rewrites its map. lilo records the files' disk sectors, so whenever a
// rollback restores the old files, lilo runs again on them (registered with the transaction). A trial
// (add --try) keeps the old label the default and boots the new one once (trial.ts).
import { isFile, type Layout } from '../../src/core/plugin-api.js';
import { compatPreflight, listCompatKernels, planCompatFiles, planCompatRemove } from '../shared/compat-files.js';
import { checkLiloConf, liloCommand, liloConfig, liloSchema } from './conf.js';
import { planMissingLinks, refuseRemovingLastKernel } from './links.js';
import { liloArgs, noteDefault, rewriteMap, runLilo } from './run.js';
import { armTrial, liloTrial, trialNote } from './trial.js';

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
    plan.notes = [kernel.trial ? await trialNote(ctx) : `then run ${[liloCommand(ctx), ...liloArgs(ctx, [])].join(' ')}`];
    return plan;
  },
  // lilo maps every image lilo.conf names: the run is the same for any kernel.
  activate: (ctx, kernel, _plan, txn) => (kernel.trial ? armTrial(ctx, txn) : runLilo(ctx, txn)),
  async planRemove(ctx, version) {
    const plan = await planCompatRemove(ctx, version);
    refuseRemovingLastKernel(ctx, plan, version);
    return plan;
  },
  deactivate: (ctx, _version, _plan, txn) => runLilo(ctx, txn),
  // After a crash the files are back as before the dead run: lilo's map must name them again, with
  // the default a dead confirm's note names (the trial's old label), else lilo.conf's.
  recover: (ctx, note) => rewriteMap(ctx, noteDefault(note)),
  list: (ctx) => listCompatKernels(ctx, 'lilo'),
  trial: liloTrial,
};
