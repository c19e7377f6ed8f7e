// How a bin starts. Help, version and --verbose runs import the ESM chunks (light for them;
// --verbose gets source maps); any other run loads the code-cached CommonJS bundle (load-bundle.ts,
// imported only then). This module imports nothing at load: help and version pay for no more.
import type { CliBundle } from './load-bundle.js';

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
 * Starts a bin: the bundle for a run that does work, else (or without a bundle) the ESM chunks that
 * `loadEsm` imports. KINSTALL_TEST_START (test-only) reports on stderr which start ran.
 */
export async function startCli(
  entryUrl: string,
  run: 'runKinstall' | 'runInstallkernel',
  loadEsm: () => Promise<CliBundle>,
): Promise<number> {
  // The bin's shell start took it out of node's own start (scripts/build.mjs): back for the children.
  const caCerts = process.env.KINSTALL_NODE_EXTRA_CA_CERTS;
  if (caCerts !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = caCerts;
    delete process.env.KINSTALL_NODE_EXTRA_CA_CERTS;
  }
  const args = process.argv.slice(2);
  const loaded = startsLight(args) ? undefined : (await import('./load-bundle.js')).loadCliBundle(entryUrl);
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
