#!/usr/bin/env node
// Entry point of `installkernel`, as the kernel's `make install` and ebuilds call it.
import { processIo } from './io.js';
import { runInstallkernel } from './run.js';

process.exitCode = await runInstallkernel(processIo());
