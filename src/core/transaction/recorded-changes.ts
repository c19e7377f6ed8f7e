// The bookkeeping under every change the transaction makes: a path's prior state journaled before
// its first change, a same-directory backup of a file it replaces, side names for temps and
// backups, and the crash points between them.
import { randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm, unlink } from 'node:fs/promises';
import { lstat, readlink } from '../quick-fs.js';
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

const mkdirEntry = (dir: string): JournalEntry => ({ kind: 'mkdir', path: dir, prior: 'absent' });

/** Two entries for one path say the same: same change, same prior state, a backup in the same directory. */
const sameIntent = (a: JournalEntry, b: JournalEntry): boolean =>
  a.kind === b.kind &&
  a.prior === b.prior &&
  a.linkTarget === b.linkTarget &&
  (a.backup === undefined ? b.backup === undefined : b.backup !== undefined && path.dirname(a.backup) === path.dirname(b.backup));

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
  /** Entries journaled ahead of their change (journalAhead), by path, until remember() makes it. */
  private readonly ahead = new Map<string, JournalEntry>();
  /** Directories journaled (mkdir) ahead of the change that makes them (journalAhead). */
  private readonly aheadDirs = new Set<string>();
  /** Directories whose changes are not fsynced yet: all are, before the run is marked final. */
  private readonly unsynced = new Set<string>();

  constructor(options: TransactionOptions = {}) {
    this.journal = options.journal ? new Journal(options.journal.file, options.journal.root) : undefined;
    this.crash = crashHook(options.crashAfter);
  }

  /** Paths this transaction changed, in order. */
  get changedPaths(): string[] {
    return (this.data?.entries ?? []).filter((e) => e.kind !== 'mkdir' && this.ahead.get(e.path) !== e).map((e) => e.path);
  }

  /** Writes the journal, with more entries first; the first write marks the run as committing. */
  protected record(...entries: JournalEntry[]): void {
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
    this.data.entries.push(...entries);
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

  /** The directories missing on the way to `dir`, outermost first. */
  private async missingDirs(dir: string): Promise<string[]> {
    const missing: string[] = [];
    for (let d = dir; ; d = path.dirname(d)) {
      if (await pathExists(d)) break;
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    return missing;
  }

  /** Journals the missing directories on the way to `dir` (one write), then creates them. */
  protected async ensureDir(dir: string): Promise<void> {
    const missing = await this.missingDirs(dir);
    if (missing.length === 0) return;
    const unjournaled = missing.filter((d) => !this.aheadDirs.has(d));
    if (unjournaled.length > 0) this.record(...unjournaled.map(mkdirEntry));
    for (const d of missing) await mkdir(d, { mode: 0o755 });
  }

  /**
   * The journal entry for what a path holds now (a file gets a same-directory backup name), or
   * undefined for a directory or special file, which only a tree change may journal (`tree`).
   */
  private async entryFor(target: string, kind: JournalEntry['kind'], tree = false): Promise<JournalEntry | undefined> {
    const info = await lstat(target).catch(() => undefined);
    if (!info) return { kind, path: target, prior: 'absent' };
    if (info.isSymbolicLink()) return { kind, path: target, prior: 'symlink', linkTarget: await readlink(target) };
    if (info.isFile()) return { kind, path: target, prior: 'file', backup: this.sideName(target, 'old') };
    if (tree && info.isDirectory()) return { kind, path: target, prior: 'dir', backup: this.sideName(target, 'old') };
    return undefined;
  }

  /**
   * Journals many paths' prior states with one journal write, before any of their changes: a
   * removal of many kernels writes and fsyncs the journal once, not once per file. Files and trees
   * (their undo needs a backup only the change itself makes), and absent paths a file is placed or
   * written at (undone by removing what stands there, which is nothing if the change never came;
   * the run holds the lock meanwhile): an entry whose change never comes is undone as nothing. A
   * symlink is journaled as it changes, since its undo could not tell. Each entry is checked again
   * just before its change (claim()), and the journal is rewritten first when the path changed since.
   */
  async journalAhead(changes: Array<{ path: string; kind: JournalEntry['kind']; tree?: boolean }>): Promise<void> {
    // A spilled backup is copied to another filesystem: journaled as it is made.
    if (this.spillDir) return;
    const wanted = [...new Map(changes.map((c) => [c.path, c])).values()].filter(
      (c) => !this.touched.has(c.path) && !this.ahead.has(c.path),
    );
    // Nothing changes meanwhile: the paths are looked at side by side.
    const looked = await Promise.all(
      wanted.map(async (change): Promise<{ entry?: JournalEntry; dirs: string[] }> => {
        const dirs = await this.missingDirs(path.dirname(change.path));
        if (dirs.length === 0) return { entry: await this.entryFor(change.path, change.kind, change.tree), dirs };
        // A file in a directory still to be made: journaled ahead with the mkdirs remember() makes.
        const entry: JournalEntry = { kind: change.kind, path: change.path, prior: 'absent' };
        return change.tree ? { dirs: [] } : { entry, dirs };
      }),
    );
    const fresh = looked.filter(
      (l): l is { entry: JournalEntry; dirs: string[] } =>
        l.entry?.prior === 'file' ||
        l.entry?.prior === 'dir' ||
        (l.entry?.prior === 'absent' && (l.entry.kind === 'place' || l.entry.kind === 'write')),
    );
    // Each directory once, a parent before its children (each list is outermost first).
    const dirs = [...new Set(fresh.flatMap((l) => l.dirs))].filter((d) => !this.aheadDirs.has(d));
    for (const { entry } of fresh) this.ahead.set(entry.path, entry);
    for (const d of dirs) this.aheadDirs.add(d);
    if (fresh.length > 0) this.record(...dirs.map(mkdirEntry), ...fresh.map((l) => l.entry));
  }

  /**
   * The entry for a path's first change, journaled: the one journaled ahead when the path still
   * holds what it says, else a new one (a stale one taken out of the journal in the same write).
   * `dirs`: the directories to create for it, journaled before it in the same write.
   */
  private claim(entry: JournalEntry, dirs: JournalEntry[] = []): JournalEntry {
    const planned = this.ahead.get(entry.path);
    this.ahead.delete(entry.path);
    if (planned && sameIntent(planned, entry)) {
      if (dirs.length > 0) this.record(...dirs);
      return planned;
    }
    if (planned && this.data) this.data.entries = this.data.entries.filter((e) => e !== planned);
    this.record(...dirs, entry);
    return entry;
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
    // A file in a directory still to be made: both journaled in one write, then the directories made.
    const missing = await this.missingDirs(path.dirname(target));
    const now: JournalEntry | undefined =
      missing.length > 0 ? { kind, path: target, prior: 'absent' } : await this.entryFor(target, kind);
    if (!now) {
      const info = await lstat(target);
      throw new Error(`${target} is a ${info.isDirectory() ? 'directory' : 'special file'}, not a file`);
    }
    if (now.prior === 'file' && moveAway && kind === 'remove' && this.spillDir) {
      const backup = path.join(this.spillDir, path.basename(this.sideName(target, 'old')));
      await mkdir(this.spillDir, { recursive: true, mode: 0o700 });
      // Journaled as it is made: claim() never takes an ahead entry whose backup is beside the file.
      this.claim({ ...now, backup });
      await this.copyBackup(target, backup);
      await fsyncDir(this.spillDir);
      await unlink(target);
    } else {
      const entry = this.claim(now, missing.filter((d) => !this.aheadDirs.has(d)).map(mkdirEntry));
      for (const dir of missing) await mkdir(dir, { mode: 0o755 });
      if (entry.prior === 'symlink' && moveAway) await unlink(target);
      if (entry.prior === 'file' && entry.backup) await this.keepBackup(target, entry.backup, moveAway, copy);
    }
    this.touched.add(target);
    this.crash(`backup:${this.ops + 1}`);
  }

  /** A tree's first change (its removal): journaled (or claimed), then renamed to its backup name. */
  protected async moveTreeAside(dir: string): Promise<void> {
    const entry = this.claim({ kind: 'remove', path: dir, prior: 'dir', backup: this.sideName(dir, 'old') });
    this.touched.add(dir);
    await rename(dir, entry.backup as string);
  }

  private async keepBackup(target: string, backup: string, moveAway: boolean, copy: boolean): Promise<void> {
    if (moveAway) return rename(target, backup);
    if (copy) await this.copyBackup(target, backup);
    else await link(target, backup).catch(() => this.copyBackup(target, backup));
    // The backup's name must be on disk before the rename over the target can be: on vfat a
    // power loss could otherwise keep the new file and lose the only copy of the old one.
    await fsyncDir(path.dirname(target));
  }

  /** Where hard links are impossible (vfat ESP): a copy, renamed into place so a backup is never partial. */
  private async copyBackup(target: string, backup: string): Promise<void> {
    const partial = `${backup}.part`;
    await copyBytes(target, partial);
    await fsyncPath(partial);
    await rename(partial, backup);
  }

  /**
   * One change made, then the crash point after it. Its directory is fsynced later, once for all
   * changes there (syncChanges): until the run is final a lost rename is undone like any other
   * change, since recovery decides from what is on disk and the journal was on disk first.
   */
  protected done(dir: string): Promise<void> {
    this.unsynced.add(dir);
    this.ops += 1;
    this.crash(`op:${this.ops}`);
    return Promise.resolve();
  }

  /**
   * Every change on disk: each changed directory fsynced once (before the run is marked final),
   * side by side (on ext4 they share the journal commits).
   */
  protected async syncChanges(): Promise<void> {
    await Promise.all(
      [...this.unsynced].map((dir) =>
        fsyncDir(dir).catch((error: NodeJS.ErrnoException) => {
          // A directory the run emptied and removed has nothing left to sync.
          if (error.code !== 'ENOENT') throw error;
        }),
      ),
    );
    this.unsynced.clear();
  }

  /** Forgets the run's bookkeeping (after it finished or rolled back). */
  protected forget(): void {
    this.touched.clear();
    this.ahead.clear();
    this.aheadDirs.clear();
    this.unsynced.clear();
  }
}
