// The transaction's intent journal: written (tmp, fsync, rename, fsync dir) before each change, so
// a run killed at any moment leaves enough on disk for `kinstall recover` to undo or finish it.
import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { KinstallError } from '../errors.js';

/** One change, recorded before it is made; recovery decides from the file system what happened. */
export interface JournalEntry {
  kind: 'place' | 'write' | 'link' | 'remove' | 'mkdir';
  path: string;
  /** What the path held before the run's first change to it (`dir`: a tree removed whole, a kernel's modules). */
  prior: 'absent' | 'file' | 'symlink' | 'dir';
  /**
   * Same-directory backup of a prior file or tree (or a removed file's in SPILL_DIR): present on
   * disk means "restore by renaming (from SPILL_DIR: copying) it back".
   */
  backup?: string;
  /** The prior symlink's target. */
  linkTarget?: string;
  /** A directory tree placed whole (a kernel's modules): undone by removing the tree. */
  tree?: boolean;
}

export type JournalPhase = 'committing' | 'committed' | 'rolling-back';

export const JOURNAL_PATH = '/var/lib/kinstall/journal.json';
/**
 * Where a removal keeps its backup when it must free the space on its own filesystem (add
 * --make-room): on the root's filesystem, restored by copying back.
 */
export const SPILL_DIR = '/var/lib/kinstall/spill';
export const JOURNAL_FORMAT = 2;

/**
 * In memory every path is absolute; on disk (format 2) each is relative to the root, so a root
 * moved since (kinstall --root /mnt/gentoo, then installkernel inside the chroot) is recovered
 * where it is now, and nothing in the journal can name a path outside it.
 */
export interface JournalData {
  format: typeof JOURNAL_FORMAT;
  /** The transaction's id: its temp files are named `.NAME.kinstall-new-ID-N`. */
  id: string;
  pid: number;
  started: string;
  phase: JournalPhase;
  entries: JournalEntry[];
  /** Directories a removal plan empties, deleted when the run is final. */
  emptiedDirs: string[];
  /** Layouts whose bootloader tool ran on the new files: recovery calls their recover() on the restored ones. */
  reactivate: string[];
  /** Per layout, the note its first onRollback gave (the tool's state before this run). */
  notes?: Record<string, unknown>;
}

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
  constructor(
    readonly file: string,
    readonly root: string,
  ) {}

  /** The journal's directory exists: made (or found) by the first save. */
  private dirMade = false;

  save(data: JournalData): void {
    const dir = path.dirname(this.file);
    if (!this.dirMade) mkdirSync(dir, { recursive: true, mode: 0o755 });
    this.dirMade = true;
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
    if (rel === '' || rel === '..' || rel.startsWith('../') || path.isAbsolute(rel))
      throw new Error(`${p} is outside the root ${this.root}: not journaled, not changed`);
    return rel;
  }

  private toDisk(data: JournalData): JournalData {
    return {
      ...data,
      entries: data.entries.map((e) => ({
        ...e,
        path: this.relative(e.path),
        ...(e.backup ? { backup: this.relative(e.backup) } : {}),
      })),
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
    if (typeof rel !== 'string' || rel === '' || path.isAbsolute(rel))
      throw this.refuse(`gives ${JSON.stringify(rel)} as ${what}, not a path relative to the root`);
    const full = path.resolve(this.root, rel);
    const realRoot = realPathOf(this.root);
    const inside = (p: string, root: string) => p.startsWith(root === '/' ? '/' : `${root}/`) && p !== root;
    // The parent is resolved, not the path: a link (vmlinuz -> /boot/vmlinuz-KVER) is itself the entry.
    const real = path.join(realPathOf(path.dirname(full)), path.basename(full));
    if (!inside(full, this.root) || !inside(real, realRoot))
      throw this.refuse(`names ${rel} (${what}), which leads outside the root ${this.root}`);
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
      if (!KINDS.has(String(e.kind)) || !PRIORS.has(String(e.prior)))
        throw this.refuse(`has an unknown kind or prior state in ${what}`);
      const full = this.resolve(e.path, what);
      const entry: JournalEntry = { kind: e.kind as JournalEntry['kind'], path: full, prior: e.prior as JournalEntry['prior'] };
      if (e.backup !== undefined) {
        entry.backup = this.resolve(e.backup, `the backup in ${what}`);
        // A backup is always a side name beside its target (or in the spill dir): anything else is not kinstall's.
        const sideName = `.${path.basename(full)}.kinstall-old-${data.id}-`;
        const dir = path.dirname(entry.backup);
        const spilled = e.kind === 'remove' && dir === path.join(this.root, SPILL_DIR);
        if ((dir !== path.dirname(full) && !spilled) || !path.basename(entry.backup).startsWith(sideName)) {
          throw this.refuse(
            `names ${String(e.backup)} as the backup of ${String(e.path)} (${what}), which is not a side file beside it`,
          );
        }
      }
      if (e.linkTarget !== undefined) entry.linkTarget = String(e.linkTarget);
      if (e.tree === true) entry.tree = true;
      return entry;
    });
    const emptiedDirs = (Array.isArray(data.emptiedDirs) ? data.emptiedDirs : []).map((d, i) =>
      this.resolve(d, `emptied dir ${i + 1}`),
    );
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
