// How a bin starts. Help and version come from light.cjs, one small file; --verbose runs import the
// ESM chunks (with source maps); any other run loads the code-cached CommonJS bundle (load-bundle.cjs,
// required only then: it loads node:crypto and node:vm). The bins are CommonJS scripts: no ESM loader
// to start for a run that never imports a module.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CliBundle } from './load-bundle.js';

/**
 * A cheap look at argv, on the safe side (the starts run the same code, so a wrong guess only costs
 * time): `verbose`, the run wants source-mapped stack traces (the ESM chunks); `answer`, it may only
 * print help or the version (light.cjs, which hands over when it cannot answer).
 */
export function startKind(args: string[]): 'verbose' | 'answer' | 'work' {
  let answer = false;
  for (const arg of args) {
    if (arg === '--') break;
    if (arg === '--verbose' || (/^-[a-zA-Z]+$/.test(arg) && arg.includes('v'))) return 'verbose';
    if (arg === 'help' || arg === '--help' || arg === '--version' || (/^-[a-zA-Z]+$/.test(arg) && arg.includes('h')))
      answer = true;
  }
  return answer ? 'answer' : 'work';
}

/**
 * Starts a bin (`binFile`: the CommonJS script in dist/src/cli the user ran): help and version from
 * light.cjs; --verbose (or where there is no bundle) from the ESM chunks (esm/cli.mjs); any other run
 * from the code-cached bundle cli.cjs. The CLI's code runs from one of them only, so its module state
 * (the interrupt flag, KinstallError) is one. KINSTALL_TEST_START (test-only) reports on stderr which start ran.
 */
export async function startCli(binFile: string, run: 'runKinstall' | 'runInstallkernel'): Promise<number> {
  // The bin's shell start took it out of node's own start (scripts/build.mjs): back for the children.
  const caCerts = process.env.KINSTALL_NODE_EXTRA_CA_CERTS;
  if (caCerts !== undefined) {
    process.env.NODE_EXTRA_CA_CERTS = caCerts;
    delete process.env.KINSTALL_NODE_EXTRA_CA_CERTS;
  }
  const args = process.argv.slice(2);
  const kind = startKind(args);
  const say = (what: string) => process.env.KINSTALL_TEST_START && process.stderr.write(`kinstall: start: ${what}\n`);
  const requireHere = createRequire(binFile);
  if (kind === 'answer') {
    const answered = (requireHere('./light.cjs') as typeof import('./light.js')).answerLight(run);
    if (answered !== undefined) {
      say('light');
      return answered;
    }
  }
  if (kind !== 'verbose') {
    const { loadCliBundle } = requireHere('./load-bundle.cjs') as typeof import('./load-bundle.js');
    const loaded = loadCliBundle(path.join(path.dirname(binFile), 'cli.cjs'));
    if (loaded) {
      say(`bundle, code cache ${loaded.codeCache}`);
      return loaded.bundle[run](loaded.bundle.processIo());
    }
  }
  // Stack traces name the TypeScript sources (maps beside the chunks), on before any chunk loads.
  if (kind === 'verbose') process.setSourceMapsEnabled(true);
  say('esm');
  const cli = (await import(pathToFileURL(path.join(path.dirname(binFile), 'esm/cli.mjs')).href)) as CliBundle;
  return cli[run](cli.processIo());
}
