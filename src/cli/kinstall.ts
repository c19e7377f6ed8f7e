#!/usr/bin/env node
// Entry point of `kinstall`.
import { runKinstall } from './run.js';

process.exitCode = await runKinstall({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
