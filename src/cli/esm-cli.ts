// The ESM build's entry (dist/src/cli/esm/cli.mjs and its chunks): the CLI as separate modules,
// for a --verbose run, whose stack traces name the TypeScript sources through the maps beside them.
export { runInstallkernel, runKinstall } from './run.js';
export { processIo } from './io.js';
