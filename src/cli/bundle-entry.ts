// The CommonJS bundle's entry (dist/src/cli/cli.cjs): the whole CLI in one script, which the bins
// load through V8's code cache (load-bundle.ts) when a run does work.
export { runInstallkernel, runKinstall } from './run.js';
export { processIo } from './io.js';

/**
 * For the build's code cache: the modules the verbs need run their top level only when a command
 * first loads them (esbuild defers a module imported with import()); the build runs them too, so the
 * cache holds their code compiled. None does I/O at import time.
 */
export const loadVerbs = () => import('./commands.js');
