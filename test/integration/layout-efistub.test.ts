// kinstall add/remove with the efistub layout: files on a fake ESP under a temporary root, the
// firmware entry through test/fakes/efibootmgr (state in a JSON file, never real EFI variables).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseBootState } from '../../plugins/layout-efistub/firmware.js';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import {
  efibootmgrCalls,
  efistubRoot,
  FAKE_EFIBOOTMGR,
  fakeEfiEnv,
  fakeFirmware,
  WINDOWS_ENTRY,
} from '../helpers/efistub-root.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const LOADER = `\\EFI\\Gentoo\\vmlinuz-${V}.efi`;
const ARGS = `root=/dev/vda2 ro quiet initrd=\\EFI\\Gentoo\\initramfs-${V}.img`;

const newRoot = useScratchRoots();
let root: TestRoot;

/** An ESP at /boot/efi, a command line, os-release NAME=Gentoo, a firmware holding Windows. */
const efiRoot = (options?: Record<string, unknown>): TestRoot =>
  efistubRoot(newRoot, { options, cmdline: '# the root filesystem\nroot=/dev/vda2   ro\nquiet\n' });

const env = fakeEfiEnv;
const firmware = fakeFirmware;
const calls = efibootmgrCalls;
const add = (r: TestRoot, extra: string[]) =>
  kinstall(['add', '--root', r.root, '--layout', 'efistub', ...extra], { env: env(r) });

describe('efistub layout', () => {
  it('installs the image and a real dracut initramfs on the ESP and one firmware entry, first in BootOrder', async () => {
    root = efiRoot();
    const result = await add(root, ['--initramfs', 'dracut', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(snapshotTree(root.boot)).toMatchObject({ efi: 'dir 755', 'efi/EFI': 'dir 755', 'efi/EFI/Gentoo': 'dir 755' });
    expect(Object.keys(snapshotTree(root.boot)).sort()).toEqual([
      'efi',
      'efi/EFI',
      'efi/EFI/Gentoo',
      `efi/EFI/Gentoo/initramfs-${V}.img`,
      `efi/EFI/Gentoo/vmlinuz-${V}.efi`,
    ]);
    expect(readFileSync(root.at(`/boot/efi/EFI/Gentoo/vmlinuz-${V}.efi`)).equals(readFileSync(kernel.image))).toBe(true);
    const listing = execFileSync('lsinitrd', [root.at(`/boot/efi/EFI/Gentoo/initramfs-${V}.img`)], { encoding: 'utf8' });
    expect(listing).toContain(`usr/lib/modules/${V}/kernel/drivers/block/virtio_blk.ko`);
    expect(calls(root)).toEqual([
      ['-v'],
      ['--create', '--disk', '/dev/vda', '--part', '1', '--label', `Gentoo ${V}`, '--loader', LOADER, '--unicode', ARGS],
      ['-v'],
    ]);
    const state = firmware(root);
    expect(state.bootOrder).toEqual(['0001', '0000']);
    expect(state.entries['0001']).toMatchObject({ label: `Gentoo ${V}`, loader: LOADER, args: ARGS, disk: '/dev/vda', part: 1 });
    expect(Object.keys(state.entries)).toEqual(['0000', '0001']);
  });

  it('installing the same version twice gives the same tree and still one firmware entry', async () => {
    root = efiRoot();
    const initrd = root.at('/var/fake/initrd');
    writeFileSync(initrd, initramfsFixture('prebuilt initramfs\n'));
    expect((await add(root, ['--initrd', initrd, V, kernel.image])).exitCode).toBe(0);
    const tree = snapshotTree(root.boot);
    const state = firmware(root);
    const second = await add(root, ['--initrd', initrd, V, kernel.image]);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).toContain('firmware entry Boot0001 already boots');
    expect(snapshotTree(root.boot)).toEqual(tree);
    expect(firmware(root)).toEqual(state);
    // Only reads: the layout's list (the core looks for the default a trial would keep), then the entry check.
    expect(calls(root).slice(3)).toEqual([['-v'], ['-v']]);
  });

  it('a changed command line replaces the entry instead of adding a second one', async () => {
    root = efiRoot();
    expect((await add(root, ['--initramfs', 'none', V, kernel.image])).exitCode).toBe(0);
    const again = await add(root, ['--initramfs', 'none', '--cmdline', 'root=/dev/vda3', V, kernel.image]);
    expect(again.exitCode, again.stderr).toBe(0);
    const state = firmware(root);
    expect(Object.values(state.entries).filter((e) => e.loader === LOADER)).toEqual([
      expect.objectContaining({ args: 'root=/dev/vda3' }),
    ]);
    expect(state.bootOrder[0]).toBe(Object.keys(state.entries).find((n) => state.entries[n]?.loader === LOADER));
    expect(calls(root)).toContainEqual(['--delete-bootnum', '--bootnum', '0001']);
  });

  it('list marks as default the kernel whose entry comes first in BootOrder', async () => {
    root = efiRoot();
    const V2 = `${V}-second`;
    expect((await add(root, ['--initramfs', 'none', V, kernel.image])).exitCode).toBe(0);
    expect((await add(root, ['--initramfs', 'none', '--force', V2, kernel.image])).exitCode).toBe(0);
    const listed = async () => {
      const result = await kinstall(['list', '--json', '--root', root.root, '--layout', 'efistub'], { env: env(root) });
      expect(result.exitCode, result.stderr).toBe(0);
      return Object.fromEntries(
        (JSON.parse(result.stdout) as Array<{ version: string; isDefault?: boolean }>).map((k) => [
          k.version,
          k.isDefault ?? false,
        ]),
      );
    };
    // The second install went first in BootOrder: it is the default.
    expect(await listed()).toEqual({ [V]: false, [V2]: true });
    const state = firmware(root);
    const first = Object.entries(state.entries).find(([, e]) => e.loader === LOADER)?.[0] ?? '';
    writeFileSync(
      root.at('/var/fake/efi.json'),
      JSON.stringify({ ...state, bootOrder: [first, ...state.bootOrder.filter((n) => n !== first)] }),
    );
    expect(await listed()).toEqual({ [V]: true, [V2]: false });
  });

  it('bootOrderFirst=false puts the new entry last', async () => {
    root = efiRoot({ efibootmgr: FAKE_EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1, bootOrderFirst: false });
    expect((await add(root, ['--initramfs', 'none', V, kernel.image])).exitCode).toBe(0);
    expect(firmware(root).bootOrder).toEqual(['0000', '0001']);
    expect(calls(root).at(-1)).toEqual(['--bootorder', '0000,0001']);
  });

  it('a failing efibootmgr after the entry was created rolls back the files and the entry', async () => {
    root = efiRoot({ efibootmgr: FAKE_EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1, bootOrderFirst: false });
    const before = snapshotTree(root.boot);
    const stateBefore = firmware(root);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'efistub', '--initramfs', 'none', V, kernel.image], {
      env: env(root, { EFIBOOTMGR_FAKE_FAIL: '--bootorder' }),
    });
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: efibootmgr failed \(exit code 1\); rolled back/m);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(firmware(root)).toEqual(stateBefore);
    expect(calls(root).filter((c) => c[0] === '--delete-bootnum')).toEqual([['--delete-bootnum', '--bootnum', '0001']]);
  });

  it('refuses an image without an EFI stub (exit 4) and changes nothing', async () => {
    root = efiRoot();
    const image = root.at('/var/fake/bzImage-no-stub');
    const bytes = readFileSync(kernel.image);
    bytes.write('\0\0', 0, 'latin1');
    writeFileSync(image, bytes);
    const before = snapshotTree(root.root);
    const result = await add(root, ['--initramfs', 'none', V, image]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: EPREFLIGHT: 1 preflight check\(s\) failed: \S+\/vmlinuz is not EFI-stub capable \(a bzImage without a PE header\)/m,
    );
    expect(snapshotTree(root.root)).toEqual(before);
    expect(calls(root)).toEqual([]);
  });

  it('without EFI variables installs the files and names the efibootmgr command to run later', async () => {
    root = efiRoot({ disk: '/dev/vda', part: 1 });
    const result = await add(root, ['--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(existsSync(root.at(`/boot/efi/EFI/Gentoo/vmlinuz-${V}.efi`))).toBe(true);
    expect(result.stderr).toContain('warn: EFI variables are not available (installing under --root');
    expect(result.stderr).toContain(
      `to create it later, run: efibootmgr --create --disk /dev/vda --part 1 --label 'Gentoo ${V}' --loader '${LOADER}' --unicode 'root=/dev/vda2 ro quiet'`,
    );
    expect(calls(root)).toEqual([]);
  });

  it('remove deletes the files and the firmware entry', async () => {
    root = efiRoot();
    const before = snapshotTree(root.boot);
    expect((await add(root, ['--initramfs', 'none', V, kernel.image])).exitCode).toBe(0);
    const result = await kinstall(['remove', '--root', root.root, '--layout', 'efistub', V], { env: env(root) });
    expect(result.exitCode, result.stderr).toBe(0);
    // The vendor directory stays, as distributions leave EFI/<vendor>.
    expect(snapshotTree(root.boot)).toEqual({ ...before, 'efi/EFI/Gentoo': 'dir 755' });
    expect(calls(root).at(-1)).toEqual(['--delete-bootnum', '--bootnum', '0001']);
    expect(firmware(root)).toMatchObject({ bootOrder: ['0000'], entries: { '0000': { label: WINDOWS_ENTRY.label } } });
    expect(Object.keys(firmware(root).entries)).toEqual(['0000']);
  });
});

describe('test/fakes/efibootmgr rejects what efibootmgr rejects', () => {
  const run = (r: TestRoot, args: string[]) => execa(FAKE_EFIBOOTMGR, args, { env: env(r), reject: false });
  it.each([
    ['--create without --loader', ['--create', '--label', 'x'], /needs --loader/],
    ['a loader path with /', ['--create', '--label', 'x', '--loader', '/EFI/x.efi'], /contains '\/'/],
    ['a reused label', ['--create', '--label', 'Windows Boot Manager', '--loader', '\\x.efi'], /already used by Boot0000/],
    ['an unknown option', ['--frobnicate'], /unrecognized option/],
    ['deleting a missing entry', ['--delete-bootnum', '--bootnum', '0007'], /Boot0007 not found/],
  ])('%s', async (_name, args, message) => {
    root = efiRoot();
    const before = readFileSync(root.at('/var/fake/efi.json'), 'utf8');
    const result = await run(root, args);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(readFileSync(root.at('/var/fake/efi.json'), 'utf8')).toBe(before);
  });

  it('refuses to run without a state file', async () => {
    const result = await execa(FAKE_EFIBOOTMGR, ['-v'], { env: { EFIBOOTMGR_FAKE_STATE: '' }, reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('refusing to run');
  });
});

describe('reading efibootmgr -v as the versions print it', () => {
  it('finds loaders and load options in tab-separated, space-separated, dotted and hex forms', () => {
    const text = [
      'BootCurrent: 0010',
      'BootOrder: 0010,0003,0011',
      'Boot0003* ATA HDD2: WDC WD5000LPVT  ACPI(a0341d0,0)PCI(1f,2)03120a00010000000000..bYVD.A...O.*..',
      'Boot0010* Gentoo 6.1  HD(2,1f4800,82000,72931328-061b-42e0-8fd8-8a5ac7775074)File(\\EFI\\Gentoo\\vmlinuz-6.1.efi)r.o.o.t.=./.d.e.v./.s.d.a.2.',
      'Boot0011* Gentoo 6.6\tHD(1,GPT,c7a1d0a4-0000-0000-0000-000000000000,0x800,0x82000)/\\EFI\\Gentoo\\vmlinuz-6.6.efi72006f006f0074003d0078000000',
    ].join('\n');
    const state = parseBootState(text);
    expect(state.order).toEqual(['0010', '0003', '0011']);
    expect(state.entries).toEqual([
      { num: '0003', label: 'ATA HDD2: WDC WD5000LPVT', loader: undefined, args: '' },
      { num: '0010', label: 'Gentoo 6.1', loader: '\\EFI\\Gentoo\\vmlinuz-6.1.efi', args: 'root=/dev/sda2' },
      { num: '0011', label: 'Gentoo 6.6', loader: '\\EFI\\Gentoo\\vmlinuz-6.6.efi', args: 'root=x' },
    ]);
  });
});
