// `kinstall add` and `installkernel`: the install pipeline as a table of steps over one state
// (the steps are in add-steps.ts), then the history line and the prune of old kernels.
import type { Context } from '../context.js';
import { ExitCode, isKinstallError, KinstallError, errorMessage } from '../errors.js';
import { recordHistory } from '../pipeline/history.js';
import { listHookOrder, type HookListing } from '../pipeline/hooks/discover.js';
import { createStagingArea, runPipeline, type Step } from '../pipeline/pipeline.js';
import { checkBootability } from '../pipeline/bootability.js';
import { checkPlanTargets, runPreflight } from '../pipeline/preflight.js';
import { signingConfigured, signPlannedFiles } from '../pipeline/sign.js';
import { transactionFor } from '../transaction/transaction.js';
import { emptyPlan, type Plan } from '../types.js';
import { initramfsMadeAheadOrNow } from './add-ahead.js';
import { findHooks, postinst, preinst } from './add-hooks.js';
import {
  activate,
  commit,
  depmod,
  generatorName,
  modulesInstalled,
  placeInNeutralLocation,
  plan,
  recordTrial,
  resolve,
  resolvedOf,
  startIndexCheck,
  type InstallInput,
  type InstallState,
} from './add-steps.js';
import { ensureSpace } from './make-room.js';
import { pruneKernels } from './prune.js';

export interface InstallResult {
  version: string;
  layout: string;
  initrdGenerator: string;
  dryRun: boolean;
  /** The files placed into the neutral location. */
  staged: string[];
  installed: string[];
  plan: Plan;
  hooks: { preinst: string[]; postinst: string[] };
  /** Every hook of both phases in the order it runs (or would, under --dry-run), skipped ones with their reason. */
  hookOrder: HookListing[];
  /** Kernels removed afterwards to honour `keep`. */
  pruned: string[];
  /** Old kernels removed in the install's transaction to make room for it (--make-room). */
  madeRoom: string[];
  /** Installed as a trial (--try): booted once, `previous` stays the default until kinstall confirm. */
  trial?: { previous?: string };
}

const installSteps: Step<InstallState>[] = [
  { name: 'resolve', run: resolve },
  {
    name: 'preflight',
    run: (s) => {
      startIndexCheck(s);
      return runPreflight(s.ctx, resolvedOf(s));
    },
  },
  { name: 'bootability', run: (s) => checkBootability(s.ctx, resolvedOf(s)) },
  { name: 'hooks', run: findHooks },
  { name: 'stage', mutates: true, run: placeInNeutralLocation },
  { name: 'depmod', mutates: true, enabled: modulesInstalled, run: depmod },
  // preinst before the initramfs, so that modules a hook adds (DKMS) are in it, as on Debian and
  // with Gentoo's installkernel, where the initramfs is made by a hook sorted among the others.
  { name: 'preinst', mutates: true, run: preinst },
  { name: 'initramfs', mutates: true, run: initramfsMadeAheadOrNow },
  { name: 'plan', run: plan },
  { name: 'sign', enabled: (s) => signingConfigured(s.ctx), run: signPlannedFiles },
  { name: 'targets', run: (s) => checkPlanTargets(s.plan, s.ctx) },
  {
    name: 'space',
    enabled: (s) => !s.ctx.request.dryRun,
    run: (s) => ensureSpace(s, resolvedOf(s).kernel.version, s.input.shippedHooksDir),
  },
  { name: 'commit', mutates: true, run: commit },
  { name: 'activate', mutates: true, run: activate },
  { name: 'trial', mutates: true, enabled: (s) => resolvedOf(s).kernel.trial === true, run: recordTrial },
  { name: 'postinst', mutates: true, run: postinst },
];

export async function installKernel(ctx: Context, input: InstallInput): Promise<InstallResult> {
  // The staging area of an initramfs made ahead is its caller's to remove.
  const stagingArea = input.ahead
    ? { path: input.ahead.stagingArea, cleanup: async () => undefined }
    : await createStagingArea(ctx);
  const state: InstallState = {
    ctx,
    input,
    txn: transactionFor(ctx),
    stagingArea: stagingArea.path,
    staged: [],
    plan: emptyPlan(),
  };
  try {
    await runPipeline(installSteps, state);
    const resolved = resolvedOf(state);
    const { version } = resolved.kernel;
    const result: InstallResult = {
      version,
      layout: resolved.layout.name,
      initrdGenerator: generatorName(resolved),
      dryRun: ctx.request.dryRun,
      staged: state.staged,
      installed: [
        ...state.plan.place.map((p) => p.to),
        ...state.plan.write.map((w) => w.path),
        ...state.plan.link.map((l) => l.path),
      ],
      plan: state.plan,
      hooks: { preinst: state.preinst?.ran ?? [], postinst: state.postinst?.ran ?? [] },
      hookOrder: state.hookOrder ? listHookOrder([state.hookOrder.preinst, state.hookOrder.postinst]) : [],
      pruned: [],
      madeRoom: state.madeRoom?.results.map((r) => r.version) ?? [],
      trial: resolved.kernel.trial ? { previous: state.trialPrevious } : undefined,
    };
    // Step 11, after the install is final: a failed prune never undoes the install (EPRUNE, exit 7).
    let pruneError: unknown;
    if (!ctx.request.dryRun) {
      await state.txn.finish();
      const ran = [...result.hooks.preinst, ...result.hooks.postinst];
      const done = [...(state.preinst?.done ?? []), ...(state.postinst?.done ?? [])];
      const initrd = state.plan.place.find((p) => p.from === resolved.kernel.initrd)?.to;
      const event = {
        action: 'install' as const,
        version,
        layout: result.layout,
        initrdGenerator: result.initrdGenerator,
        files: result.installed,
        image: state.plan.image,
        initrd,
        hooks: ran,
        trial: result.trial,
      };
      await state.madeRoom?.record();
      await recordHistory(ctx, event, { installkernelLog: !done.includes('history') });
      ctx.log.info(`installed ${version} (${resolved.layout.name})`);
      result.pruned = await pruneAfterInstall(ctx, version, input.shippedHooksDir).catch((error: unknown) => {
        pruneError = error;
        return [];
      });
    }
    const failed = state.postinst?.failed ?? [];
    if (failed.length > 0) {
      throw new KinstallError('EPOSTINST', {
        count: String(failed.length),
        hooks: failed.map((f) => `${f.hook} (exit ${f.status})`).join(', '),
      });
    }
    if (pruneError !== undefined) throw pruneError;
    return result;
  } finally {
    await stagingArea.cleanup();
  }
}

/**
 * Step 11 of add, after the install is final: a failed prune never undoes the install, but it is
 * an error (EPRUNE, exit 7) rather than a line in the log. A prune whose rollback failed stays
 * EROLLBACK: the boot dir needs a look.
 */
export async function pruneAfterInstall(ctx: Context, installed: string, shippedHooksDir?: string): Promise<string[]> {
  const keep = ctx.settings.keep;
  if (keep === undefined) return [];
  try {
    return (await pruneKernels(ctx, { keep, protect: [installed], shippedHooksDir })).removed.map((r) => r.version);
  } catch (error) {
    if (isKinstallError(error) && error.exitCode === ExitCode.rollbackFailed) throw error;
    const why = isKinstallError(error) ? `${error.code}: ${error.summary}` : errorMessage(error);
    const details = isKinstallError(error) ? error.details : [];
    throw new KinstallError('EPRUNE', { why, outcome: 'the old kernels are as before' }, details, { cause: error });
  }
}
