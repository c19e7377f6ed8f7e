// How a bin starts. A run that does work loads the CLI from one CommonJS bundle (cli.cjs) compiled
// with the V8 code cache the build wrote beside it: no parsing, no module graph to resolve. Help,
// version and --verbose runs keep the ESM chunks (lighter for them; --verbose has source maps).
// Nothing here is shared at run time with the CLI's code: one process loads one copy of it.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import type { Io } from './io.js';

/** What cli.cjs exports (bundle-entry.ts). */
export interface CliBundle {
  runKinstall(io: Io): Promise<number>;
  runInstallkernel(io: Io): Promise<number>;
  processIo(): Io;
}

/**
 * The run only prints help or the version, or wants source-mapped stack traces (--verbose): the ESM
 * start serves it. A cheap look at argv, on the safe side: a short-option group holding h or v, or
 * a `help` anywhere, counts; the two starts run the same code, so a wrong guess only costs time.
 */
export function startsLight(args: string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === 'help' || arg === '--help' || arg === '--version' || arg === '--verbose') return true;
    if (/^-[a-zA-Z]+$/.test(arg) && /[hv]/.test(arg)) return true;
  }
  return false;
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
async function checkedCodeCache(source: Buffer, file: Buffer): Promise<Buffer | undefined> {
  // Imported here, not above: help and version never pay for node:crypto.
  const { createHash } = await import('node:crypto');
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
  // import() and import.meta.resolve for the bundle: from here, beside it in dist/src/cli (V8 11.3
  // drops the dynamic-import callback of a script compiled from a code cache).
  importModule: (specifier: string) => Promise<unknown>,
  resolveModule: ((specifier: string) => string) | undefined,
) => void;

/**
 * cli.cjs beside the entry at `entryUrl`, compiled with its code cache (when there is a good one)
 * and run; undefined when there is no bundle (the CLI run from tsc's output): the caller starts the
 * ESM way.
 */
export async function loadCliBundle(entryUrl: string): Promise<{ bundle: CliBundle; codeCache: CodeCacheUse } | undefined> {
  const filename = path.join(path.dirname(fileURLToPath(entryUrl)), 'cli.cjs');
  const source = readIfThere(filename);
  if (!source) return undefined;
  const cacheFile = readIfThere(`${filename}.cache`);
  const cachedData = cacheFile && (await checkedCodeCache(source, cacheFile));
  // The build compiles it the same way to write the cache; never written here: dist/ may be read-only.
  const script = new vm.Script(source.toString('utf8'), { filename, cachedData });
  const wrapper = script.runInThisContext() as BundleWrapper;
  const module = { exports: {} };
  wrapper(
    module.exports,
    createRequire(filename),
    module,
    filename,
    path.dirname(filename),
    (specifier) => import(specifier),
    import.meta.resolve,
  );
  const codeCache: CodeCacheUse = !cacheFile
    ? 'none'
    : !cachedData
      ? 'stale'
      : script.cachedDataRejected
        ? 'rejected'
        : 'accepted';
  return { bundle: module.exports as CliBundle, codeCache };
}

/**
 * Starts a bin: the bundle for a run that does work, else (or without a bundle) the ESM chunks that
 * `loadEsm` imports. KINSTALL_TEST_START (test-only) reports on stderr which start ran.
 */
export async function startCli(
  entryUrl: string,
  run: 'runKinstall' | 'runInstallkernel',
  loadEsm: () => Promise<CliBundle>,
): Promise<number> {
  const args = process.argv.slice(2);
  const loaded = startsLight(args) ? undefined : await loadCliBundle(entryUrl);
  const say = (what: string) => process.env.KINSTALL_TEST_START && process.stderr.write(`kinstall: start: ${what}\n`);
  if (loaded) {
    say(`bundle, code cache ${loaded.codeCache}`);
    return loaded.bundle[run](loaded.bundle.processIo());
  }
  // Stack traces name the TypeScript sources (maps beside the chunks), on before any chunk loads.
  if (args.includes('-v') || args.includes('--verbose')) process.setSourceMapsEnabled(true);
  say('esm');
  const cli = await loadEsm();
  return cli[run](cli.processIo());
}
