// Recovery of a run that died mid-transaction (SIGKILL, power loss): its journal is rolled back,
// or finished when the run had already succeeded. Every mutating command does this first.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from '../context.js';
import { errorMessage, KinstallError } from '../errors.js';
import { pathExists } from '../fs.js';
import { Journal, JOURNAL_PATH, type JournalData } from './journal.js';
import { completeEntries, undoEntries } from './journal-replay.js';
import { acquireLock, withLock, type HeldLock, type LockAhead } from './lock.js';
import { CRASH_POINT_ENV, crashHook } from './crash-points.js';
import { assertTrusted } from '../pipeline/trust.js';

export interface RecoveryReport {
  /** What was found: 'nothing to recover', or the dead run's outcome now. */
  outcome: 'nothing to recover' | 'rolled back' | 'completed';
  pid?: number;
  started?: string;
  /** Paths put back as they were before the dead run. */
  restored: string[];
  /** Backups, leftover temp files and emptied directories deleted. */
  dropped: string[];
  /** Layouts whose recover() put their bootloader state back for the restored files. */
  reactivated: string[];
  warnings: string[];
}

const journalFor = (ctx: Context) => new Journal(ctx.paths.under(JOURNAL_PATH), ctx.paths.root);

/**
 * The dead run's journal, if any. Recovery renames and deletes what it names, so as root it must
 * be root's own file (like a hook), and every path in it must stay inside the root (EJOURNAL).
 */
async function loadJournal(ctx: Context, journal: Journal): Promise<JournalData | undefined> {
  await assertTrusted(journal.file, 'journal of an interrupted run');
  return journal.load();
}

/**
 * The bootloader tool of the dead run may have recorded the new files (lilo's map, a firmware
 * entry): each layout that registered rollback work puts its bootloader state back with recover(),
 * given the note it journaled. A layout without recover() is reported, not hidden.
 */
async function reactivate(ctx: Context, data: JournalData, report: RecoveryReport): Promise<void> {
  for (const name of [...data.reactivate].reverse()) {
    const layout = ctx.registry.layouts.find((l) => l.name === name);
    try {
      if (!layout?.recover) throw new Error(`no layout ${name} that can recover is loaded`);
      ctx.log.warn(`putting the ${name} layout's bootloader state back for the restored files`);
      await layout.recover(ctx, data.notes?.[name]);
      report.reactivated.push(name);
    } catch (error) {
      report.warnings.push(
        `the ${name} bootloader step could not run again (${errorMessage(error)}): check the boot loader's entries by hand`,
      );
    }
  }
}

/** A tool killed mid-write leaves output no journal names (grub-mkconfig's): each layout sweeps its own. */
async function sweepLayoutLeftovers(ctx: Context, swept: string[]): Promise<void> {
  for (const layout of ctx.registry.layouts) {
    if (layout.sweep) swept.push(...(await layout.sweep(ctx)));
  }
}

/**
 * depmod (kmod) writes each index as `NAME.PID.USEC.SEC` and renames it into place: one killed
 * with kinstall leaves those beside the index files the journal preserved.
 */
async function sweepDepmodTemps(data: JournalData, swept: string[]): Promise<void> {
  const dirs = new Set(data.entries.filter((e) => path.basename(e.path).startsWith('modules.')).map((e) => path.dirname(e.path)));
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!/^modules\.[a-z.]+\.\d+\.\d+\.\d+$/.test(name)) continue;
      await rm(path.join(dir, name), { force: true });
      swept.push(path.join(dir, name));
    }
  }
}

export async function recoverUnfinished(ctx: Context): Promise<RecoveryReport> {
  const report: RecoveryReport = { outcome: 'nothing to recover', restored: [], dropped: [], reactivated: [], warnings: [] };
  const journal = journalFor(ctx);
  const data = await loadJournal(ctx, journal);
  if (!data) return report;
  Object.assign(report, { pid: data.pid, started: data.started });
  if (data.phase === 'committed') {
    report.outcome = 'completed';
    report.dropped = await completeEntries(data);
    journal.delete();
    return report;
  }
  data.phase = 'rolling-back';
  journal.save(data);
  // Test-only crash points of recovery itself: `recover:N` (Nth restore done), `recover:reactivate`.
  const crash = crashHook(ctx.env[CRASH_POINT_ENV]);
  const { restored, failures } = await undoEntries(data, (n) => crash(`recover:${n}`));
  report.restored = restored;
  await sweepLayoutLeftovers(ctx, report.dropped);
  await sweepDepmodTemps(data, report.dropped);
  if (failures.length > 0) {
    throw new KinstallError('EROLLBACK', { cause: `an interrupted run (pid ${data.pid})`, why: failures.join('; ') }, [
      `the journal ${journal.file} is kept; fix the cause and run kinstall recover again`,
    ]);
  }
  // Files are back; what is left is the bootloader step, idempotent, so a crash here only repeats it.
  journal.save({ ...data, entries: [] });
  crash('recover:reactivate');
  await reactivate(ctx, data, report);
  journal.delete();
  report.outcome = 'rolled back';
  return report;
}

/** One line per thing recovery did, for the log and for `kinstall recover`. */
export function describeRecovery(report: RecoveryReport): string[] {
  if (report.outcome === 'nothing to recover') return ['nothing to recover'];
  const lines = [
    `an unfinished kinstall run (pid ${report.pid ?? '?'}, started ${report.started ?? '?'}) was found: ${report.outcome}`,
  ];
  for (const p of report.restored) lines.push(`restored ${p}`);
  for (const p of report.dropped) lines.push(`removed ${p}`);
  for (const name of report.reactivated) lines.push(`ran the ${name} bootloader step again`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  return lines;
}

/** Whether a run left its journal (a cheap check before taking the lock to recover it; read there). */
const hasJournal = (ctx: Context): Promise<boolean> => pathExists(journalFor(ctx).file);

/** Before any command: an unfinished run is recovered with a warning (only reported under --dry-run). */
async function recoverBeforeCommand(ctx: Context): Promise<void> {
  if (ctx.request.dryRun) {
    if (await hasJournal(ctx)) ctx.log.warn(`an unfinished kinstall run left ${journalFor(ctx).file}: run kinstall recover`);
    return;
  }
  const report = await recoverUnfinished(ctx);
  for (const line of report.outcome === 'nothing to recover' ? [] : describeRecovery(report)) ctx.log.warn(line);
}

/** A changing command (add, stage, remove, prune, installkernel): under the lock, after recovery. */
export function underLockRecovered<T>(ctx: Context, run: () => Promise<T>, ahead?: Promise<LockAhead>): Promise<T> {
  return withLock(
    ctx,
    async () => {
      await recoverBeforeCommand(ctx);
      return run();
    },
    ahead,
  );
}

/**
 * For read-only commands (list, verify): a journal left by a killed run is recovered, under the
 * lock, but one belonging to a run that is still going (it holds the lock) is that run's business.
 */
async function recoverIfIdle(ctx: Context, recover: () => Promise<void>): Promise<void> {
  if (ctx.request.dryRun) return recover();
  let lock: HeldLock;
  try {
    lock = await acquireLock(ctx, 0);
  } catch (error) {
    if (!(error instanceof KinstallError) || error.code !== 'ELOCKED') throw error;
    ctx.log.warn(`another kinstall (pid ${error.args.pid ?? 'unknown'}) is running: showing the state as it is now`);
    return;
  }
  try {
    await recover();
  } finally {
    await lock.release();
  }
}

/**
 * A reading command (list, verify) that looks at what is installed: a killed run's journal is
 * recovered first, but one belonging to a run still going (it holds the lock) is left to it.
 */
export async function recoverBeforeReading(ctx: Context): Promise<void> {
  if (await hasJournal(ctx)) await recoverIfIdle(ctx, () => recoverBeforeCommand(ctx));
}
