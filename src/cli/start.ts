// How a bin starts. A run that does work loads the CLI from one CommonJS bundle (cli.cjs) compiled
// with the V8 code cache the build wrote beside it: no parsing, no module graph to resolve. Help,
// version and --verbose runs keep the ESM chunks (lighter for them; --verbose has source maps).
// Nothing here is shared at run time with the CLI's code: one process loads one copy of it.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
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

/** How the bundle's code cache fared: `accepted`, `rejected` (another Node or V8), or `none`. */
export type CodeCacheUse = 'accepted' | 'rejected' | 'none';

/**
 * cli.cjs beside the entry at `entryUrl`, compiled with its code cache (when there is one) and run;
 * undefined when there is no bundle (the CLI run from tsc's output) or this Node cannot import()
 * from a vm.Script as a module would (before 20.12): the caller starts the ESM way.
 */
export function loadCliBundle(entryUrl: string): { bundle: CliBundle; codeCache: CodeCacheUse } | undefined {
  const importModuleDynamically = (vm.constants as Partial<typeof vm.constants> | undefined)?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (importModuleDynamically === undefined) return undefined;
  const filename = path.join(path.dirname(fileURLToPath(entryUrl)), 'cli.cjs');
  let source: string;
  try {
    source = readFileSync(filename, 'utf8');
  } catch {
    return undefined;
  }
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(`${filename}.cache`);
  } catch {
    cachedData = undefined;
  }
  // The build (scripts/build.mjs) compiles it the same way to write the cache; never written here:
  // dist/ may be read-only.
  const script = new vm.Script(Module.wrap(source), { filename, cachedData, importModuleDynamically });
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string,
  ) => void;
  const module = { exports: {} };
  wrapper(module.exports, createRequire(filename), module, filename, path.dirname(filename));
  const codeCache = cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
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
  const loaded = startsLight(args) ? undefined : loadCliBundle(entryUrl);
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
