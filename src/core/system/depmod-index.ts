// Whether a kernel's module index (modules.dep and the rest depmod writes) is current: present, and
// newer than every module, every directory holding one (a module deleted or renamed there), and
// depmod's inputs modules.order and modules.builtin. find(1) looks, in a process of its own, so the
// look runs beside kinstall's own work; where find cannot run, a walk of stat calls here. Either is
// several times cheaper than running depmod on a distribution kernel's thousands of modules.
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { stat } from '../quick-fs.js';
import path from 'node:path';
import type { Exec } from '../exec.js';

/** The index file whose age stands for the index (depmod writes modules.dep with the rest). */
const INDEX = ['modules.dep', 'modules.dep.bin'];
const INPUTS = ['modules.order', 'modules.builtin'];
const MODULE = /\.ko(\.(xz|gz|zst))?$/;

/**
 * Why the index must be rebuilt, or undefined when it is current. With `exec`, find(1) walks the
 * tree (the walk below where it cannot run).
 */
export async function staleIndexReason(moduleDir: string, exec?: Exec): Promise<string | undefined> {
  let indexTime = Infinity;
  let oldest = '';
  for (const name of INDEX) {
    const info = await stat(path.join(moduleDir, name)).catch(() => undefined);
    if (!info) return `${name} is missing`;
    if (info.mtimeMs < indexTime) [indexTime, oldest] = [info.mtimeMs, path.join(moduleDir, name)];
  }
  for (const name of INPUTS) {
    const info = await stat(path.join(moduleDir, name)).catch(() => undefined);
    if (info && info.mtimeMs > indexTime) return `${name} is newer than the index`;
  }
  const found = exec ? await newerByFind(exec, moduleDir, oldest) : undefined;
  if (found === null) return undefined;
  if (found !== undefined) {
    const isDir = quietly(() => lstatSync(found))?.isDirectory() ?? false;
    return isDir ? `${found} changed after the index was built` : `${found} is newer than the index`;
  }
  return newerUnder(moduleDir, indexTime, true);
}

/** A path as a find(1) -path pattern matching only itself. */
const literalPattern = (p: string) => p.replace(/[\\*?[\]]/g, (c) => `\\${c}`);

/**
 * What the walk below finds, asked of find(1): the first module (by name, as the walk) or
 * directory under `moduleDir` (not itself, not build/ or source/ at its top) modified after
 * `reference`; null for none; undefined when find could not answer (missing, or an error without
 * a find). One difference: a module that is a symlink is judged by the link's own time here.
 */
async function newerByFind(exec: Exec, moduleDir: string, reference: string): Promise<string | null | undefined> {
  const names = ['*.ko', '*.ko.xz', '*.ko.gz', '*.ko.zst'].flatMap((n, i) => [...(i ? ['-o'] : []), '-name', n]);
  const prune = ['build', 'source'].flatMap((n, i) => [...(i ? ['-o'] : []), '-path', literalPattern(path.join(moduleDir, n))]);
  const result = await exec
    .run(
      'find',
      [
        moduleDir,
        '-mindepth',
        '1',
        '(',
        ...prune,
        ')',
        '-prune',
        '-o',
        '(',
        '-type',
        'd',
        '-o',
        ...names,
        ')',
        '-newer',
        reference,
        '-print',
        '-quit',
      ],
      { reject: false, readOnly: true },
    )
    .catch(() => undefined);
  if (!result) return undefined;
  const first = result.stdout.split('\n').find((line) => line !== '');
  if (first !== undefined) return first;
  return result.exitCode === 0 && !result.spawnError ? null : undefined;
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
