// Facts read from the target: the command line and the BLS entry token, in their documented order.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  archMismatch,
  foldCmdline,
  readEntryToken,
  readKernelCmdline,
  readTargetArch,
} from '../../src/core/system/system-info.js';
import { testContext } from '../helpers/context.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

const put = (r: TestRoot, p: string, text: string) => {
  mkdirSync(r.at(p.replace(/\/[^/]+$/, '')), { recursive: true });
  writeFileSync(r.at(p), text);
};

describe('kernel command line', () => {
  it('strips comments and folds whitespace', () => {
    expect(foldCmdline('# root device\nroot=/dev/vda1   ro\n\tquiet # no splash\n')).toBe('root=/dev/vda1 ro quiet');
  });

  it('prefers --cmdline, then /etc/kernel/cmdline, then /usr/lib/kernel/cmdline; nothing from the host under --root', async () => {
    root = newRoot({ config: false });
    expect(await readKernelCmdline(await testContext(root.root))).toBeUndefined();
    put(root, '/usr/lib/kernel/cmdline', 'root=/dev/sda2\n');
    expect((await readKernelCmdline(await testContext(root.root)))?.cmdline).toBe('root=/dev/sda2');
    put(root, '/etc/kernel/cmdline', 'root=UUID=abc rw # comment\n');
    const fromEtc = await readKernelCmdline(await testContext(root.root));
    expect(fromEtc).toEqual({ cmdline: 'root=UUID=abc rw', source: root.at('/etc/kernel/cmdline') });
    expect((await readKernelCmdline(await testContext(root.root, { cmdline: 'root=/dev/vdb quiet' })))?.cmdline).toBe(
      'root=/dev/vdb quiet',
    );
  });
});

describe('entry token', () => {
  it('uses entry-token, else machine-id, else IMAGE_ID, else ID', async () => {
    root = newRoot({ config: false });
    put(root, '/etc/os-release', 'ID=gentoo\nNAME=Gentoo\n');
    expect(await readEntryToken(await testContext(root.root))).toBe('gentoo');
    put(root, '/etc/os-release', 'ID=gentoo\nIMAGE_ID="gentoo-desktop"\n');
    expect(await readEntryToken(await testContext(root.root))).toBe('gentoo-desktop');
    put(root, '/etc/machine-id', '0123456789abcdef0123456789abcdef\n');
    expect(await readEntryToken(await testContext(root.root))).toBe('0123456789abcdef0123456789abcdef');
    put(root, '/etc/kernel/entry-token', 'mytoken\n');
    expect(await readEntryToken(await testContext(root.root))).toBe('mytoken');
  });
});

describe('target architecture', () => {
  it("is read from the root's shell through links inside the root; unknown without programs or through a link leaving it", async () => {
    root = newRoot({ config: false });
    expect(await readTargetArch(await testContext(root.root))).toBe('unknown');
    symlinkSync('/bin/dash', root.at('/bin-outside'));
    mkdirSync(root.at('/usr/bin'), { recursive: true });
    symlinkSync('/usr/bin/env', root.at('/usr/bin/env'));
    expect(await readTargetArch(await testContext(root.root))).toBe('unknown');
    copyFileSync('/bin/dash', root.at('/usr/bin/dash'));
    symlinkSync('usr/bin', root.at('/bin'));
    symlinkSync('dash', root.at('/usr/bin/sh'));
    expect(await readTargetArch(await testContext(root.root))).toBe('x86_64');
  });

  it("tells which kernels cannot run the target's programs", () => {
    expect(archMismatch('x86_64', 'x86_64')).toBeUndefined();
    expect(archMismatch('x86_64', 'x86')).toBeUndefined();
    expect(archMismatch('unknown', 'x86_64')).toBeUndefined();
    expect(archMismatch('arm64', 'unknown')).toBeUndefined();
    expect(archMismatch('arm64', 'x86_64')).toBe("the image is an arm64 kernel, but the target system's programs are x86_64");
    expect(archMismatch('x86_64', 'arm64')).toMatch(/x86_64 kernel.*arm64/);
    expect(archMismatch('x86', 'x86_64')).toMatch(/x86 kernel.*x86_64/);
  });
});
