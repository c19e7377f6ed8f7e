// Acting on a journal: undo a dead or failed run's changes from what is on disk, or complete a run
// that had finished (drop its backups).
import { copyFile, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { fsyncDir, fsyncPath, pathExists } from '../fs.js';
import type { JournalData, JournalEntry } from './journal.js';

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

/** Renames the backup back; one in the spill dir (another filesystem) is copied beside the target first. */
async function restoreBackup(data: JournalData, backup: string, target: string): Promise<void> {
  if (path.dirname(backup) === path.dirname(target)) return rename(backup, target);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.kinstall-new-${data.id}-undo`);
  await copyFile(backup, temp);
  await fsyncPath(temp);
  await rename(temp, target);
  await fsyncDir(path.dirname(target));
  await rm(backup, { force: true });
}

async function undoEntry(data: JournalData, entry: JournalEntry): Promise<boolean> {
  if (entry.kind === 'mkdir')
    return rmdir(entry.path).then(
      () => true,
      () => false,
    );
  if (entry.tree) await sweepTreeTemps(data, entry);
  if (entry.prior === 'file' || entry.prior === 'dir') {
    // The target is replaced only once its backup exists: no backup means it was never touched.
    if (!entry.backup || !(await pathExists(entry.backup))) return false;
    // A placed tree may already stand where the old one goes back.
    if (entry.tree) await rm(entry.path, { recursive: true, force: true });
    await restoreBackup(data, entry.backup, entry.path);
  } else if (entry.prior === 'absent') {
    if (!(await pathExists(entry.path))) return false;
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
export async function undoEntries(
  data: JournalData,
  afterEach: (done: number) => void = () => undefined,
): Promise<{ restored: string[]; failures: string[] }> {
  const restored: string[] = [];
  const failures: string[] = [];
  await sweepSideFiles(data, ['new']);
  for (const entry of [...data.entries].reverse()) {
    try {
      if (await undoEntry(data, entry)) restored.push(entry.path);
    } catch (error) {
      failures.push(`${entry.path}: ${errorMessage(error)}`);
    }
    afterEach(restored.length);
  }
  // A backup whose restore failed is the only copy of the old file: kept for the next attempt.
  if (failures.length === 0) await sweepSideFiles(data, ['old']);
  return { restored, failures };
}

/** The run succeeded: its backups and temps go, and the directories it emptied. */
export async function completeEntries(data: JournalData): Promise<string[]> {
  // The run is final and each backup is its own file or tree: they go side by side, not one by one.
  const gone = await Promise.all(
    data.entries.map(async (entry) => {
      if (!entry.backup || !(await pathExists(entry.backup))) return [];
      await rm(entry.backup, { force: true, recursive: entry.prior === 'dir' });
      return [entry.backup];
    }),
  );
  const dropped = gone.flat();
  await sweepSideFiles(data, ['new', 'old']);
  for (const dir of data.emptiedDirs) {
    if ((await readdir(dir).catch(() => ['?'])).length > 0) continue;
    await rmdir(dir).catch(() => undefined);
    dropped.push(dir);
  }
  return dropped;
}
