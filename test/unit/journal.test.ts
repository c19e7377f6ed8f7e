// The journal's undo and completion on real files in a scratch directory: every kind of prior
// state, a second run of the same undo (a crash during recovery), and the on-disk journal's life.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { completeEntries, Journal, undoEntries, type JournalData } from '../../src/core/journal.js';
import { createLogger } from '../../src/core/logger.js';
import { Transaction } from '../../src/core/transaction.js';
import { emptyPlan } from '../../src/core/types.js';
import { snapshotTree } from '../helpers/tree.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

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

function plan(boot: string) {
  const p = emptyPlan();
  p.write.push({ path: path.join(boot, 'kept'), content: 'new kept\n' }, { path: path.join(boot, 'sub/dir/fresh'), content: 'fresh\n' });
  p.link.push({ path: path.join(boot, 'link'), target: 'fresh' });
  p.remove.push(path.join(boot, 'doomed'));
  return p;
}

describe('Transaction with a journal', () => {
  it('journals before changing, rolls back byte-identically and deletes the journal', async () => {
    const { boot, journalFile } = scratch();
    const before = snapshotTree(boot);
    const txn = new Transaction(log, { journal: journalFile });
    await txn.apply(plan(boot));
    const data = new Journal(journalFile).load();
    expect(data?.phase).toBe('committing');
    expect(data?.entries.map((e) => `${e.kind} ${path.relative(boot, e.path)} ${e.prior}`)).toEqual([
      'write kept file', 'mkdir sub absent', 'mkdir sub/dir absent', 'write sub/dir/fresh absent', 'link link symlink', 'remove doomed file',
    ]);
    expect(readFileSync(path.join(boot, 'kept'), 'utf8')).toBe('new kept\n');
    await txn.rollback();
    expect(snapshotTree(boot)).toEqual(before);
    expect(existsSync(journalFile)).toBe(false);
  });

  it('finish drops the backups and the journal', async () => {
    const { boot, journalFile } = scratch();
    const txn = new Transaction(log, { journal: journalFile });
    await txn.apply(plan(boot));
    await txn.finish();
    expect(readdirSync(boot).sort()).toEqual(['kept', 'link', 'sub']);
    expect(readlinkSync(path.join(boot, 'link'))).toBe('fresh');
    expect(existsSync(journalFile)).toBe(false);
  });
});

describe('undoEntries after a crash', () => {
  /** The state a run killed right after its last change leaves: the journal and all side files. */
  async function crashed(): Promise<{ boot: string; data: JournalData }> {
    const { boot, journalFile } = scratch();
    const txn = new Transaction(log, { journal: journalFile });
    await txn.apply(plan(boot));
    const data = new Journal(journalFile).load();
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
    expect(first.restored.map((p) => path.relative(boot, p)).sort()).toEqual(['doomed', 'kept', 'link', 'sub', 'sub/dir', 'sub/dir/fresh']);
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
      format: 1, id: 'abcd1234', pid: 1, started: '', phase: 'committing', emptiedDirs: [], reactivate: [],
      entries: [{ kind: 'write', path: path.join(boot, 'kept'), prior: 'file', backup: path.join(boot, '.kept.kinstall-old-abcd1234-1') }],
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
