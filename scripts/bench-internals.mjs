// Benchmarks (not tests): how fast kinstall reads kernel headers and commits a kernel-sized plan,
// and how much memory that takes. Targets: inspect < 5 ms, commit + rollback of a 14 MB image < 500 ms,
// RSS growth < 64 MiB (the image is copied, never held in memory whole).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { inspectKernelImage } from '../dist/src/core/system/kernel-image.js';
import { createLogger } from '../dist/src/core/logger.js';
import { Transaction } from '../dist/src/core/transaction/transaction.js';

const kernelDir = execFileSync(path.join(import.meta.dirname, 'fetch-test-kernel.sh'), { encoding: 'utf8' }).trim();
const version = execFileSync('ls', [path.join(kernelDir, 'lib/modules')], { encoding: 'utf8' }).trim();
const image = path.join(kernelDir, 'boot', `vmlinuz-${version}`);
const results = [];
const time = async (name, runs, fn, target) => {
  await fn();
  const start = performance.now();
  for (let i = 0; i < runs; i += 1) await fn();
  const ms = (performance.now() - start) / runs;
  results.push({ name, ms: Number(ms.toFixed(3)), target, ok: ms <= target });
};

const rssBefore = process.memoryUsage().rss;
await time('inspect bzImage', 200, () => inspectKernelImage(image), 5);
const scratch = mkdtempSync(path.join(os.tmpdir(), 'kinstall-bench-'));
const log = createLogger({ verbose: false, quiet: true });
await time(
  'commit + rollback 14 MB image',
  10,
  async () => {
    const txn = new Transaction(log);
    await txn.apply({ place: [{ from: image, to: path.join(scratch, 'vmlinuz') }], write: [], link: [], remove: [] });
    await txn.rollback();
  },
  500,
);
rmSync(scratch, { recursive: true, force: true });
const growth = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
results.push({ name: 'RSS growth (MiB)', ms: Number(growth.toFixed(1)), target: 64, ok: growth <= 64 });
console.table(results);
process.exitCode = results.every((r) => r.ok) ? 0 : 1;
