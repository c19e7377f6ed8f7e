#!/usr/bin/env node
// Entry point of `installkernel`, as the kernel's `make install` and ebuilds call it.
// The bins are minified bundles: a --verbose stack trace names the TypeScript sources (maps beside them),
// loaded once this is on: the imports below come after it.
if (process.argv.includes('-v') || process.argv.includes('--verbose')) process.setSourceMapsEnabled(true);
const [{ processIo }, { runInstallkernel }] = await Promise.all([import('./io.js'), import('./run.js')]);
process.exitCode = await runInstallkernel(processIo());
