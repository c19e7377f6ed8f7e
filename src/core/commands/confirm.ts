// `kinstall confirm` and `kinstall status`: after the reboot. confirm makes a trial kernel that came
// up the default of every later boot (the boot-time units run it); status shows each kernel's state.
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { recordHistory } from '../pipeline/history.js';
import { runPipeline, type PipelineState } from '../pipeline/pipeline.js';
import {
  describeTrialState,
  planTrialRecord,
  readTrialRecord,
  trialStates,
  warnFallbackOnce,
  type TrialRecord,
  type TrialState,
} from '../pipeline/trial.js';
import { transactionFor } from '../transaction/transaction.js';
import { listKernels, type ListedKernel } from './list.js';

export interface ConfirmResult {
  version: string;
  /** The layouts it was confirmed in; empty when there was nothing to confirm. */
  layouts: string[];
  confirmed: boolean;
  /** Why nothing was done, when nothing was. */
  reason?: string;
  dryRun: boolean;
}

interface ConfirmState extends PipelineState {
  version: string;
  kernels: ListedKernel[];
  record?: TrialRecord;
}

/** The kernel that booted: VERSION, else the running one; under another --root it must be given. */
function bootedVersion(ctx: Context, version: string | undefined): string {
  if (version !== undefined) return version;
  if (ctx.isHostRoot) return ctx.runningRelease;
  throw new KinstallError('EUSAGE', {
    what: `under --root ${ctx.paths.root}, confirm needs the VERSION that booted (the running kernel is the host's)`,
  });
}

/** Which of the kernel's installs are on trial: the loader still counts or steers it, or the record names it. */
async function onTrial(ctx: Context, kernels: ListedKernel[], record?: TrialRecord): Promise<ListedKernel[]> {
  const states = await trialStates(ctx, kernels);
  return kernels.filter((k) => {
    const state = states.get(`${k.version}\0${k.layout}`);
    if (state === 'pending' || state === 'booted' || state === 'failed') return true;
    return record?.version === k.version && record.layout === k.layout && !record.confirmed && !k.isDefault;
  });
}

async function confirmInLayouts(state: ConfirmState): Promise<void> {
  const { ctx, version, kernels, record } = state;
  // The layouts' tools read the files as they are on the disk (lilo maps their blocks).
  await state.txn.settle();
  for (const kernel of kernels) {
    const layout = ctx.registry.layouts.find((l) => l.name === kernel.layout);
    await layout?.trial?.confirm(ctx, version, state.txn.forLayout(kernel.layout));
  }
  if (record?.version === version) {
    await state.txn.apply(planTrialRecord(ctx, { ...record, confirmed: new Date().toISOString() }));
  }
}

export async function confirmKernel(ctx: Context, requested?: string): Promise<ConfirmResult> {
  const version = bootedVersion(ctx, requested);
  const dryRun = ctx.request.dryRun;
  const installed = (await listKernels(ctx)).filter((k) => k.version === version);
  const nothing = (reason: string): ConfirmResult => {
    ctx.log.info(`${version}: ${reason}; nothing to confirm`);
    return { version, layouts: [], confirmed: false, reason, dryRun };
  };
  if (installed.length === 0) return nothing('not installed in any layout kinstall manages');
  const record = await readTrialRecord(ctx);
  const trials = await onTrial(ctx, installed, record);
  if (trials.length === 0) return nothing('not on trial');
  const state: ConfirmState = { ctx, txn: transactionFor(ctx), version, kernels: trials, record };
  await runPipeline([{ name: 'confirm', mutates: true, run: confirmInLayouts }], state);
  const layouts = trials.map((k) => k.layout);
  if (!dryRun) {
    await state.txn.finish();
    await recordHistory(
      ctx,
      { action: 'confirm', version, layout: layouts.join('+'), initrdGenerator: '-', files: [], hooks: [] },
      { installkernelLog: false },
    );
    ctx.log.info(`confirmed ${version} (${layouts.join('+')}): it is the default from the next boot on`);
  }
  return { version, layouts, confirmed: !dryRun, dryRun };
}

export interface KernelStatus {
  version: string;
  layout: string;
  default: boolean;
  running: boolean;
  /** Its trial: pending, booted (not confirmed yet), failed (fell back), confirmed; null when it was never one. */
  trial: TrialState | null;
  /** One phrase: "default", "trial pending", ..., as status prints it. */
  state: string;
  entry?: string;
}

/** Every installed kernel with its state; a fallback not reported yet is warned about once. */
export async function kernelStatus(ctx: Context): Promise<KernelStatus[]> {
  const kernels = await listKernels(ctx);
  const states = await trialStates(ctx, kernels);
  await warnFallbackOnce(ctx, kernels);
  return kernels.map((k) => {
    const trial = states.get(`${k.version}\0${k.layout}`) ?? null;
    const words = [trial ? describeTrialState[trial] : '', k.isDefault ? 'default' : '', k.running ? 'running' : ''];
    return {
      version: k.version,
      layout: k.layout,
      default: k.isDefault === true,
      running: k.running,
      trial,
      state: words.filter(Boolean).join(', ') || 'installed',
      entry: k.entry,
    };
  });
}
