// Whether a kernel's module index (modules.dep and the rest depmod writes) is current: present, and
// newer than every module, every directory holding one (a module deleted or renamed there), and
// depmod's inputs modules.order and modules.builtin. A walk of stat calls, several times cheaper
// than running depmod on a distribution kernel's thousands of modules.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
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

/** A probe's answer, or undefined where it fails (gone meanwhile, unreadable): the old promises' `.catch`. */
function quietly<T>(probe: () => T): T | undefined {
  try {
    return probe();
  } catch {
    return undefined;
  }
}

/**
 * The first module or module directory under `dir` newer than `time`, as a reason. Synchronous on
 * purpose: a distribution kernel has thousands of modules, and one stat(2) each in a row takes a
 * few milliseconds where as many promises through libuv's thread pool took tens.
 */
function newerUnder(dir: string, time: number, top: boolean): string | undefined {
  for (const entry of quietly(() => readdirSync(dir, { withFileTypes: true })) ?? []) {
    const file = path.join(dir, entry.name);
    // build/ and source/ are links into a build tree, not modules depmod reads.
    if (top && (entry.name === 'build' || entry.name === 'source')) continue;
    if (entry.isDirectory()) {
      const info = quietly(() => lstatSync(file));
      if (info && info.mtimeMs > time) return `${file} changed after the index was built`;
      const reason = newerUnder(file, time, false);
      if (reason) return reason;
    } else if (MODULE.test(entry.name)) {
      const info = quietly(() => statSync(file));
      if (info && info.mtimeMs > time) return `${file} is newer than the index`;
    }
  }
  return undefined;
}
