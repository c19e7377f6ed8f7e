// A boot dir too small for the new kernel: refused in preflight with nothing changed; and a real
// ENOSPC in the middle of the commit (an inode-starved tmpfs passes the byte check): rolled back.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
let root: TestRoot | undefined;
const newRoot = useScratchRoots({
  first: () => {
    if (root) execFileSync('umount', [root.boot]);
    root = undefined;
  },
});

function rootWithTmpfsBoot(options: string): TestRoot {
  const r = newRoot({ modules: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', r.boot]);
  execFileSync('cp', [kernel.config, `${r.boot}/config-5.10.0-previous`]);
  return r;
}

describe('free space on the boot dir', () => {
  it('a boot dir that cannot hold kernel and initramfs fails preflight, naming what is missing', async () => {
    root = rootWithTmpfsBoot('size=20m');
    const before = snapshotTree(root.boot);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: EPREFLIGHT: 1 preflight check\(s\) failed: .*boot has [0-9.]+ MiB free but the install needs [0-9.]+ MiB \(\d+ bytes missing\); no installed kernel may be removed to make room/m,
    );
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(existsSync(root.at(`/lib/modules/${V}/vmlinuz`))).toBe(false);
  });

  it('running out of space in the middle of the commit rolls every file back', async () => {
    // Enough bytes, too few inodes: the third new file cannot be created (ENOSPC).
    root = rootWithTmpfsBoot('size=64m,nr_inodes=4');
    const before = snapshotTree(root.boot);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ESTEP: commit failed: ENOSPC.*rolled back \d+ change\(s\), nothing was changed$/m);
    expect(snapshotTree(root.boot)).toEqual(before);
  });
});
