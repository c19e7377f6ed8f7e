// A run that does work loads the CLI from one CommonJS bundle (cli.cjs) compiled with the V8 code
// cache the build wrote beside it: no parsing, no module graph to resolve (start.ts decides).
// Nothing here is shared at run time with the CLI's code: one process loads one copy of it.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import type { Io } from './io.js';

/** What cli.cjs exports (bundle-entry.ts). */
export interface CliBundle {
  runKinstall(io: Io): Promise<number>;
  runInstallkernel(io: Io): Promise<number>;
  processIo(): Io;
}

/**
 * How the bundle's code cache fared: `accepted`; `rejected` by V8 (made by another Node); `stale`
 * (made for another cli.cjs, or damaged: V8 checks neither the code nor the data, and a damaged
 * cache would crash it, so the build's digest of both is checked first); `none`.
 */
export type CodeCacheUse = 'accepted' | 'rejected' | 'stale' | 'none';

/** The bytes of a file, or undefined when there is none. */
function readIfThere(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

const DIGEST_BYTES = 32;

/**
 * The V8 data of the cache file scripts/build.mjs writes (the SHA-256 of cli.cjs and the data,
 * then the data), when it was made for this source and arrived whole.
 */
function checkedCodeCache(source: Buffer, file: Buffer): Buffer | undefined {
  const data = file.subarray(DIGEST_BYTES);
  const digest = createHash('sha256').update(source).update(data).digest();
  return file.length > DIGEST_BYTES && digest.equals(file.subarray(0, DIGEST_BYTES)) ? data : undefined;
}

/** cli.cjs evaluates to its module wrapper (scripts/build.mjs), which takes these. */
type BundleWrapper = (
  exports: unknown,
  require: NodeJS.Require,
  module: { exports: unknown },
  filename: string,
  dirname: string,
  // import() for the bundle: from here, beside it in dist/src/cli (V8 11.3 drops the dynamic-import
  // callback of a script compiled from a code cache).
  importModule: (specifier: string) => Promise<unknown>,
) => void;

/**
 * The bundle at `filename` (cli.cjs beside the bins), compiled with its code cache (when there is a
 * good one) and run; undefined when there is no bundle (the CLI run from tsc's output): the caller
 * starts the ESM way.
 */
export function loadCliBundle(filename: string): { bundle: CliBundle; codeCache: CodeCacheUse } | undefined {
  const source = readIfThere(filename);
  if (!source) return undefined;
  const cacheFile = readIfThere(`${filename}.cache`);
  const cachedData = cacheFile && checkedCodeCache(source, cacheFile);
  // The build compiles it the same way to write the cache; never written here: dist/ may be read-only.
  const script = new vm.Script(source.toString('utf8'), { filename, cachedData });
  const wrapper = script.runInThisContext() as BundleWrapper;
  const module = { exports: {} };
  wrapper(module.exports, createRequire(filename), module, filename, path.dirname(filename), (specifier) => import(specifier));
  const codeCache: CodeCacheUse = !cacheFile
    ? 'none'
    : !cachedData
      ? 'stale'
      : script.cachedDataRejected
        ? 'rejected'
        : 'accepted';
  return { bundle: module.exports as CliBundle, codeCache };
}
