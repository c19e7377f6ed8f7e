// One kinstall at a time per root: an flock(2) on <root>/run/lock/kinstall.lock. Node has no flock
// and kinstall takes no native addon, so util-linux's flock(1) holds it: `flock -F FILE cat` takes
// the lock, then becomes `cat` reading a pipe from this process; the byte kinstall writes into that
// pipe at once comes back on cat's stdout only once cat runs, that is once the lock is held (no
// polling of /proc, no sleep on the uncontended path). When kinstall ends in any way
// (even SIGKILL) the pipe closes, cat exits and the kernel drops the lock: nothing stale is left to
// take over, and the lock interoperates with a shell's `flock /run/lock/kinstall.lock …`.
import { mkdirSync } from 'node:fs';
import { rmdir, unlink, writeFile } from 'node:fs/promises';
import { readdir, readFile, stat } from '../quick-fs.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import type { Context } from '../context.js';
import { createPaths } from '../paths.js';
import { KinstallError } from '../errors.js';
import { interruptedBy, throwIfInterrupted } from '../interrupt.js';

/** How often a waiting run checks for an interrupt and whether to announce the wait. */
const POLL_MS = 50;
/** Waiting longer than this is announced once. */
const ANNOUNCE_MS = 300;
/** flock's exit code when the lock was not obtained in time. */
const CONFLICT = 75;
/**
 * Files swapped under us this many times, and the wait is over: something else is deleting the lock
 * file. Within the wait, a run that keeps losing the race to other waiters tries again.
 */
const MAX_RETRIES = 20;

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

/** The lock file under a root. */
export const lockFileUnder = (root: string): string => createPaths(root, '/boot').under('/run/lock/kinstall.lock');

function lockFile(ctx: Context): string {
  return lockFileUnder(ctx.paths.root);
}

/** The pid the current holder wrote into the lock file, for messages. */
async function holderPid(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = text.trim().split(/\s+/)[0] ?? '';
  return /^[1-9][0-9]*$/.test(pid) ? pid : 'unknown';
}

/**
 * Creates the lock's directory when missing and returns the directories it created, deepest
 * first, so that release can remove them again: a run that changes nothing leaves no trace.
 * Undefined when a releasing run removed a parent while it was being created: try again.
 * Synchronous: lockAhead starts flock before the command reads anything else.
 */
function makeLockDir(dir: string): string[] | undefined {
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (first === undefined) return [];
  const created: string[] = [];
  for (let d = dir; d.length >= first.length; d = path.dirname(d)) created.push(d);
  return created;
}

/** rmdir, deepest first; a directory another run is using is not empty and stays. */
async function removeEmptyDirs(dirs: string[]): Promise<void> {
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await rmdir(dir).catch(() => undefined);
}

const sameFile = (a: { dev: number; ino: number } | undefined, b: { dev: number; ino: number } | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;

/**
 * Whether the process holds the lock on the file that is at `file` now. A releasing run unlinks
 * the file while it still holds the lock, so a waiter may get the lock of an inode no longer there;
 * it must then try again on the new file.
 */
async function holdsCurrentFile(pid: number, file: string): Promise<boolean> {
  const current = await stat(file).catch(() => undefined);
  if (!current) return false;
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if (sameFile(await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined), current)) return true;
  }
  return false;
}

type Holder = ResultPromise<{ stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe'; reject: false; detached: true }>;

/**
 * Resolves when flock's process, become `cat` (-F: exec without forking) once it holds the lock,
 * echoes the byte written to it; flock itself never reads its stdin, so the byte waits in the pipe.
 */
function lockedSignal(holder: Holder): Promise<void> {
  return new Promise((resolve) => {
    holder.stdout?.once('data', () => resolve());
    holder.stdin?.write('\n');
  });
}

async function stopHolder(holder: Holder): Promise<void> {
  holder.stdin?.end();
  holder.kill('SIGTERM');
  await holder;
}

const spawnHolder = (file: string, wait: string[]): Holder =>
  execa('flock', ['--exclusive', ...wait, '--conflict-exit-code', String(CONFLICT), '--no-fork', file, 'cat'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    // Its own process group: a terminal's Ctrl-C must not drop the lock during the rollback.
    detached: true,
  });

/** A try at the lock made before the run's context exists (lockAhead): held or not, and the directories it made. */
export interface LockAhead {
  file: string;
  created: string[];
  held?: { holder: Holder; pid: number };
}

/**
 * Tries the lock once, without waiting, for a command that is about to build its context (reading
 * the config file, the install.conf chain): flock starts and locks meanwhile, where the lock is
 * free, instead of after. acquireLock takes it over, or waits the usual way when it was not got.
 * `file` is the lock file under the root the command names (lockFileUnder).
 */
export async function lockAhead(file: string): Promise<LockAhead> {
  let created: string[] = [];
  try {
    created = makeLockDir(path.dirname(file)) ?? [];
  } catch {
    // flock reports it, as it would without the try.
  }
  const holder = spawnHolder(file, ['--nonblock']);
  const pid = holder.pid;
  let locked = false;
  await Promise.race([lockedSignal(holder).then(() => (locked = true)), holder]);
  if (locked && pid !== undefined) return { file, created, held: { holder, pid } };
  await stopHolder(holder);
  return { file, created };
}

/** Lets a held lock go: the file unlinked while still held (no run can lock that inode and think it is alone), then flock stopped. */
async function letGo(file: string, holder: Holder, pid: number): Promise<void> {
  if (await holdsCurrentFile(pid, file)) await unlink(file).catch(() => undefined);
  await stopHolder(holder);
}

/** A try made ahead and not taken over (the command failed before it locked): let go, leaving no trace. */
export async function dropLockAhead(ahead: Promise<LockAhead> | undefined): Promise<void> {
  const early = await ahead?.catch(() => undefined);
  if (early?.held) await letGo(early.file, early.held.holder, early.held.pid);
  if (early) await removeEmptyDirs(early.created);
}

/**
 * Takes the root's lock, waiting up to `waitSeconds` (lockTimeout) for another run to finish;
 * `ahead`, a try lockAhead made for the same file, is taken over when it got the lock.
 */
export async function acquireLock(
  ctx: Context,
  waitSeconds = ctx.settings.lockTimeout,
  ahead?: Promise<LockAhead>,
): Promise<HeldLock> {
  const file = lockFile(ctx);
  const created: string[] = [];
  const started = Date.now();
  let announced = false;
  const early = await ahead?.catch(() => undefined);
  if (early) {
    created.push(...early.created);
    if (early.held && early.file === file && (await holdsCurrentFile(early.held.pid, file)))
      return holding(file, early.held.holder, early.held.pid, created);
    if (early.held) await letGo(early.file, early.held.holder, early.held.pid);
  }
  try {
    for (let attempt = 1; ; attempt += 1) {
      if (attempt > MAX_RETRIES && (Date.now() - started) / 1000 >= waitSeconds)
        throw new KinstallError('ETOOL', { tool: 'flock', why: `${file} keeps being replaced while kinstall locks it` });
      throwIfInterrupted();
      const made = makeLockDir(path.dirname(file));
      if (made === undefined) continue;
      for (const dir of made) if (!created.includes(dir)) created.push(dir);
      const left = Math.max(0, waitSeconds - (Date.now() - started) / 1000);
      const wait = left === 0 ? ['--nonblock'] : ['--timeout', left.toFixed(3)];
      const holder = spawnHolder(file, wait);
      let ended = false;
      let locked = false;
      void holder.then(() => (ended = true));
      const signal = lockedSignal(holder).then(() => (locked = true));
      const pid = holder.pid;
      for (;;) {
        await Promise.race([signal, holder, sleep(POLL_MS, undefined, { ref: false })]);
        if (locked || ended || pid === undefined) break;
        if (interruptedBy()) {
          await stopHolder(holder);
          throwIfInterrupted();
        }
        if (!announced && Date.now() - started > ANNOUNCE_MS) {
          ctx.log.warn(`waiting for another kinstall (pid ${await holderPid(file)}) to finish…`);
          announced = true;
        }
      }
      if (!locked || pid === undefined) {
        const result = await holder;
        if (result.exitCode === CONFLICT) {
          throw new KinstallError('ELOCKED', { pid: await holderPid(file), file, seconds: String(waitSeconds) });
        }
        // The run releasing the lock removed its (then empty) directory before flock opened the file.
        if (/No such file or directory/.test(String(result.stderr))) continue;
        const why =
          result.failed && result.exitCode === undefined
            ? result.originalMessage
            : String(result.stderr).trim() || `exit code ${result.exitCode}`;
        throw new KinstallError('ETOOL', { tool: 'flock', why: `could not lock ${file}: ${why}` });
      }
      if (!(await holdsCurrentFile(pid, file))) {
        // Locked a file the previous holder removed on its way out: lock the one there now.
        await stopHolder(holder);
        continue;
      }
      return await holding(file, holder, pid, created);
    }
  } catch (error) {
    await removeEmptyDirs(created);
    throw error;
  }
}

/** The lock got: the holder's pid in the file, for messages; released by unlinking it, then stopping flock. */
async function holding(file: string, holder: Holder, pid: number, created: string[]): Promise<HeldLock> {
  await writeFile(file, `${process.pid}\n`);
  return {
    file,
    release: async () => {
      await letGo(file, holder, pid);
      await removeEmptyDirs(created);
    },
  };
}

/** Runs a changing command under the lock; --dry-run changes nothing and takes no lock. */
export async function withLock<T>(ctx: Context, run: () => Promise<T>, ahead?: Promise<LockAhead>): Promise<T> {
  if (ctx.request.dryRun) {
    await dropLockAhead(ahead);
    return run();
  }
  const lock = await acquireLock(ctx, ctx.settings.lockTimeout, ahead);
  try {
    return await run();
  } finally {
    await lock.release();
  }
}
