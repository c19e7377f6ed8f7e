#!/usr/bin/env node
// Entry point of `kinstall`.
// The bins are minified bundles: a --verbose stack trace names the TypeScript sources (maps beside them),
// loaded once this is on: the imports below come after it.
if (process.argv.includes('-v') || process.argv.includes('--verbose')) process.setSourceMapsEnabled(true);
const [{ processIo }, { runKinstall }] = await Promise.all([import('./io.js'), import('./run.js')]);
process.exitCode = await runKinstall(processIo());
