// The transaction: the only code that writes to the boot dir, the ESP and the neutral location.
// Each change is journaled first (journal.ts), then made as a temp file in the target's directory,
// fsynced and renamed over the target; what it replaces stays beside it until the run succeeded.
import { mkdir, open, rename, rm, symlink } from 'node:fs/promises';
import { lstat } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { errorMessage, isKinstallError } from '../errors.js';
import { copyBytes, fsyncDir, fsyncPath, linkOrCopy, setMode } from '../fs.js';
import { throwIfInterrupted } from '../interrupt.js';
import { CRASH_POINT_ENV } from './crash-points.js';
import { JOURNAL_PATH, type JournalData, type JournalEntry } from './journal.js';
import { completeEntries, undoEntries } from './journal-replay.js';
import type { Logger } from '../logger.js';
import type { Plan, TransactionHandle } from '../types.js';
import { RecordedChanges, type TransactionOptions } from './recorded-changes.js';

export class Transaction extends RecordedChanges implements TransactionHandle {
  private readonly rollbackActions: Array<() => Promise<void>> = [];
  /** fsyncs of placed files still running (syncLater). */
  private readonly syncing: Array<Promise<void>> = [];
  /** Files this run placed (a fresh inode no one else names), with their modes. */
  private readonly placed = new Map<string, number>();

  constructor(
    private readonly log: Logger,
    options: TransactionOptions = {},
  ) {
    super(options);
  }

  private async placeBytes(
    target: string,
    kind: JournalEntry['kind'],
    fill: (temp: string) => Promise<void>,
    mode: number,
  ): Promise<void> {
    await this.remember(target, kind, false);
    const temp = this.sideName(target, 'new');
    try {
      await fill(temp);
      await setMode(temp, mode);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    this.syncLater(target);
    await this.done(path.dirname(target));
  }

  /**
   * The new file's bytes reach the disk while the run goes on: its fsync starts now and is awaited
   * before the run is marked final (finish) and before a bootloader tool reads the files (settle).
   * Until then a lost write is undone like any other change: recovery decides from the journal,
   * which was on disk first, and never from a new file's bytes.
   */
  private syncLater(file: string): void {
    const synced = fsyncPath(file).catch((error: NodeJS.ErrnoException) => {
      // Replaced or removed later in the run: what stands there now has its own fsync.
      if (error.code !== 'ENOENT') throw error;
    });
    // Awaited in settle(); never an unhandled rejection meanwhile.
    synced.catch(() => undefined);
    this.syncing.push(synced);
  }

  /**
   * Every file placed so far is on disk. Before a layout's tool runs on them (lilo maps the
   * kernel's blocks) and before the run is marked final.
   */
  async settle(): Promise<void> {
    const pending = this.syncing.splice(0);
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
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
   * so the journal records the layout's name and a recovery after a crash calls its recover().
   */
  forLayout(layout: string): TransactionHandle {
    return {
      apply: (plan) => this.apply(plan),
      onRollback: (action, note) => {
        this.onRollback(action);
        this.record();
        if (
          this.data &&
          (!this.data.reactivate.includes(layout) || (note !== undefined && this.data.notes?.[layout] === undefined))
        ) {
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

  /**
   * Journals the changes of these plans and the removal of these trees ahead, with one journal
   * write (journalAhead: the files and trees among them). apply() and removeTree() then make them.
   */
  async journalPlans(plans: Plan[], trees: string[] = []): Promise<void> {
    const changes = [
      ...plans.flatMap((plan) => [
        ...plan.place.map((item) => ({ path: item.to, kind: 'place' as const })),
        ...plan.write.map((item) => ({ path: item.path, kind: 'write' as const })),
        ...plan.link.map((item) => ({ path: item.path, kind: 'link' as const })),
        ...plan.remove.map((file) => ({ path: file, kind: 'remove' as const })),
      ]),
      ...trees.map((dir) => ({ path: dir, kind: 'remove' as const, tree: true })),
    ];
    await this.journalAhead(changes);
  }

  async apply(plan: Plan): Promise<void> {
    // One journal write for the whole plan, before its first change.
    await this.journalPlans([plan]);
    for (const item of plan.place) {
      throwIfInterrupted();
      const mode = item.mode ?? 0o644;
      this.log.debug(`place ${item.from} -> ${item.to}`);
      // A file this run placed, going elsewhere with the same mode (the neutral location's image into
      // the boot dir or ESP): a second name for its inode where the filesystem is the same, so its
      // bytes are written and fsynced once; a copy on another filesystem or a FAT ESP. kinstall
      // replaces files by rename, never in place, so nothing of its own makes the two names differ.
      const linkable = this.placed.get(item.from) === mode;
      await this.placeBytes(
        item.to,
        'place',
        async (temp) => {
          if (!linkable) return copyBytes(item.from, temp);
          if ((await linkOrCopy(item.from, temp)) === 'link')
            this.log.debug(`  a hard link to ${item.from} (the same filesystem)`);
        },
        mode,
      );
      this.placed.set(item.to, mode);
    }
    for (const item of plan.write) {
      throwIfInterrupted();
      this.log.debug(`write ${item.path}`);
      await this.placeBytes(
        item.path,
        'write',
        async (temp) => {
          const handle = await open(temp, 'wx', 0o600);
          try {
            await handle.writeFile(item.content);
          } finally {
            await handle.close();
          }
        },
        item.mode ?? 0o644,
      );
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
    if (info && !info.isDirectory())
      throw new Error(`${to} is a ${info.isSymbolicLink() ? 'symlink' : 'file'}, where a directory goes`);
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
      // The old tree's new name must be on disk before the new tree can take its place.
      await fsyncDir(path.dirname(to));
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
      await this.moveTreeAside(dir);
    }
    await this.done(path.dirname(dir));
  }

  /** Puts every path back as it was, newest change first. Throws only if a restore failed. */
  async rollback(): Promise<void> {
    const failures: string[] = [];
    // The new files' fsyncs end before those files are taken away; their failures no longer matter.
    await Promise.allSettled(this.syncing.splice(0));
    if (this.data) {
      this.data.phase = 'rolling-back';
      this.journal?.save(this.data);
      const result = await undoEntries(this.data, (n) => this.crash(`rollback:${n}`));
      for (const restored of result.restored) this.log.debug(`restored ${restored}`);
      failures.push(...result.failures);
    }
    for (const action of this.rollbackActions.splice(0).reverse()) {
      // A KinstallError's own outcome ("nothing was changed") would contradict the rollback's failure.
      await action().catch((error: unknown) => failures.push(isKinstallError(error) ? error.summary : errorMessage(error)));
    }
    // A failed rollback keeps its journal: the next kinstall command (or `kinstall recover`) retries it.
    if (failures.length > 0) throw new Error(failures.join('; '));
    this.reset();
  }

  /** The run succeeded: mark it final, then drop the backups. */
  async finish(): Promise<void> {
    this.rollbackActions.length = 0;
    const data = this.data;
    // Nothing to complete (every path was new: no backup, no emptied directory): deleting the
    // journal (reset) is what makes the run final, one journal write fewer. Until then a crash is undone.
    const completes = data !== undefined && (data.entries.some((e) => e.backup !== undefined) || data.emptiedDirs.length > 0);
    if (data) {
      // Every change on disk before the journal says the run is final.
      await this.settle();
      await this.syncChanges();
      if (completes) {
        data.phase = 'committed';
        this.journal?.save(data);
        this.crash('committed');
        for (const dropped of await completeEntries(data)) this.log.debug(`removed ${dropped}`);
      }
    }
    this.reset();
    if (data && !completes) this.crash('committed');
  }

  private reset(): void {
    if (this.data) this.journal?.delete();
    this.data = undefined;
    this.placed.clear();
    this.forget();
  }
}

/** The transaction every command uses: journaled under the root, with the test-only crash point. */
export function transactionFor(ctx: Context): Transaction {
  return new Transaction(ctx.log, {
    journal: { file: ctx.paths.under(JOURNAL_PATH), root: ctx.paths.root },
    crashAfter: ctx.env[CRASH_POINT_ENV],
  });
}
