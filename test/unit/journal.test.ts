// The journal's undo and completion on real files in a scratch directory: every kind of prior
// state, a second run of the same undo (a crash during recovery), and the on-disk journal's life:
// paths relative to the root (a moved root recovers; nothing outside it can be named), EJOURNAL
// for a journal kinstall cannot use, a tree removed whole, and the backup's dir fsync.
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KinstallError } from '../../src/core/errors.js';
import { Journal, type JournalData } from '../../src/core/transaction/journal.js';
import { completeEntries, undoEntries } from '../../src/core/transaction/journal-replay.js';
import { createLogger } from '../../src/core/logger.js';
import { Transaction } from '../../src/core/transaction/transaction.js';
import { emptyPlan, type Plan } from '../../src/core/types.js';
import { snapshotTree } from '../helpers/tree.js';

// Records the order of the calls that make a change durable (link, rename, fsync), passing each through.
const fsCalls = vi.hoisted(() => [] as string[]);
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const open = async (...args: Parameters<typeof real.open>) => {
    const handle = await real.open(...args);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      fsCalls.push(`fsync ${String(args[0])}`);
      return sync();
    };
    return handle;
  };
  const link = async (from: string, to: string) => {
    fsCalls.push(`link ${to}`);
    return real.link(from, to);
  };
  const rename = async (from: string, to: string) => {
    fsCalls.push(`rename ${from} ${to}`);
    return real.rename(from, to);
  };
  return { ...real, open, link, rename, default: { ...real, open, link, rename } };
});

let dir = '';
const extra: string[] = [];
afterEach(() => {
  for (const d of [dir, ...extra.splice(0)]) rmSync(d, { recursive: true, force: true });
});

function scratch(): { boot: string; journalFile: string } {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-journal-'));
  const boot = path.join(dir, 'boot');
  mkdirSync(boot);
  writeFileSync(path.join(boot, 'kept'), 'old kept\n');
  writeFileSync(path.join(boot, 'doomed'), 'old doomed\n');
  symlinkSync('kept', path.join(boot, 'link'));
  return { boot, journalFile: path.join(dir, 'var/lib/kinstall/journal.json') };
}

const log = createLogger({ verbose: false, quiet: true });

/** Records the journal's writes (`journal PHASE`) and its deletion in fsCalls, passing them through; returns the undo. */
function recordJournal(): () => void {
  const realSave = Journal.prototype.save;
  const realDelete = Journal.prototype.delete;
  const saves = vi.spyOn(Journal.prototype, 'save').mockImplementation(function (this: Journal, data: JournalData) {
    fsCalls.push(`journal ${data.phase}`);
    realSave.call(this, data);
  });
  const deletes = vi.spyOn(Journal.prototype, 'delete').mockImplementation(function (this: Journal) {
    fsCalls.push('journal deleted');
    realDelete.call(this);
  });
  return () => {
    saves.mockRestore();
    deletes.mockRestore();
  };
}

function plan(boot: string) {
  const p = emptyPlan();
  p.write.push(
    { path: path.join(boot, 'kept'), content: 'new kept\n' },
    { path: path.join(boot, 'sub/dir/fresh'), content: 'fresh\n' },
  );
  p.link.push({ path: path.join(boot, 'link'), target: 'fresh' });
  p.remove.push(path.join(boot, 'doomed'));
  return p;
}

describe('Transaction with a journal', () => {
  it('journals before changing, rolls back byte-identically and deletes the journal', async () => {
    const { boot, journalFile } = scratch();
    const before = snapshotTree(boot);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.apply(plan(boot));
    const data = new Journal(journalFile, dir).load();
    expect(data?.phase).toBe('committing');
    // The plan's files are journaled ahead in one write, a new path in a directory still to be made
    // with its mkdirs (first); a symlink is journaled as it comes.
    expect(data?.entries.map((e) => `${e.kind} ${path.relative(boot, e.path)} ${e.prior}`)).toEqual([
      'mkdir sub absent',
      'mkdir sub/dir absent',
      'write kept file',
      'write sub/dir/fresh absent',
      'remove doomed file',
      'link link symlink',
    ]);
    expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('new kept\n');
    await txn.rollback();
    expect(snapshotTree(boot)).toEqual(before);
    expect(existsSync(journalFile)).toBe(false);
  });

  it('plans journaled ahead are on disk before any change; an entry no longer true is rewritten before its change', async () => {
    const { boot, journalFile } = scratch();
    const before = snapshotTree(boot);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    const first = emptyPlan();
    first.remove.push(path.join(boot, 'doomed'));
    const second = emptyPlan();
    second.remove.push(path.join(boot, 'kept'), path.join(boot, 'link'));
    await txn.journalPlans([first, second]);
    const ahead = new Journal(journalFile, dir).load();
    // Files only (a symlink's undo needs no backup, so it is journaled as it comes); nothing changed yet.
    expect(ahead?.entries.map((e) => `${e.kind} ${path.basename(e.path)} ${e.prior}`)).toEqual([
      'remove doomed file',
      'remove kept file',
    ]);
    expect(snapshotTree(boot)).toEqual(before);
    expect(txn.changedPaths).toEqual([]);
    await txn.apply(first);
    expect(txn.changedPaths).toEqual([path.join(boot, 'doomed')]);
    // Between the ahead write and its change, "kept" became a symlink: its entry is replaced first.
    rmSync(path.join(boot, 'kept'));
    symlinkSync('doomed', path.join(boot, 'kept'));
    await txn.apply(second);
    const now = new Journal(journalFile, dir).load();
    expect(now?.entries.map((e) => `${e.kind} ${path.basename(e.path)} ${e.prior}`)).toEqual([
      'remove doomed file',
      'remove kept symlink',
      'remove link symlink',
    ]);
    await txn.rollback();
    // Each path as it was before its first change: "kept" the symlink it had become.
    expect(snapshotTree(boot)).toEqual({ doomed: before.doomed, kept: 'link doomed', link: before.link });
  });

  it('the changed directories are fsynced before the journal says committed, not after each change', async () => {
    const { boot, journalFile } = scratch();
    fsCalls.length = 0;
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    const p = emptyPlan();
    p.remove.push(path.join(boot, 'doomed'), path.join(boot, 'kept'));
    await txn.apply(p);
    expect(fsCalls.filter((c) => c === `fsync ${boot}`)).toEqual([]);
    await txn.finish();
    expect(fsCalls.filter((c) => c === `fsync ${boot}`)).toEqual([`fsync ${boot}`]);
  });

  it('new files are journaled ahead, one in a new directory with its mkdirs, in one write per plan', async () => {
    const { boot, journalFile } = scratch();
    const before = snapshotTree(boot);
    const saves = vi.spyOn(Journal.prototype, 'save');
    try {
      const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
      const p = emptyPlan();
      p.write.push({ path: path.join(boot, 'new1'), content: '1\n' }, { path: path.join(boot, 'new2'), content: '2\n' });
      await txn.journalPlans([p]);
      // Ahead, nothing made yet: undone as nothing.
      expect(new Journal(journalFile, dir).load()?.entries.map((e) => `${e.kind} ${path.basename(e.path)} ${e.prior}`)).toEqual([
        'write new1 absent',
        'write new2 absent',
      ]);
      expect(saves).toHaveBeenCalledTimes(1);
      expect(txn.changedPaths).toEqual([]);
      await txn.apply(p);
      // Still absent when its change came: no second write for these two.
      expect(saves).toHaveBeenCalledTimes(1);
      // A file in a new directory and one beside: one write, the mkdirs first, before any change.
      const deep = emptyPlan();
      deep.write.push({ path: path.join(boot, 'a/b/new3'), content: '3\n' }, { path: path.join(boot, 'new4'), content: '4\n' });
      await txn.journalPlans([deep]);
      expect(saves).toHaveBeenCalledTimes(2);
      expect(existsSync(path.join(boot, 'a'))).toBe(false);
      await txn.apply(deep);
      expect(saves).toHaveBeenCalledTimes(2);
      expect(
        new Journal(journalFile, dir)
          .load()
          ?.entries.slice(2)
          .map((e) => `${e.kind} ${path.relative(boot, e.path)}`),
      ).toEqual(['mkdir a', 'mkdir a/b', 'write a/b/new3', 'write new4']);
      await txn.rollback();
      expect(snapshotTree(boot)).toEqual(before);
    } finally {
      saves.mockRestore();
    }
  });

  it('a new file is renamed into place, then fsynced while the run goes on; with nothing to complete, the journal goes without a committed write', async () => {
    const { boot, journalFile } = scratch();
    const target = path.join(boot, 'fresh');
    const p = emptyPlan();
    p.write.push({ path: target, content: 'fresh\n' });
    fsCalls.length = 0;
    const restore = recordJournal();
    try {
      const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
      await txn.apply(p);
      await txn.settle();
      const renamed = fsCalls.findIndex((c) => c.startsWith('rename ') && c.endsWith(` ${target}`));
      const synced = fsCalls.indexOf(`fsync ${target}`);
      expect(renamed, fsCalls.join('\n')).toBeGreaterThanOrEqual(0);
      expect(synced).toBeGreaterThan(renamed);
      await txn.finish();
      // The new file and its directory are on disk before the journal goes: the run is final then.
      expect(fsCalls.indexOf('journal deleted')).toBeGreaterThan(fsCalls.indexOf(`fsync ${boot}`));
      expect(fsCalls.indexOf(`fsync ${boot}`)).toBeGreaterThan(synced);
      expect(fsCalls.filter((c) => c.startsWith('journal '))).toEqual(['journal committing', 'journal deleted']);
      expect(existsSync(journalFile)).toBe(false);
      expect(readFileSync(target, 'utf8')).toBe('fresh\n');
    } finally {
      restore();
    }
  });

  it('with a backup to drop, the journal says committed (after the fsyncs) before it is dropped', async () => {
    const { boot, journalFile } = scratch();
    fsCalls.length = 0;
    const restore = recordJournal();
    try {
      const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
      const p = emptyPlan();
      p.write.push({ path: path.join(boot, 'kept'), content: 'new kept\n' });
      await txn.apply(p);
      await txn.finish();
      expect(fsCalls.indexOf('journal committed')).toBeGreaterThan(fsCalls.indexOf(`fsync ${boot}`));
      expect(readdirSync(boot).filter((n) => n.includes('.kinstall-'))).toEqual([]);
      expect(fsCalls.filter((c) => c.startsWith('journal '))).toEqual([
        'journal committing',
        'journal committed',
        'journal deleted',
      ]);
      expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('new kept\n');
    } finally {
      restore();
    }
  });

  it('finish drops the backups and the journal', async () => {
    const { boot, journalFile } = scratch();
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.apply(plan(boot));
    await txn.finish();
    expect(readdirSync(boot).sort()).toEqual(['kept', 'link', 'sub']);
    expect(readlinkSync(path.join(boot, 'link'))).toBe('fresh');
    expect(existsSync(journalFile)).toBe(false);
  });
});

describe('a file this run placed, placed again elsewhere', () => {
  /** The neutral location's image (placed first, from outside) and where a layout puts it next. */
  function twoPlaces(
    secondDir: (scratchDir: string) => string,
    mode?: number,
  ): { first: string; second: string; plans: [Plan, Plan] } {
    const { boot } = scratch();
    const source = path.join(dir, 'bzImage');
    writeFileSync(source, 'kernel bytes\n');
    const first = path.join(boot, 'modules/vmlinuz');
    const second = path.join(secondDir(dir), 'linux');
    const one = emptyPlan();
    one.place.push({ from: source, to: first });
    const two = emptyPlan();
    two.place.push({ from: first, to: second, ...(mode === undefined ? {} : { mode }) });
    return { first, second, plans: [one, two] };
  }

  it('on the same filesystem: a hard link to the placed file (its bytes written once), which a rollback removes with it', async () => {
    const { first, second, plans } = twoPlaces((d) => path.join(d, 'boot/esp/token/6.1.0'));
    const before = snapshotTree(path.join(dir, 'boot'));
    const txn = new Transaction(log, { journal: { file: path.join(dir, 'var/lib/kinstall/journal.json'), root: dir } });
    fsCalls.length = 0;
    await txn.apply(plans[0]);
    await txn.apply(plans[1]);
    expect(fsCalls.filter((c) => c.startsWith('link ')).map((c) => path.basename(c))).toEqual([
      expect.stringMatching(/^\.linux\.kinstall-new-/),
    ]);
    expect(lstatSync(second).ino).toBe(lstatSync(first).ino);
    expect(lstatSync(second).mode & 0o777).toBe(0o644);
    expect(readFileSync(second, 'utf8')).toBe('kernel bytes\n');
    await txn.rollback();
    expect(snapshotTree(path.join(dir, 'boot'))).toEqual(before);
  });

  it('with another mode, or a file the run did not place: a copy', async () => {
    const { first, second, plans } = twoPlaces((d) => path.join(d, 'boot/esp'), 0o600);
    const txn = new Transaction(log, { journal: { file: path.join(dir, 'var/lib/kinstall/journal.json'), root: dir } });
    await txn.apply(plans[0]);
    await txn.apply(plans[1]);
    expect(lstatSync(second).ino).not.toBe(lstatSync(first).ino);
    expect(lstatSync(second).mode & 0o777).toBe(0o600);
    expect(lstatSync(first).mode & 0o777).toBe(0o644);
    // The source of the first place was never placed by the run: copied, not linked.
    expect(lstatSync(first).ino).not.toBe(lstatSync(path.join(dir, 'bzImage')).ino);
    await txn.finish();
  });

  it('on another filesystem (link(2) says EXDEV): a copy of the bytes', async () => {
    const shm = mkdtempSync('/dev/shm/kinstall-journal-');
    extra.push(shm);
    const { first, second, plans } = twoPlaces(() => path.join(shm, 'esp'));
    expect(lstatSync(shm).dev, '/dev/shm must be another filesystem than the scratch dir').not.toBe(lstatSync(dir).dev);
    const txn = new Transaction(log, { journal: { file: path.join(dir, 'var/lib/kinstall/journal.json'), root: '/' } });
    await txn.apply(plans[0]);
    await txn.apply(plans[1]);
    expect(readFileSync(second, 'utf8')).toBe('kernel bytes\n');
    expect(lstatSync(second).dev).not.toBe(lstatSync(first).dev);
    await txn.finish();
  });
});

describe('undoEntries after a crash', () => {
  /** The state a run killed right after its last change leaves: the journal and all side files. */
  async function crashed(): Promise<{ boot: string; data: JournalData }> {
    const { boot, journalFile } = scratch();
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.apply(plan(boot));
    const data = new Journal(journalFile, dir).load();
    if (!data) throw new Error('no journal');
    return { boot, data };
  }

  it('restores every kind of prior state, removes temps and created dirs, and is safe to run twice', async () => {
    const { boot, data } = await crashed();
    // A temp file a crash mid-copy would leave, and a partial backup copy.
    writeFileSync(path.join(boot, `.kept.kinstall-new-${data.id}-99`), 'half');
    writeFileSync(path.join(boot, `.kept.kinstall-old-${data.id}-98.part`), 'half');
    const first = await undoEntries(data);
    expect(first.failures).toEqual([]);
    expect(first.restored.map((p) => path.relative(boot, p)).sort()).toEqual([
      'doomed',
      'kept',
      'link',
      'sub',
      'sub/dir',
      'sub/dir/fresh',
    ]);
    expect(readdirSync(boot).sort()).toEqual(['doomed', 'kept', 'link']);
    expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('old kept\n');
    expect(readFileSync(path.join(boot, 'doomed'), 'utf8')).toBe('old doomed\n');
    expect(lstatSync(path.join(boot, 'link')).isSymbolicLink() && readlinkSync(path.join(boot, 'link'))).toBe('kept');
    const again = await undoEntries(data);
    expect(again).toEqual({ restored: [], failures: [] });
  });

  it('a change journaled but never made is left alone', async () => {
    const { boot } = scratch();
    const data: JournalData = {
      format: 2,
      id: 'abcd1234',
      pid: 1,
      started: '',
      phase: 'committing',
      emptiedDirs: [],
      reactivate: [],
      entries: [
        { kind: 'write', path: path.join(boot, 'kept'), prior: 'file', backup: path.join(boot, '.kept.kinstall-old-abcd1234-1') },
      ],
    };
    expect(await undoEntries(data)).toEqual({ restored: [], failures: [] });
    expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('old kept\n');
  });

  it('completeEntries finishes a run that was final: backups and side files go, new files stay', async () => {
    const { boot, data } = await crashed();
    await completeEntries(data);
    expect(readdirSync(boot).sort()).toEqual(['kept', 'link', 'sub']);
    expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('new kept\n');
  });
});

/** What load() throws, as the CLI would print it. */
function refusal(journal: Journal): KinstallError {
  try {
    journal.load();
  } catch (error) {
    if (error instanceof KinstallError) return error;
    throw error;
  }
  throw new Error('the journal was accepted');
}

describe('the on-disk journal (format 2): paths relative to the root', () => {
  it('stores every path and backup relative to the root', async () => {
    const { boot, journalFile } = scratch();
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.apply(plan(boot));
    const raw = JSON.parse(readFileSync(journalFile, 'utf8')) as {
      format: number;
      entries: Array<{ path: string; backup?: string }>;
    };
    expect(raw.format).toBe(2);
    expect(raw.entries.map((e) => e.path)).toEqual([
      'boot/sub',
      'boot/sub/dir',
      'boot/kept',
      'boot/sub/dir/fresh',
      'boot/doomed',
      'boot/link',
    ]);
    // The two files that existed (kept, doomed) have a backup; the rest did not exist.
    const backups = raw.entries.flatMap((e) => (e.backup ? [e.backup] : []));
    expect(backups).toHaveLength(2);
    expect(backups.every((b) => /^boot\/\.(kept|doomed)\.kinstall-old-/.test(b))).toBe(true);
    expect(readFileSync(journalFile, 'utf8')).not.toContain(dir);
    await txn.rollback();
  });

  it('a root moved after the crash (--root /mnt/gentoo, then inside the chroot) is recovered where it is now', async () => {
    const { boot, journalFile } = scratch();
    const before = snapshotTree(boot);
    await new Transaction(log, { journal: { file: journalFile, root: dir } }).apply(plan(boot));
    const moved = `${dir}-moved`;
    renameSync(dir, moved);
    extra.push(moved);
    const data = new Journal(path.join(moved, 'var/lib/kinstall/journal.json'), moved).load();
    if (!data) throw new Error('no journal');
    expect(data.entries).toHaveLength(6);
    expect(data.entries.every((e) => e.path.startsWith(`${moved}/`))).toBe(true);
    const result = await undoEntries(data);
    expect(result.failures).toEqual([]);
    expect(result.restored).toHaveLength(6);
    expect(snapshotTree(path.join(moved, 'boot'))).toEqual(before);
  });
});

describe('a journal kinstall cannot use is refused with EJOURNAL (exit 6), naming the file', () => {
  /** A scratch root, a "host" file beside it, and a journal whose only entry is `entry`. */
  function crafted(entry: Record<string, unknown>, extraData: Record<string, unknown> = {}) {
    const { boot, journalFile } = scratch();
    const victim = `${dir}-host-file`;
    extra.push(victim);
    writeFileSync(victim, 'a host file\n');
    mkdirSync(path.dirname(journalFile), { recursive: true });
    const data = {
      format: 2,
      id: 'abcd1234',
      pid: 1,
      started: '',
      phase: 'committing',
      emptiedDirs: [],
      reactivate: [],
      entries: [entry],
      ...extraData,
    };
    writeFileSync(journalFile, JSON.stringify(data));
    return { boot, journal: new Journal(journalFile, dir), victim };
  }

  const cases: Array<[string, (victim: string) => Record<string, unknown>, RegExp]> = [
    [
      'a path out of the root with ..',
      (v) => ({ kind: 'write', path: `../${path.basename(v)}`, prior: 'absent' }),
      /names \.\.\/\S+ \(entry 1\), which leads outside the root/,
    ],
    [
      'a .. hidden in the middle',
      (v) => ({ kind: 'write', path: `boot/../../${path.basename(v)}`, prior: 'absent' }),
      /names boot\/\.\.\/\.\.\/\S+ \(entry 1\), which leads outside/,
    ],
    [
      'a host-absolute path (format 1 style)',
      (v) => ({ kind: 'write', path: v, prior: 'absent' }),
      /gives "\/\S+" as entry 1, not a path relative to the root/,
    ],
    [
      'a backup out of the root',
      () => ({ kind: 'write', path: 'boot/kept', prior: 'file', backup: '../.kept.kinstall-old-abcd1234-1' }),
      /names \.\.\/\.kept\.kinstall-old-abcd1234-1 \(the backup in entry 1\)/,
    ],
    [
      'a backup that is not a side file of its target',
      () => ({ kind: 'write', path: 'boot/kept', prior: 'file', backup: 'boot/doomed' }),
      /names boot\/doomed as the backup of boot\/kept \(entry 1\), which is not a side file beside it/,
    ],
  ];
  for (const [name, entry, message] of cases) {
    it(`${name}: refused, nothing touched`, () => {
      const { boot, journal, victim } = crafted({});
      writeFileSync(
        journal.file,
        JSON.stringify({ ...JSON.parse(readFileSync(journal.file, 'utf8')), entries: [entry(victim)] }),
      );
      const before = snapshotTree(boot);
      const error = refusal(journal);
      expect(error.code).toBe('EJOURNAL');
      expect(error.exitCode).toBe(6);
      expect(error.message).toContain(journal.file);
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/inspect it, and move it aside once the boot dir is checked$/);
      expect(error.message).not.toContain('\n');
      expect(readFileSync(victim, 'utf8')).toBe('a host file\n');
      expect(snapshotTree(boot)).toEqual(before);
      expect(existsSync(journal.file)).toBe(true);
    });
  }

  it('a path through a symlinked directory that leads out of the root is refused', () => {
    const { boot, journal, victim } = crafted({});
    const outside = `${dir}-outside`;
    extra.push(outside);
    mkdirSync(outside);
    symlinkSync(outside, path.join(boot, 'escape'));
    writeFileSync(
      journal.file,
      JSON.stringify({
        ...JSON.parse(readFileSync(journal.file, 'utf8')),
        entries: [{ kind: 'write', path: 'boot/escape/x', prior: 'absent' }],
      }),
    );
    expect(refusal(journal).message).toMatch(/names boot\/escape\/x \(entry 1\), which leads outside the root/);
    expect(readFileSync(victim, 'utf8')).toBe('a host file\n');
  });

  it('a link inside the root whose target is absolute is still accepted (only its directory is resolved)', () => {
    const { boot, journal } = crafted({ kind: 'link', path: 'boot/abs', prior: 'symlink', linkTarget: 'kept' });
    symlinkSync('/etc/hostname', path.join(boot, 'abs'));
    expect(journal.load()?.entries[0]?.path).toBe(path.join(boot, 'abs'));
  });

  it('a truncated journal (invalid JSON) is EJOURNAL, not ESTEP', () => {
    const { journalFile } = scratch();
    mkdirSync(path.dirname(journalFile), { recursive: true });
    writeFileSync(journalFile, '{"format":1,"entr');
    const error = refusal(new Journal(journalFile, dir));
    expect(error.code).toBe('EJOURNAL');
    expect(error.message).toMatch(
      new RegExp(`^cannot use the journal of an interrupted run, ${journalFile}: it is not valid JSON \\(.*\\); inspect it`),
    );
    expect(error.details.join('\n')).toContain(`mv ${journalFile} ${journalFile}.bad`);
  });

  it('an old or unknown format is EJOURNAL', () => {
    const { journalFile } = scratch();
    mkdirSync(path.dirname(journalFile), { recursive: true });
    writeFileSync(
      journalFile,
      JSON.stringify({
        format: 1,
        id: 'abcd',
        pid: 1,
        started: '',
        phase: 'committing',
        entries: [],
        emptiedDirs: [],
        reactivate: [],
      }),
    );
    expect(refusal(new Journal(journalFile, dir)).message).toContain('it has format 1, not 2');
  });
});

describe('removeTree: a directory removed as one journaled change', () => {
  function tree() {
    const { boot, journalFile } = scratch();
    const modules = path.join(dir, 'lib/modules/6.1.0');
    mkdirSync(path.join(modules, 'kernel/fs'), { recursive: true });
    writeFileSync(path.join(modules, 'kernel/fs/a.ko'), 'module a\n');
    writeFileSync(path.join(modules, 'modules.dep'), 'kernel/fs/a.ko:\n');
    return { boot, journalFile, modules, base: path.dirname(modules) };
  }

  it('is renamed aside in one step; a rollback renames it back, byte-identical', async () => {
    const { journalFile, modules, base } = tree();
    const before = snapshotTree(base);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.removeTree(modules);
    expect(existsSync(modules)).toBe(false);
    expect(readdirSync(base)).toEqual([expect.stringMatching(/^\.6\.1\.0\.kinstall-old-[0-9a-f]+-1$/)]);
    expect(new Journal(journalFile, dir).load()?.entries).toEqual([
      expect.objectContaining({ kind: 'remove', path: modules, prior: 'dir' }),
    ]);
    await txn.rollback();
    expect(snapshotTree(base)).toEqual(before);
  });

  it('after a crash: undoEntries restores it; once committed, completeEntries deletes it', async () => {
    const { journalFile, modules, base } = tree();
    const before = snapshotTree(base);
    await new Transaction(log, { journal: { file: journalFile, root: dir } }).removeTree(modules);
    const data = new Journal(journalFile, dir).load();
    if (!data) throw new Error('no journal');
    const copy = `${dir}-copy`;
    extra.push(copy);
    cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
    expect((await undoEntries(data)).restored).toEqual([modules]);
    expect(snapshotTree(base)).toEqual(before);
    const committed = new Journal(path.join(copy, 'var/lib/kinstall/journal.json'), copy).load();
    if (!committed) throw new Error('no journal');
    await completeEntries(committed);
    expect(readdirSync(path.join(copy, 'lib/modules'))).toEqual([]);
  });

  it('finish deletes the renamed tree', async () => {
    const { journalFile, modules, base } = tree();
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.removeTree(modules);
    await txn.finish();
    expect(readdirSync(base)).toEqual([]);
    expect(existsSync(journalFile)).toBe(false);
  });
});

describe('placeTree: a directory tree placed as one journaled change', () => {
  function trees() {
    const { journalFile } = scratch();
    const modules = path.join(dir, 'lib/modules/6.1.0');
    mkdirSync(path.join(modules, 'kernel/fs'), { recursive: true });
    writeFileSync(path.join(modules, 'kernel/fs/old.ko'), 'old module\n');
    writeFileSync(path.join(modules, 'vmlinuz'), 'staged image\n');
    const fill = async (into: string) => {
      mkdirSync(path.join(into, 'net'), { recursive: true });
      writeFileSync(path.join(into, 'net/new.ko'), 'new module\n');
    };
    return { journalFile, modules, base: path.dirname(modules), fill };
  }

  it('replaces the tree; a rollback puts the old one back byte-identical, the rest of the directory untouched', async () => {
    const { journalFile, modules, base, fill } = trees();
    const before = snapshotTree(base);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.placeTree(path.join(modules, 'kernel'), fill);
    expect(readFileSync(path.join(modules, 'kernel/net/new.ko'), 'utf8')).toBe('new module\n');
    expect(existsSync(path.join(modules, 'kernel/fs'))).toBe(false);
    await txn.rollback();
    expect(snapshotTree(base)).toEqual(before);
  });

  it('a fill that fails leaves nothing behind; a new tree is removed by rollback', async () => {
    const { journalFile, modules, base } = trees();
    const before = snapshotTree(base);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await expect(txn.placeTree(path.join(modules, 'kernel'), () => Promise.reject(new Error('disk full')))).rejects.toThrow(
      'disk full',
    );
    await txn.placeTree(path.join(modules, 'extra'), async (into) => writeFileSync(path.join(into, 'x.ko'), 'x\n'));
    expect(existsSync(path.join(modules, 'extra/x.ko'))).toBe(true);
    await txn.rollback();
    expect(snapshotTree(base)).toEqual(before);
  });

  it('after a crash: undoEntries removes the new tree and renames the old one back; finish drops the old', async () => {
    const { journalFile, modules, base, fill } = trees();
    const before = snapshotTree(base);
    await new Transaction(log, { journal: { file: journalFile, root: dir } }).placeTree(path.join(modules, 'kernel'), fill);
    const data = new Journal(journalFile, dir).load();
    if (!data) throw new Error('no journal');
    expect(data.entries.at(-1)).toEqual(expect.objectContaining({ kind: 'place', prior: 'dir', tree: true }));
    await undoEntries(data);
    expect(snapshotTree(base)).toEqual(before);
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.placeTree(path.join(modules, 'kernel'), fill);
    await txn.finish();
    expect(readdirSync(modules).sort()).toEqual(['kernel', 'vmlinuz']);
    expect(readdirSync(path.join(modules, 'kernel'))).toEqual(['net']);
  });
});

describe('a backup is durable before the target is replaced', () => {
  it('the directory is fsynced after the hard-link backup and before the rename over the target', async () => {
    const { boot, journalFile } = scratch();
    const target = path.join(boot, 'kept');
    const p = emptyPlan();
    p.write.push({ path: target, content: 'new kept\n' });
    fsCalls.length = 0;
    const txn = new Transaction(log, { journal: { file: journalFile, root: dir } });
    await txn.apply(p);
    const backupAt = fsCalls.findIndex((c) => /^link .*\/\.kept\.kinstall-old-/.test(c));
    const replacedAt = fsCalls.findIndex((c) => c.startsWith('rename ') && c.endsWith(` ${target}`));
    expect(backupAt, fsCalls.join('\n')).toBeGreaterThanOrEqual(0);
    expect(replacedAt).toBeGreaterThan(backupAt);
    expect(fsCalls.slice(backupAt, replacedAt)).toContain(`fsync ${boot}`);
    await txn.rollback();
  });
});
