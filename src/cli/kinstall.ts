#!/usr/bin/env node
// Entry point of `kinstall`.
import { processIo } from './io.js';
import { runKinstall } from './run.js';

process.exitCode = await runKinstall(processIo());
