#!/usr/bin/env node
// Entry point of `installkernel`, as the kernel's `make install` and ebuilds call it: the code-cached
// bundle for a run that does work, the ESM chunks for help, version and --verbose (start.ts).
import { startCli } from './start.js';

process.exitCode = await startCli(import.meta.url, 'runInstallkernel', async () => {
  const [io, run] = await Promise.all([import('./io.js'), import('./run.js')]);
  return { ...io, ...run };
});
