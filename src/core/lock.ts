// One kinstall at a time per root: an exclusive lock file at <root>/run/lock/kinstall.lock.
// Node has no flock(2) and kinstall takes no native addon, so the lock is the file's existence:
// it appears atomically (link(2) of a file already holding "pid starttime", which fails with EEXIST
// when another run holds it), it is unlinked on release, and one whose holder is gone (SIGKILL,
// power loss) is stale and taken over. The start time from /proc guards against a reused pid.
import { link, mkdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Context } from './context.js';
import { KinstallError } from './errors.js';
import { throwIfInterrupted } from './interrupt.js';

const POLL_MS = 250;

interface Holder {
  pid: number;
  start?: string;
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

async function isAlive(holder: Holder): Promise<boolean> {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (holder.start === undefined) return true;
  const now = await startTime(holder.pid);
  return now === undefined || now === holder.start;
}

async function readHolder(file: string): Promise<Holder | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const [pid, start] = (text ?? '').trim().split(/\s+/);
  return pid && /^[1-9][0-9]*$/.test(pid) ? { pid: Number(pid), start } : undefined;
}

/**
 * Moves a stale lock out of the way. Another waiter may have taken it over between our read and
 * the rename; then the renamed file names a live holder and is put back.
 */
async function takeOver(file: string, stale: Holder, ctx: Context): Promise<void> {
  const aside = `${file}.stale.${process.pid}`;
  if (!(await rename(file, aside).then(() => true, () => false))) return;
  const moved = await readHolder(aside);
  if (moved && moved.pid !== stale.pid) {
    await link(aside, file).catch(() => undefined);
  } else {
    // The journal left by that run is recovered next, under this lock (recoverBeforeCommand).
    ctx.log.warn(`taking over the lock ${file} left by kinstall pid ${stale.pid}, which is gone (killed or crashed)`);
  }
  await unlink(aside).catch(() => undefined);
}

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

export function lockFile(ctx: Context): string {
  return ctx.paths.under('/run/lock/kinstall.lock');
}

/**
 * Creates the lock's directory when missing and returns the directories it created, deepest
 * first, so that release can remove them again: a run that changes nothing leaves no trace.
 */
async function makeLockDir(dir: string): Promise<string[]> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return [];
  const created: string[] = [];
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.push(d);
  return created;
}

/** Takes the root's lock, waiting up to `waitSeconds` (lockTimeout) for another run to finish. */
export async function acquireLock(ctx: Context, waitSeconds = ctx.settings.lockTimeout): Promise<HeldLock> {
  const file = lockFile(ctx);
  const mine = `${file}.${process.pid}`;
  const content = `${process.pid} ${(await startTime(process.pid)) ?? ''}\n`;
  const deadline = Date.now() + waitSeconds * 1000;
  const created: string[] = [];
  let announced = false;
  try {
    for (;;) {
      throwIfInterrupted();
      // Another run releasing its lock may remove the directory it created: then start again.
      const taken = await (async () => {
        for (const dir of await makeLockDir(path.dirname(file))) if (!created.includes(dir)) created.push(dir);
        await writeFile(mine, content, { mode: 0o644 });
        return link(mine, file).then(() => true, (error: NodeJS.ErrnoException) => {
          if (error.code === 'EEXIST') return false;
          throw error;
        });
      })().catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (taken === undefined) continue;
      if (taken) break;
      const holder = await readHolder(file);
      if (holder && holder.pid !== process.pid && !(await isAlive(holder))) {
        await takeOver(file, holder, ctx);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new KinstallError('ELOCKED', { pid: String(holder?.pid ?? 'unknown'), file, seconds: String(waitSeconds) });
      }
      if (!announced) {
        ctx.log.warn(`waiting for another kinstall (pid ${holder?.pid ?? 'unknown'}) to finish…`);
        announced = true;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (error) {
    await unlink(mine).catch(() => undefined);
    await removeEmptyDirs(created);
    throw error;
  }
  await unlink(mine).catch(() => undefined);
  // Errors are released by the caller's finally; this covers an exit that skips it.
  const onExit = () => {
    try {
      unlinkSync(file);
    } catch {
      // already released
    }
  };
  process.once('exit', onExit);
  return {
    file,
    release: async () => {
      process.off('exit', onExit);
      const holder = await readHolder(file);
      if (holder?.pid === process.pid) await unlink(file).catch(() => undefined);
      await removeEmptyDirs(created);
    },
  };
}

/** rmdir, deepest first; a directory another run is using is not empty and stays. */
async function removeEmptyDirs(dirs: string[]): Promise<void> {
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await rmdir(dir).catch(() => undefined);
}

/** Runs a changing command under the lock; --dry-run changes nothing and takes no lock. */
export async function withLock<T>(ctx: Context, run: () => Promise<T>): Promise<T> {
  if (ctx.request.dryRun) return run();
  const lock = await acquireLock(ctx);
  try {
    return await run();
  } finally {
    await lock.release();
  }
}

/**
 * For read-only commands (list): a journal left by a killed run is recovered, under the lock, but
 * one belonging to a run that is still going (it holds the lock) is that run's business.
 */
export async function recoverIfIdle(ctx: Context, recover: () => Promise<void>): Promise<void> {
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
