// The bookkeeping under every change the transaction makes: a path's prior state journaled before
// its first change, a same-directory backup of a file it replaces, side names for temps and
// backups, and the crash points between them.
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readlink, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { copyBytes, fsyncDir, fsyncPath, pathExists } from '../fs.js';
import { crashHook } from './crash-points.js';
import { Journal, JOURNAL_FORMAT, type JournalData, type JournalEntry } from './journal.js';

export interface TransactionOptions {
  /**
   * Where the intent journal lives, and the root its paths are relative to; without it the
   * transaction only keeps it in memory.
   */
  journal?: { file: string; root: string };
  /** Test-only crash point (see crash-points.ts). */
  crashAfter?: string;
}

export abstract class RecordedChanges {
  protected readonly id = randomBytes(4).toString('hex');
  protected readonly journal?: Journal;
  protected readonly crash: (point: string) => void;
  /** Created, and first written to disk, just before the first change. */
  protected data?: JournalData;
  protected readonly touched = new Set<string>();
  private temps = 0;
  private ops = 0;
  /** While set, a removed file's backup is copied here (another filesystem) so its space is freed. */
  private spillDir?: string;

  constructor(options: TransactionOptions = {}) {
    this.journal = options.journal ? new Journal(options.journal.file, options.journal.root) : undefined;
    this.crash = crashHook(options.crashAfter);
  }

  /** Paths this transaction changed, in order. */
  get changedPaths(): string[] {
    return (this.data?.entries ?? []).filter((e) => e.kind !== 'mkdir').map((e) => e.path);
  }

  /** Writes the journal, with one more entry first; the first write marks the run as committing. */
  protected record(entry?: JournalEntry): void {
    const first = !this.data;
    this.data ??= {
      format: JOURNAL_FORMAT,
      id: this.id,
      pid: process.pid,
      started: new Date().toISOString(),
      phase: 'committing',
      entries: [],
      emptiedDirs: [],
      reactivate: [],
    };
    if (entry) this.data.entries.push(entry);
    this.journal?.save(this.data);
    if (first) this.crash('journal');
  }

  /**
   * Removals from now on keep their backups in `dir` (on another filesystem) instead of beside the
   * file, so they free the space at once and are still put back by a rollback; undefined ends it.
   */
  spillRemovalsTo(dir: string | undefined): void {
    this.spillDir = dir;
  }

  protected sideName(target: string, tag: string): string {
    this.temps += 1;
    return path.join(path.dirname(target), `.${path.basename(target)}.kinstall-${tag}-${this.id}-${this.temps}`);
  }

  protected async ensureDir(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; ; d = path.dirname(d)) {
      if (await pathExists(d)) break;
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
  protected async remember(target: string, kind: JournalEntry['kind'], moveAway: boolean, copy = false): Promise<void> {
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
    } else if (info.isFile() && moveAway && kind === 'remove' && this.spillDir) {
      const backup = path.join(this.spillDir, path.basename(this.sideName(target, 'old')));
      await mkdir(this.spillDir, { recursive: true, mode: 0o700 });
      this.record({ kind, path: target, prior: 'file', backup });
      await this.copyBackup(target, backup);
      await fsyncDir(this.spillDir);
      await unlink(target);
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

  /** One change is durable: its directory fsynced, then the crash point after it. */
  protected done(dir: string): Promise<void> {
    return fsyncDir(dir).then(() => {
      this.ops += 1;
      this.crash(`op:${this.ops}`);
    });
  }
}
