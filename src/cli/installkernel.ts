#!/usr/bin/env node
// Entry point of `installkernel`, as the kernel's `make install` and ebuilds call it.
import { runInstallkernel } from './run.js';

process.exitCode = await runInstallkernel({
  argv: process.argv.slice(2),
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
