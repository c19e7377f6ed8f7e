#!/usr/bin/env node
// Entry point of `installkernel`, as the kernel's `make install` and ebuilds call it. Built as a small
// CommonJS script (scripts/build.mjs): help and version come from light.cjs, --verbose from the ESM
// chunks, any other run from the code-cached bundle (start.ts).
import { startCli } from './start.js';

void startCli(__filename, 'runInstallkernel').then((code) => {
  process.exitCode = code;
});
