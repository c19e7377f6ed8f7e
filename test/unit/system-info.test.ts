// Facts read from the target: the command line and the BLS entry token, in their documented order.
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { foldCmdline, readEntryToken, readKernelCmdline } from '../../src/core/system-info.js';
import { testContext } from '../helpers/context.js';
import { makeRoot, type TestRoot } from '../helpers/root.js';

let root: TestRoot | undefined;
afterEach(() => root?.cleanup());

const put = (r: TestRoot, p: string, text: string) => {
  mkdirSync(r.at(p.replace(/\/[^/]+$/, '')), { recursive: true });
  writeFileSync(r.at(p), text);
};

describe('kernel command line', () => {
  it('strips comments and folds whitespace', () => {
    expect(foldCmdline('# root device\nroot=/dev/vda1   ro\n\tquiet # no splash\n')).toBe('root=/dev/vda1 ro quiet');
  });

  it('prefers --cmdline, then /etc/kernel/cmdline, then /usr/lib/kernel/cmdline; nothing from the host under --root', async () => {
    root = makeRoot({ config: false });
    expect(await readKernelCmdline(await testContext(root.root))).toBeUndefined();
    put(root, '/usr/lib/kernel/cmdline', 'root=/dev/sda2\n');
    expect((await readKernelCmdline(await testContext(root.root)))?.cmdline).toBe('root=/dev/sda2');
    put(root, '/etc/kernel/cmdline', 'root=UUID=abc rw # comment\n');
    const fromEtc = await readKernelCmdline(await testContext(root.root));
    expect(fromEtc).toEqual({ cmdline: 'root=UUID=abc rw', source: root.at('/etc/kernel/cmdline') });
    expect((await readKernelCmdline(await testContext(root.root, { cmdline: 'root=/dev/vdb quiet' })))?.cmdline).toBe('root=/dev/vdb quiet');
  });
});

describe('entry token', () => {
  it('uses entry-token, else machine-id, else IMAGE_ID, else ID', async () => {
    root = makeRoot({ config: false });
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
