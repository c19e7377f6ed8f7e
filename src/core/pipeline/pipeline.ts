// The generic step runner: a table of named steps, each run in order with start/finish logged,
// failures stamped with the step's name, and the transaction rolled back when a step fails.
import { lstat } from '../quick-fs.js';
import { dir as tmpDir, type DirectoryResult } from 'tmp-promise';
import type { Context } from '../context.js';
import { errorMessage, ExitCode, KinstallError } from '../errors.js';
import { interruptedBy, throwIfInterrupted } from '../interrupt.js';
import type { Transaction } from '../transaction/transaction.js';

export interface Step<S> {
  name: string;
  /** Whether the step applies to this run (for example depmod only when modules exist). */
  enabled?: (state: S) => boolean | Promise<boolean>;
  /** Steps that change the system are logged, not run, under --dry-run. */
  mutates?: boolean;
  run: (state: S) => Promise<void>;
}

/**
 * The run's staging area: a private (0700) scratch directory, removed when the run ends. When the
 * target's hooks run inside the target it is inside the target too (its /var/tmp, else /tmp; real
 * directories, not links that could lead out), so they see it at the path they are given.
 */
export async function createStagingArea(ctx: Context): Promise<DirectoryResult> {
  const options = { prefix: 'kinstall-', unsafeCleanup: true, mode: 0o700 };
  if (ctx.paths.root === '/' || ctx.settings.targetHooks !== 'run') return tmpDir(options);
  for (const dir of ['/var/tmp', '/tmp'].map((d) => ctx.paths.under(d))) {
    const info = await lstat(dir).catch(() => undefined);
    if (info?.isDirectory()) return tmpDir({ ...options, tmpdir: dir });
  }
  // Preflight reports it when a target's hook would need it (checkTargetHooks).
  return tmpDir(options);
}

export interface PipelineState {
  ctx: Context;
  txn: Transaction;
}

/** Turns a failure after changes began into the final error, naming what rollback did. */
async function rollBack(state: PipelineState, failure: KinstallError): Promise<KinstallError> {
  // A tool killed by the same Ctrl-C fails on its own: the signal is the cause worth reporting.
  const signal = interruptedBy();
  const error =
    signal && failure.code !== 'EINTERRUPTED' ? new KinstallError('EINTERRUPTED', { signal }, [], { cause: failure }) : failure;
  const changed = state.txn.changedPaths.length;
  try {
    await state.txn.rollback();
  } catch (rollbackError) {
    return new KinstallError('EROLLBACK', { cause: error.summary, why: errorMessage(rollbackError) }, error.details, {
      cause: error,
    });
  }
  if (changed === 0 || error.exitCode !== ExitCode.rolledBack) return error;
  return error.withArgs({ outcome: `rolled back ${changed} change(s), nothing was changed` });
}

export async function runPipeline<S extends PipelineState>(steps: Step<S>[], state: S): Promise<void> {
  const { ctx } = state;
  for (const step of steps) {
    if (step.enabled && !(await step.enabled(state))) {
      ctx.log.debug(`step ${step.name}: skipped`);
      continue;
    }
    if (step.mutates && ctx.request.dryRun) {
      ctx.log.info(`dry run: would run step ${step.name}`);
      continue;
    }
    ctx.log.debug(`step ${step.name}: start`);
    state.txn.checkpoint(`step:${step.name}`);
    try {
      throwIfInterrupted();
      await step.run(state);
    } catch (thrown) {
      const error = KinstallError.fromStep(step.name, thrown);
      ctx.log.debug(`step ${step.name}: failed: ${error.message}`);
      throw await rollBack(state, error);
    }
    ctx.log.debug(`step ${step.name}: done`);
  }
  try {
    throwIfInterrupted();
  } catch (thrown) {
    throw await rollBack(state, KinstallError.fromStep('finish', thrown));
  }
}
