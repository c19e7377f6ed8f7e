// The transaction's intent journal: written (tmp, fsync, rename, fsync dir) before each change, so
// a run killed at any moment leaves enough on disk for `kinstall recover` to undo or finish it.
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { lstat, open, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';

/** One change, recorded before it is made; recovery decides from the file system what happened. */
export interface JournalEntry {
  kind: 'place' | 'write' | 'link' | 'remove' | 'mkdir';
  path: string;
  /** What the path held before the run's first change to it. */
  prior: 'absent' | 'file' | 'symlink';
  /** Same-directory backup of a prior file: present on disk means "restore by renaming it back". */
  backup?: string;
  /** The prior symlink's target. */
  linkTarget?: string;
}

export type JournalPhase = 'committing' | 'committed' | 'rolling-back';

export interface JournalData {
  format: 1;
  /** The transaction's id: its temp files are named `.NAME.kinstall-new-ID-N`. */
  id: string;
  pid: number;
  started: string;
  phase: JournalPhase;
  entries: JournalEntry[];
  /** Directories a removal plan empties, deleted when the run is final. */
  emptiedDirs: string[];
  /** Layouts whose bootloader tool ran on the new files: recovery re-runs their activate on the restored ones. */
  reactivate: string[];
  /** Per layout, the note its first onRollback gave (the tool's state before this run). */
  notes?: Record<string, unknown>;
}

export const JOURNAL_PATH = '/var/lib/kinstall/journal.json';

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Synchronous on purpose: a write is a few hundred bytes, and onRollback (a sync contract) must be
 * able to record its descriptor before the bootloader tool it protects runs.
 */
export class Journal {
  constructor(readonly file: string) {}

  save(data: JournalData): void {
    const dir = path.dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const temp = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(data, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
    fsyncDirSync(dir);
  }

  /** The unfinished run's journal, or undefined when the last run ended cleanly. */
  load(): JournalData | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return undefined;
    }
    const data = JSON.parse(text) as JournalData;
    if (data.format !== 1 || !Array.isArray(data.entries)) throw new Error(`${this.file} is not a kinstall journal`);
    data.emptiedDirs ??= [];
    data.reactivate ??= [];
    return data;
  }

  delete(): void {
    rmSync(this.file, { force: true });
    rmSync(`${this.file}.tmp-${process.pid}`, { force: true });
    fsyncDirSync(path.dirname(this.file));
  }
}

/**
 * Test-only hook point: KINSTALL_TEST_CRASH_AFTER=POINT makes the process SIGKILL itself at that
 * point, so the crash tests can reproduce a power loss at a known moment. Points: `journal` (first
 * journal write, nothing changed), `backup:N` (Nth change's backup made, target not yet replaced),
 * `op:N` (Nth change done), `reactivate` (a bootloader tool is about to run), `step:NAME` (a pipeline step is about to
 * run), `activated` (a layout's bootloader step
 * finished, the run not final yet), `committed` (run
 * final, backups not yet dropped), `rollback:N` (Nth restore of a rollback done).
 */
export function crashHook(point: string | undefined): (name: string) => void {
  if (!point) return () => undefined;
  return (name) => {
    if (name === point) process.kill(process.pid, 'SIGKILL');
  };
}

const exists = (p: string) => lstat(p).then(() => true, () => false);

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Deletes the run's leftover side files (`.NAME.kinstall-KIND-ID-N`) in the directories it touched. */
export async function sweepSideFiles(data: JournalData, kinds: Array<'new' | 'old'>): Promise<string[]> {
  const swept: string[] = [];
  const dirs = new Set(data.entries.filter((e) => e.kind !== 'mkdir').map((e) => path.dirname(e.path)));
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!kinds.some((kind) => name.includes(`.kinstall-${kind}-${data.id}-`))) continue;
      await rm(path.join(dir, name), { force: true });
      swept.push(path.join(dir, name));
    }
  }
  return swept;
}

async function undoEntry(data: JournalData, entry: JournalEntry): Promise<boolean> {
  if (entry.kind === 'mkdir') return rmdir(entry.path).then(() => true, () => false);
  if (entry.prior === 'file') {
    // The target is replaced only once its backup exists: no backup means it was never touched.
    if (!entry.backup || !(await exists(entry.backup))) return false;
    await rename(entry.backup, entry.path);
  } else if (entry.prior === 'absent') {
    if (!(await exists(entry.path))) return false;
    await rm(entry.path, { force: true });
  } else {
    const now = await readlink(entry.path).catch(() => undefined);
    if (now === entry.linkTarget) return false;
    const temp = path.join(path.dirname(entry.path), `.${path.basename(entry.path)}.kinstall-new-${data.id}-undo`);
    await rm(temp, { force: true });
    await symlink(entry.linkTarget ?? '', temp);
    await rename(temp, entry.path);
  }
  await fsyncDir(path.dirname(entry.path));
  return true;
}

/**
 * Puts every journaled path back as it was, newest first, deciding from what is on disk, so it is
 * right after a crash at any point and safe to run again. Returns the restored paths and failures.
 */
export async function undoEntries(data: JournalData, afterEach: (done: number) => void = () => undefined): Promise<{ restored: string[]; failures: string[] }> {
  const restored: string[] = [];
  const failures: string[] = [];
  await sweepSideFiles(data, ['new']);
  for (const entry of [...data.entries].reverse()) {
    try {
      if (await undoEntry(data, entry)) restored.push(entry.path);
    } catch (error) {
      failures.push(`${entry.path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    afterEach(restored.length);
  }
  // A backup whose restore failed is the only copy of the old file: kept for the next attempt.
  if (failures.length === 0) await sweepSideFiles(data, ['old']);
  return { restored, failures };
}

/** The run succeeded: its backups and temps go, and the directories it emptied. */
export async function completeEntries(data: JournalData): Promise<string[]> {
  const dropped: string[] = [];
  for (const entry of data.entries) {
    if (entry.backup && (await exists(entry.backup))) {
      await rm(entry.backup, { force: true });
      dropped.push(entry.backup);
    }
  }
  await sweepSideFiles(data, ['new', 'old']);
  for (const dir of data.emptiedDirs) {
    if ((await readdir(dir).catch(() => ['?'])).length > 0) continue;
    await rmdir(dir).catch(() => undefined);
    dropped.push(dir);
  }
  return dropped;
}
