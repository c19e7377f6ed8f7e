// `kinstall remove` (and prune): the layouts' removal plans and the kernels' modules through one
// transaction, the bootloader updated, so a failure anywhere puts every kernel back as it was.
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { recordHistory } from '../pipeline/history.js';
import { emptyOutcome } from '../pipeline/hooks/run.js';
import { createStagingArea, runPipeline, type Step } from '../pipeline/pipeline.js';
import { transactionFor, type Transaction } from '../transaction/transaction.js';
import { Listings } from '../system/listings.js';
import {
  commit,
  deactivate,
  layoutNames,
  plan,
  preflight,
  removedFiles,
  removesModules,
  resolve,
  runRemoveHooks,
  type RemoveState,
} from './remove-steps.js';

export interface RemoveInput {
  version: string;
  keepModules: boolean;
  /** The package's own hooks.d (kinstall's shipped hooks). */
  shippedHooksDir?: string;
}

export interface RemoveResult {
  version: string;
  /** The layouts it was removed from, joined with "+" (most often one). */
  layout: string;
  removed: string[];
  modulesRemoved: boolean;
  dryRun: boolean;
}

/** One version to remove: every layout holding it, each with its removal plan. */
const removeSteps: Step<RemoveState>[] = [
  { name: 'resolve', run: resolve },
  { name: 'plan', run: plan },
  { name: 'preflight', run: preflight },
  // Debian's /etc/kernel/prerm.d: before anything is removed; a failure stops the removal.
  { name: 'prerm', mutates: true, run: async (s) => void (s.prerm = await runRemoveHooks(s, 'prerm')) },
  { name: 'commit', mutates: true, run: commit },
  { name: 'deactivate', mutates: true, run: deactivate },
  // postrm.d: the kernel is gone; a failure is reported (exit 7), the removal stands.
  { name: 'postrm', mutates: true, run: async (s) => void (s.postrm = await runRemoveHooks(s, 'postrm')) },
];

/** The remove steps on `txn`, which the caller finishes; the staging area is gone when this returns. */
async function runRemoval(
  ctx: Context,
  txn: Transaction,
  versions: string[],
  keepModules: boolean,
  shippedHooksDir?: string,
  listings = new Listings(ctx),
): Promise<RemoveState> {
  const stagingArea = await createStagingArea(ctx);
  const state: RemoveState = {
    ctx,
    versions,
    keepModules,
    shippedHooksDir,
    stagingArea: stagingArea.path,
    removals: [],
    listings,
    owned: new Map(),
    prerm: emptyOutcome(),
    postrm: emptyOutcome(),
    txn,
  };
  try {
    await runPipeline(removeSteps, state);
  } finally {
    await stagingArea.cleanup();
  }
  return state;
}

/** The history lines and log of a finished removal. */
async function recordRemovals(state: RemoveState): Promise<void> {
  const { ctx } = state;
  for (const removal of state.removals) {
    const hooks = [...new Set([...state.prerm.ran, ...state.postrm.ran])];
    const event = {
      action: 'remove' as const,
      version: removal.version,
      layout: layoutNames(removal),
      initrdGenerator: '-',
      files: removedFiles(removal),
      hooks,
    };
    await recordHistory(ctx, event, { installkernelLog: false });
    ctx.log.info(`removed ${removal.version} (${layoutNames(removal)})`);
  }
}

const resultsOf = (state: RemoveState): RemoveResult[] =>
  state.removals.map((removal) => ({
    version: removal.version,
    layout: layoutNames(removal),
    removed: removedFiles(removal),
    modulesRemoved: removesModules(state, removal),
    dryRun: state.ctx.request.dryRun,
  }));

/** Removes several versions as one transaction: all of them, or (on failure) none. */
export async function removeKernels(
  ctx: Context,
  versions: string[],
  keepModules: boolean,
  shippedHooksDir?: string,
  listings = new Listings(ctx),
): Promise<RemoveResult[]> {
  const state = await runRemoval(ctx, transactionFor(ctx), versions, keepModules, shippedHooksDir, listings);
  if (!ctx.request.dryRun) {
    await state.txn.finish();
    await recordRemovals(state);
  }
  const failed = state.postrm.failed;
  if (failed.length > 0) {
    throw new KinstallError('EPOSTRM', {
      count: String(failed.length),
      hooks: failed.map((f) => `${f.hook} (exit ${f.status})`).join(', '),
    });
  }
  return resultsOf(state);
}

/** Removals staged into another command's transaction (add --make-room): `record` once that one finished. */
export interface RemovalInTransaction {
  results: RemoveResult[];
  record(): Promise<void>;
}

/**
 * Removes versions inside `txn`, which the caller finishes or rolls back with its own changes (the
 * install that needs their room). A failed postrm hook is reported, as remove reports it, but
 * as a warning: the removal stands with the install.
 */
export async function removeInTransaction(
  ctx: Context,
  txn: Transaction,
  versions: string[],
  shippedHooksDir?: string,
): Promise<RemovalInTransaction> {
  const state = await runRemoval(ctx, txn, versions, false, shippedHooksDir);
  for (const f of state.postrm.failed) ctx.log.warn(`postrm hook ${f.hook} failed with exit code ${f.status}`);
  return { results: resultsOf(state), record: () => recordRemovals(state) };
}

/** What a removal deletes, one line each, as --dry-run prints it: its files, then its modules tree. */
export function describeRemoval(ctx: Context, result: RemoveResult): string[] {
  const verb = result.dryRun ? 'would remove' : 'removed';
  const modules = result.modulesRemoved ? [`${verb} ${ctx.paths.moduleDir(result.version)}/ (the whole tree)`] : [];
  return [...result.removed.map((file) => `${verb} ${file}`), ...modules];
}

export async function removeKernel(ctx: Context, input: RemoveInput): Promise<RemoveResult> {
  const [result] = await removeKernels(ctx, [input.version], input.keepModules, input.shippedHooksDir);
  if (!result) throw new Error(`no result for ${input.version}`);
  return result;
}
