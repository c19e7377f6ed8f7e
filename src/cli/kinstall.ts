#!/usr/bin/env node
// Entry point of `kinstall`. Built as a small CommonJS script (scripts/build.mjs): help and version
// come from light.cjs, --verbose from the ESM chunks, any other run from the code-cached bundle (start.ts).
import { startCli } from './start.js';

void startCli(__filename, 'runKinstall').then((code) => {
  process.exitCode = code;
});
