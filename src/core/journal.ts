// The transaction's intent journal: written (tmp, fsync, rename, fsync dir) before each change, so
// a run killed at any moment leaves enough on disk for `kinstall recover` to undo or finish it.
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, writeSync } from 'node:fs';
import { lstat, open, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { KinstallError } from './errors.js';

/** One change, recorded before it is made; recovery decides from the file system what happened. */
export interface JournalEntry {
  kind: 'place' | 'write' | 'link' | 'remove' | 'mkdir';
  path: string;
  /** What the path held before the run's first change to it (`dir`: a tree removed whole, a kernel's modules). */
  prior: 'absent' | 'file' | 'symlink' | 'dir';
  /** Same-directory backup of a prior file or tree: present on disk means "restore by renaming it back". */
  backup?: string;
  /** The prior symlink's target. */
  linkTarget?: string;
  /** A directory tree placed whole (a kernel's modules): undone by removing the tree. */
  tree?: boolean;
}

export type JournalPhase = 'committing' | 'committed' | 'rolling-back';

/**
 * In memory every path is absolute; on disk (format 2) each is relative to the root, so a root
 * moved since (kinstall --root /mnt/gentoo, then installkernel inside the chroot) is recovered
 * where it is now, and nothing in the journal can name a path outside it.
 */
export interface JournalData {
  format: 2;
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
export const JOURNAL_FORMAT = 2;

const KINDS = new Set(['place', 'write', 'link', 'remove', 'mkdir']);
const PRIORS = new Set(['absent', 'file', 'symlink', 'dir']);
const PHASES = new Set(['committing', 'committed', 'rolling-back']);

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The deepest existing directory on the way to a path, resolved, with the rest appended. */
function realPathOf(file: string): string {
  for (let dir = file; ; dir = path.dirname(dir)) {
    try {
      return path.join(realpathSync(dir), path.relative(dir, file));
    } catch {
      if (path.dirname(dir) === dir) return file;
    }
  }
}

/**
 * Synchronous on purpose: a write is a few hundred bytes, and onRollback (a sync contract) must be
 * able to record its descriptor before the bootloader tool it protects runs.
 */
export class Journal {
  /** `root`: the root the journaled paths are relative to (--root, or / inside a chroot). */
  constructor(readonly file: string, readonly root: string) {}

  save(data: JournalData): void {
    const dir = path.dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const temp = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(this.toDisk(data), null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
    fsyncDirSync(dir);
  }

  private relative(p: string): string {
    const rel = path.relative(this.root, p);
    if (rel === '' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) throw new Error(`${p} is outside the root ${this.root}: not journaled, not changed`);
    return rel;
  }

  private toDisk(data: JournalData): JournalData {
    return {
      ...data,
      entries: data.entries.map((e) => ({ ...e, path: this.relative(e.path), ...(e.backup ? { backup: this.relative(e.backup) } : {}) })),
      emptiedDirs: data.emptiedDirs.map((d) => this.relative(d)),
    };
  }

  /** A refusal to use the journal: it stays where it is, for a human to look at. */
  private refuse(why: string): KinstallError {
    return new KinstallError('EJOURNAL', { file: this.file, why }, [
      `a kinstall run died and left ${this.file}, which kinstall cannot use to undo it`,
      `check the boot dir (and the ESP, /lib/modules) by hand, then move the journal aside: mv ${this.file} ${this.file}.bad`,
    ]);
  }

  /** A journaled path, relative to the root, as an absolute path under the current root; refused if it leads outside. */
  private resolve(rel: unknown, what: string): string {
    if (typeof rel !== 'string' || rel === '' || path.isAbsolute(rel)) throw this.refuse(`gives ${JSON.stringify(rel)} as ${what}, not a path relative to the root`);
    const full = path.resolve(this.root, rel);
    const realRoot = realPathOf(this.root);
    const inside = (p: string, root: string) => p.startsWith(root === '/' ? '/' : `${root}/`) && p !== root;
    // The parent is resolved, not the path: a link (vmlinuz -> /boot/vmlinuz-KVER) is itself the entry.
    const real = path.join(realPathOf(path.dirname(full)), path.basename(full));
    if (!inside(full, this.root) || !inside(real, realRoot)) throw this.refuse(`names ${rel} (${what}), which leads outside the root ${this.root}`);
    return full;
  }

  private fromDisk(raw: unknown): JournalData {
    const data = raw as Partial<JournalData> & { format?: unknown };
    if (typeof data !== 'object' || data === null || data.format !== JOURNAL_FORMAT) {
      const format = typeof data === 'object' && data !== null ? JSON.stringify(data.format) : 'missing';
      throw this.refuse(`has format ${format}, not ${JOURNAL_FORMAT} (written by another kinstall version?)`);
    }
    if (typeof data.id !== 'string' || !/^[0-9a-f]{1,32}$/.test(data.id)) throw this.refuse(`has no valid transaction id`);
    if (!PHASES.has(String(data.phase)) || !Array.isArray(data.entries)) throw this.refuse('has no valid phase or entries');
    const entries = data.entries.map((raw: Partial<JournalEntry> | null, i): JournalEntry => {
      const e = raw ?? {};
      const what = `entry ${i + 1}`;
      if (!KINDS.has(String(e.kind)) || !PRIORS.has(String(e.prior))) throw this.refuse(`has an unknown kind or prior state in ${what}`);
      const full = this.resolve(e.path, what);
      const entry: JournalEntry = { kind: e.kind as JournalEntry['kind'], path: full, prior: e.prior as JournalEntry['prior'] };
      if (e.backup !== undefined) {
        entry.backup = this.resolve(e.backup, `the backup in ${what}`);
        // A backup is always a side name beside its target: anything else is not kinstall's.
        const sideName = `.${path.basename(full)}.kinstall-old-${data.id}-`;
        if (path.dirname(entry.backup) !== path.dirname(full) || !path.basename(entry.backup).startsWith(sideName)) {
          throw this.refuse(`names ${String(e.backup)} as the backup of ${String(e.path)} (${what}), which is not a side file beside it`);
        }
      }
      if (e.linkTarget !== undefined) entry.linkTarget = String(e.linkTarget);
      if (e.tree === true) entry.tree = true;
      return entry;
    });
    const emptiedDirs = (Array.isArray(data.emptiedDirs) ? data.emptiedDirs : []).map((d, i) => this.resolve(d, `emptied dir ${i + 1}`));
    const reactivate = (Array.isArray(data.reactivate) ? data.reactivate : []).map(String);
    return { ...(data as JournalData), entries, emptiedDirs, reactivate };
  }

  /**
   * The unfinished run's journal (paths absolute under the current root), or undefined when the last
   * run ended cleanly. A journal that cannot be read, parsed or trusted is refused with EJOURNAL.
   */
  load(): JournalData | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.refuse(`cannot be read (${(error as Error).message})`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw this.refuse(`is not valid JSON (${(error as Error).message})`);
    }
    return this.fromDisk(raw);
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
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      // A tree's backup (a kernel's modules) goes only through its journal entry, never by name.
      if (entry.isDirectory() || !kinds.some((kind) => entry.name.includes(`.kinstall-${kind}-${data.id}-`))) continue;
      await rm(path.join(dir, entry.name), { force: true });
      swept.push(path.join(dir, entry.name));
    }
  }
  return swept;
}

/** A tree being filled beside its target (`.NAME.kinstall-new-ID-N/`) when the run died. */
async function sweepTreeTemps(data: JournalData, entry: JournalEntry): Promise<void> {
  const prefix = `.${path.basename(entry.path)}.kinstall-new-${data.id}-`;
  for (const name of await readdir(path.dirname(entry.path)).catch(() => [] as string[])) {
    if (name.startsWith(prefix)) await rm(path.join(path.dirname(entry.path), name), { recursive: true, force: true });
  }
}

async function undoEntry(data: JournalData, entry: JournalEntry): Promise<boolean> {
  if (entry.kind === 'mkdir') return rmdir(entry.path).then(() => true, () => false);
  if (entry.tree) await sweepTreeTemps(data, entry);
  if (entry.prior === 'file' || entry.prior === 'dir') {
    // The target is replaced only once its backup exists: no backup means it was never touched.
    if (!entry.backup || !(await exists(entry.backup))) return false;
    // A placed tree may already stand where the old one goes back.
    if (entry.tree) await rm(entry.path, { recursive: true, force: true });
    await rename(entry.backup, entry.path);
  } else if (entry.prior === 'absent') {
    if (!(await exists(entry.path))) return false;
    await rm(entry.path, { force: true, recursive: entry.tree === true });
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
      await rm(entry.backup, { force: true, recursive: entry.prior === 'dir' });
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
