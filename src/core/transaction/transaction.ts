// The transaction: the only code that writes to the boot dir, the ESP and the neutral location.
// Each change is journaled first (journal.ts), then made as a temp file in the target's directory,
// fsynced and renamed over the target; what it replaces stays beside it until the run succeeded.
import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { link, lstat, mkdir, open, readlink, rename, rm, symlink, chmod, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isKinstallError } from '../errors.js';
import { throwIfInterrupted } from '../interrupt.js';
import { Journal, type JournalData, type JournalEntry } from './journal.js';
import { completeEntries, crashHook, undoEntries } from './journal-replay.js';
import type { Logger } from '../logger.js';
import type { Plan, TransactionHandle } from '../types.js';

export interface TransactionOptions {
  /**
   * Where the intent journal lives, and the root its paths are relative to; without it the
   * transaction only keeps it in memory.
   */
  journal?: { file: string; root: string };
  /** Test-only crash point (see crashHook). */
  crashAfter?: string;
}

async function fsyncPath(p: string, flags = constants.O_RDONLY): Promise<void> {
  const handle = await open(p, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const fsyncDir = (dir: string) => fsyncPath(dir, constants.O_RDONLY | constants.O_DIRECTORY);

/** Where a filesystem keeps no permissions, chmod fails so (fusefat: ENOSYS; CIFS: EPERM); vfat ignores it. */
const NO_MODES = new Set(['ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EPERM']);

/** chmod, except on a filesystem without permissions (a FAT ESP), where the file keeps the mount's mode. */
async function setMode(file: string, mode: number): Promise<void> {
  await chmod(file, mode).catch((error: NodeJS.ErrnoException) => {
    if (!NO_MODES.has(error.code ?? '')) throw error;
  });
}

/**
 * Copies bytes to a new file (never over one) with the source's mode where the filesystem keeps
 * modes. Not copyFile(): libuv's fchmod of the copy fails it on fusefat (ENOSYS).
 */
async function copyBytes(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), createWriteStream(to, { flags: 'wx', mode: 0o600 }));
  await setMode(to, (await stat(from)).mode & 0o7777);
}

export class Transaction implements TransactionHandle {
  private readonly id = randomBytes(4).toString('hex');
  private readonly journal?: Journal;
  private readonly crash: (point: string) => void;
  /** Created, and first written to disk, just before the first change. */
  private data?: JournalData;
  private readonly touched = new Set<string>();
  private readonly rollbackActions: Array<() => Promise<void>> = [];
  private temps = 0;
  private ops = 0;

  constructor(private readonly log: Logger, options: TransactionOptions = {}) {
    this.journal = options.journal ? new Journal(options.journal.file, options.journal.root) : undefined;
    this.crash = crashHook(options.crashAfter);
  }

  /** Paths this transaction changed, in order. */
  get changedPaths(): string[] {
    return (this.data?.entries ?? []).filter((e) => e.kind !== 'mkdir').map((e) => e.path);
  }

  /** Writes the journal, with one more entry first; the first write marks the run as committing. */
  private record(entry?: JournalEntry): void {
    const first = !this.data;
    this.data ??= { format: 2, id: this.id, pid: process.pid, started: new Date().toISOString(), phase: 'committing', entries: [], emptiedDirs: [], reactivate: [] };
    if (entry) this.data.entries.push(entry);
    this.journal?.save(this.data);
    if (first) this.crash('journal');
  }

  private sideName(target: string, tag: string): string {
    this.temps += 1;
    return path.join(path.dirname(target), `.${path.basename(target)}.kinstall-${tag}-${this.id}-${this.temps}`);
  }

  private async ensureDir(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; ; d = path.dirname(d)) {
      if (await lstat(d).then(() => true, () => false)) break;
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const d of missing) {
      this.record({ kind: 'mkdir', path: d, prior: 'absent' });
      await mkdir(d, { mode: 0o755 });
    }
  }

  /**
   * Journals what a path holds before its first change, then keeps a same-directory backup of a file:
   * a hard link, or a copy where the file may be rewritten in place (`copy`, or no hard links).
   */
  private async remember(target: string, kind: JournalEntry['kind'], moveAway: boolean, copy = false): Promise<void> {
    if (this.touched.has(target)) {
      if (moveAway) await rm(target, { force: true });
      return;
    }
    await this.ensureDir(path.dirname(target));
    const info = await lstat(target).catch(() => undefined);
    if (!info) {
      this.record({ kind, path: target, prior: 'absent' });
    } else if (info.isSymbolicLink()) {
      this.record({ kind, path: target, prior: 'symlink', linkTarget: await readlink(target) });
      if (moveAway) await unlink(target);
    } else if (info.isFile()) {
      const backup = this.sideName(target, 'old');
      this.record({ kind, path: target, prior: 'file', backup });
      if (moveAway) await rename(target, backup);
      else {
        if (copy) await this.copyBackup(target, backup);
        else await link(target, backup).catch(() => this.copyBackup(target, backup));
        // The backup's name must be on disk before the rename over the target can be: on vfat a
        // power loss could otherwise keep the new file and lose the only copy of the old one.
        await fsyncDir(path.dirname(target));
      }
    } else {
      throw new Error(`${target} is a ${info.isDirectory() ? 'directory' : 'special file'}, not a file`);
    }
    this.touched.add(target);
    this.crash(`backup:${this.ops + 1}`);
  }

  /** Where hard links are impossible (vfat ESP): a copy, renamed into place so a backup is never partial. */
  private async copyBackup(target: string, backup: string): Promise<void> {
    const partial = `${backup}.part`;
    await copyBytes(target, partial);
    await fsyncPath(partial);
    await rename(partial, backup);
  }

  private done(dir: string): Promise<void> {
    return fsyncDir(dir).then(() => {
      this.ops += 1;
      this.crash(`op:${this.ops}`);
    });
  }

  private async placeBytes(target: string, kind: JournalEntry['kind'], fill: (temp: string) => Promise<void>, mode: number): Promise<void> {
    await this.remember(target, kind, false);
    const temp = this.sideName(target, 'new');
    try {
      await fill(temp);
      await setMode(temp, mode);
      await fsyncPath(temp);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await this.done(path.dirname(target));
  }

  /**
   * For files a tool writes itself (depmod's index): each path is journaled and its bytes copied
   * aside before the tool runs, so a rollback restores it, or deletes it if it did not exist.
   */
  async preserve(paths: string[]): Promise<void> {
    for (const target of paths) {
      throwIfInterrupted();
      await this.remember(target, 'write', false, true);
    }
  }

  onRollback(action: () => Promise<void>): void {
    this.rollbackActions.push(action);
  }

  /**
   * The handle a layout's activate/deactivate gets: its rollback work is a closure in this process,
   * so the journal records the layout's name and a recovery after a crash re-runs its activate.
   */
  forLayout(layout: string): TransactionHandle {
    return {
      apply: (plan) => this.apply(plan),
      onRollback: (action, note) => {
        this.onRollback(action);
        this.record();
        if (this.data && (!this.data.reactivate.includes(layout) || (note !== undefined && this.data.notes?.[layout] === undefined))) {
          if (!this.data.reactivate.includes(layout)) this.data.reactivate.push(layout);
          if (note !== undefined) this.data.notes = { [layout]: note, ...this.data.notes };
          this.journal?.save(this.data);
        }
        this.crash('reactivate');
      },
    };
  }

  /** A named moment between steps, for the test-only crash point. */
  checkpoint(name: string): void {
    this.crash(name);
  }

  async apply(plan: Plan): Promise<void> {
    for (const item of plan.place) {
      throwIfInterrupted();
      this.log.debug(`place ${item.from} -> ${item.to}`);
      await this.placeBytes(item.to, 'place', (temp) => copyBytes(item.from, temp), item.mode ?? 0o644);
    }
    for (const item of plan.write) {
      throwIfInterrupted();
      this.log.debug(`write ${item.path}`);
      await this.placeBytes(item.path, 'write', async (temp) => {
        const handle = await open(temp, 'wx', 0o600);
        try {
          await handle.writeFile(item.content);
        } finally {
          await handle.close();
        }
      }, item.mode ?? 0o644);
    }
    for (const item of plan.link) {
      throwIfInterrupted();
      this.log.debug(`link ${item.path} -> ${item.target}`);
      await this.remember(item.path, 'link', false);
      const temp = this.sideName(item.path, 'new');
      await symlink(item.target, temp);
      await rename(temp, item.path);
      await this.done(path.dirname(item.path));
    }
    for (const target of plan.remove) {
      throwIfInterrupted();
      const info = await lstat(target).catch(() => undefined);
      if (!info) continue;
      // The backups of its files live in it until finish(), so an emptied directory goes only then.
      if (info.isDirectory()) {
        this.record();
        this.data?.emptiedDirs.push(target);
        this.journal?.save(this.data as JournalData);
        continue;
      }
      this.log.debug(`remove ${target}`);
      await this.remember(target, 'remove', true);
      await this.done(path.dirname(target));
    }
  }

  /**
   * Places a directory tree (a kernel's modules) as one change: `fill` builds it beside the target
   * under a side name; then the old tree, if any, is renamed aside and the new one renamed in.
   * A rollback or recovery removes the new tree and renames the old one back.
   */
  async placeTree(to: string, fill: (dir: string) => Promise<void>): Promise<void> {
    throwIfInterrupted();
    const info = await lstat(to).catch(() => undefined);
    if (info && !info.isDirectory()) throw new Error(`${to} is a ${info.isSymbolicLink() ? 'symlink' : 'file'}, where a directory goes`);
    if (this.touched.has(to)) throw new Error(`${to} was already changed by this run`);
    await this.ensureDir(path.dirname(to));
    const temp = this.sideName(to, 'new');
    const backup = info ? this.sideName(to, 'old') : undefined;
    this.record({ kind: 'place', path: to, prior: info ? 'dir' : 'absent', ...(backup ? { backup } : {}), tree: true });
    this.touched.add(to);
    this.log.debug(`place ${to}/`);
    try {
      await mkdir(temp, { mode: 0o755 });
      await fill(temp);
      await fsyncDir(temp);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw error;
    }
    if (backup) {
      await rename(to, backup);
      await this.done(path.dirname(to));
    }
    await rename(temp, to);
    await this.done(path.dirname(to));
  }

  /**
   * Removes a directory tree (a kernel's modules) as one change: renamed to a same-directory side
   * name, so a rollback renames it back, and deleted only when the run is final.
   */
  async removeTree(dir: string): Promise<void> {
    throwIfInterrupted();
    const info = await lstat(dir).catch(() => undefined);
    if (!info) return;
    this.log.debug(`remove ${dir}/`);
    if (!info.isDirectory()) {
      await this.remember(dir, 'remove', true);
    } else {
      const backup = this.sideName(dir, 'old');
      this.record({ kind: 'remove', path: dir, prior: 'dir', backup });
      this.touched.add(dir);
      await rename(dir, backup);
    }
    await this.done(path.dirname(dir));
  }

  /** Puts every path back as it was, newest change first. Throws only if a restore failed. */
  async rollback(): Promise<void> {
    const failures: string[] = [];
    if (this.data) {
      this.data.phase = 'rolling-back';
      this.journal?.save(this.data);
      const result = await undoEntries(this.data, (n) => this.crash(`rollback:${n}`));
      for (const restored of result.restored) this.log.debug(`restored ${restored}`);
      failures.push(...result.failures);
    }
    for (const action of this.rollbackActions.splice(0).reverse()) {
      // A KinstallError's own outcome ("nothing was changed") would contradict the rollback's failure.
      await action().catch((error: unknown) => failures.push(isKinstallError(error) ? error.summary : error instanceof Error ? error.message : String(error)));
    }
    // A failed rollback keeps its journal: the next kinstall command (or `kinstall recover`) retries it.
    if (failures.length > 0) throw new Error(failures.join('; '));
    this.reset();
  }

  /** The run succeeded: mark it final, then drop the backups. */
  async finish(): Promise<void> {
    this.rollbackActions.length = 0;
    if (this.data) {
      this.data.phase = 'committed';
      this.journal?.save(this.data);
      this.crash('committed');
      for (const dropped of await completeEntries(this.data)) this.log.debug(`removed ${dropped}`);
    }
    this.reset();
  }

  private reset(): void {
    if (this.data) this.journal?.delete();
    this.data = undefined;
    this.touched.clear();
  }
}
