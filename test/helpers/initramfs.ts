// A prebuilt initramfs for tests that only move one around: a real newc cpio (the kernel's format,
// which preflight checks) holding one file whose content is `label`, so each fixture is distinct.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function initramfsFixture(label: string): Buffer {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-initramfs-fixture-'));
  try {
    writeFileSync(path.join(dir, 'label'), label);
    return execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: dir, input: 'label\n' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
