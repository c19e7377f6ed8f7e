// Whether a kernel's module index (modules.dep and the rest depmod writes) is current: present, and
// newer than every module, every directory holding one (a module deleted or renamed there), and
// depmod's inputs modules.order and modules.builtin. A walk of stat calls, several times cheaper
// than running depmod on a distribution kernel's thousands of modules.
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** The index file whose age stands for the index (depmod writes modules.dep with the rest). */
const INDEX = ['modules.dep', 'modules.dep.bin'];
const INPUTS = ['modules.order', 'modules.builtin'];
const MODULE = /\.ko(\.(xz|gz|zst))?$/;

/** Why the index must be rebuilt, or undefined when it is current. */
export async function staleIndexReason(moduleDir: string): Promise<string | undefined> {
  let indexTime = Infinity;
  for (const name of INDEX) {
    const info = await stat(path.join(moduleDir, name)).catch(() => undefined);
    if (!info) return `${name} is missing`;
    indexTime = Math.min(indexTime, info.mtimeMs);
  }
  for (const name of INPUTS) {
    const info = await stat(path.join(moduleDir, name)).catch(() => undefined);
    if (info && info.mtimeMs > indexTime) return `${name} is newer than the index`;
  }
  return newerUnder(moduleDir, indexTime, true);
}

/** The first module or module directory under `dir` newer than `time`, as a reason. */
async function newerUnder(dir: string, time: number, top: boolean): Promise<string | undefined> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const checks = entries.map(async (entry): Promise<string | undefined> => {
    const file = path.join(dir, entry.name);
    // build/ and source/ are links into a build tree, not modules depmod reads.
    if (top && (entry.name === 'build' || entry.name === 'source')) return undefined;
    if (entry.isDirectory()) {
      const info = await lstat(file).catch(() => undefined);
      if (info && info.mtimeMs > time) return `${file} changed after the index was built`;
      return newerUnder(file, time, false);
    }
    if (!MODULE.test(entry.name)) return undefined;
    const info = await stat(file).catch(() => undefined);
    return info && info.mtimeMs > time ? `${file} is newer than the index` : undefined;
  });
  return (await Promise.all(checks)).find((reason) => reason !== undefined);
}
