// The transaction: the only code that writes to the boot dir, the ESP and the neutral location.
// Each change is a temp file in the target's directory, fsynced and renamed over the target;
// whatever it replaces is kept beside it until the whole run succeeded, so rollback is a rename.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readlink, rename, rm, rmdir, symlink, chmod, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from './logger.js';
import type { Plan, TransactionHandle } from './types.js';

type Prior = { kind: 'absent' } | { kind: 'file'; backup: string } | { kind: 'symlink'; target: string };

interface UndoRecord {
  path: string;
  prior: Prior;
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

export class Transaction implements TransactionHandle {
  private readonly id = randomBytes(4).toString('hex');
  private readonly undo: UndoRecord[] = [];
  private readonly touched = new Set<string>();
  private readonly createdDirs: string[] = [];
  /** Directories a plan removes (a BLS TOKEN/KVER dir): deleted at finish() when nothing else is in them. */
  private readonly emptiedDirs: string[] = [];
  private readonly rollbackActions: Array<() => Promise<void>> = [];
  private temps = 0;

  constructor(private readonly log: Logger) {}

  /** Paths this transaction changed, in order. */
  get changedPaths(): string[] {
    return this.undo.map((u) => u.path);
  }

  private sideName(target: string, tag: string): string {
    this.temps += 1;
    return path.join(path.dirname(target), `.${path.basename(target)}.kinstall-${tag}-${this.id}-${this.temps}`);
  }

  private async ensureDir(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; ; d = path.dirname(d)) {
      const info = await lstat(d).catch(() => undefined);
      if (info) break;
      missing.unshift(d);
      if (path.dirname(d) === d) break;
    }
    for (const d of missing) {
      await mkdir(d, { mode: 0o755 });
      this.createdDirs.push(d);
    }
  }

  /** Records what a path holds before its first change, keeping a same-directory backup of a file. */
  private async remember(target: string, moveAway: boolean): Promise<Prior> {
    if (this.touched.has(target)) {
      if (moveAway) await rm(target, { force: true });
      return { kind: 'absent' };
    }
    await this.ensureDir(path.dirname(target));
    const info = await lstat(target).catch(() => undefined);
    let prior: Prior;
    if (!info) prior = { kind: 'absent' };
    else if (info.isSymbolicLink()) {
      prior = { kind: 'symlink', target: await readlink(target) };
      if (moveAway) await unlink(target);
    } else if (info.isFile()) {
      const backup = this.sideName(target, 'old');
      if (moveAway) await rename(target, backup);
      else await link(target, backup).catch(() => copyFile(target, backup, constants.COPYFILE_EXCL));
      prior = { kind: 'file', backup };
    } else {
      throw new Error(`${target} is a ${info.isDirectory() ? 'directory' : 'special file'}, not a file`);
    }
    this.touched.add(target);
    this.undo.push({ path: target, prior });
    return prior;
  }

  private async placeBytes(target: string, fill: (temp: string) => Promise<void>, mode: number): Promise<void> {
    await this.remember(target, false);
    const temp = this.sideName(target, 'new');
    try {
      await fill(temp);
      await chmod(temp, mode);
      await fsyncPath(temp);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    await fsyncDir(path.dirname(target));
  }

  onRollback(action: () => Promise<void>): void {
    this.rollbackActions.push(action);
  }

  async apply(plan: Plan): Promise<void> {
    for (const item of plan.place) {
      this.log.debug(`place ${item.from} -> ${item.to}`);
      await this.placeBytes(item.to, (temp) => copyFile(item.from, temp), item.mode ?? 0o644);
    }
    for (const item of plan.write) {
      this.log.debug(`write ${item.path}`);
      await this.placeBytes(item.path, async (temp) => {
        const handle = await open(temp, 'wx', 0o600);
        try {
          await handle.writeFile(item.content);
        } finally {
          await handle.close();
        }
      }, item.mode ?? 0o644);
    }
    for (const item of plan.link) {
      this.log.debug(`link ${item.path} -> ${item.target}`);
      await this.remember(item.path, false);
      const temp = this.sideName(item.path, 'new');
      await symlink(item.target, temp);
      await rename(temp, item.path);
      await fsyncDir(path.dirname(item.path));
    }
    for (const target of plan.remove) {
      const info = await lstat(target).catch(() => undefined);
      if (!info) continue;
      // The backups of its files live in it until finish(), so an emptied directory goes only then.
      if (info.isDirectory()) {
        this.emptiedDirs.push(target);
        continue;
      }
      this.log.debug(`remove ${target}`);
      await this.remember(target, true);
      await fsyncDir(path.dirname(target));
    }
  }

  /** Puts every path back as it was, newest change first. Throws only if a restore failed. */
  async rollback(): Promise<void> {
    const failures: string[] = [];
    for (const record of [...this.undo].reverse()) {
      try {
        await rm(record.path, { force: true });
        if (record.prior.kind === 'file') await rename(record.prior.backup, record.path);
        else if (record.prior.kind === 'symlink') await symlink(record.prior.target, record.path);
        await fsyncDir(path.dirname(record.path));
        this.log.debug(`restored ${record.path}`);
      } catch (error) {
        failures.push(`${record.path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    for (const dir of [...this.createdDirs].reverse()) await rmdir(dir).catch(() => undefined);
    for (const action of this.rollbackActions.splice(0).reverse()) {
      await action().catch((error: unknown) => failures.push(error instanceof Error ? error.message : String(error)));
    }
    this.undo.length = 0;
    this.touched.clear();
    this.emptiedDirs.length = 0;
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  /** The run succeeded: drop the backups. */
  async finish(): Promise<void> {
    this.rollbackActions.length = 0;
    for (const record of this.undo) {
      if (record.prior.kind === 'file') await rm(record.prior.backup, { force: true });
    }
    this.undo.length = 0;
    this.touched.clear();
    for (const dir of this.emptiedDirs.splice(0)) {
      if ((await readdir(dir).catch(() => ['?'])).length > 0) continue;
      await rmdir(dir).catch(() => undefined);
      this.log.debug(`removed ${dir}`);
    }
  }
}
