// The bls layout (systemd-boot, BLS Type #1) under a temporary --root: the real kernel, a real
// dracut initramfs, the exact boot-root tree and entry text, reinstall, boot counting and remove.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const newRoot = useScratchRoots();
let root: TestRoot;

interface EspOptions {
  /** Where the ESP is, as the target names it; false for none. */
  esp?: string | false;
  loaderConf?: boolean;
  cmdline?: string | false;
  machineId?: boolean;
}

/** A root as `bootctl install` leaves it: ESP with EFI/, loader/entries and loader.conf. */
function espRoot(options: EspOptions = {}): TestRoot {
  const r = newRoot({ modules: true });
  const esp = options.esp ?? '/efi';
  if (esp) {
    mkdirSync(r.at(`${esp}/EFI/systemd`), { recursive: true });
    mkdirSync(r.at(`${esp}/loader/entries`), { recursive: true });
    if (options.loaderConf !== false) writeFileSync(r.at(`${esp}/loader/loader.conf`), 'timeout 3\n');
  }
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  if (options.cmdline !== false)
    writeFileSync(r.at('/etc/kernel/cmdline'), `${options.cmdline ?? 'root=/dev/vda1 ro'}  # the disk\n`);
  if (options.machineId !== false) writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  return r;
}

const add = (r: TestRoot, ...extra: string[]) => kinstall(['add', '--root', r.root, ...extra, V, kernel.image]);

describe('bls layout', () => {
  it('layout=auto picks bls for loader/, installs linux, a real initramfs and the exact entry; a second add changes nothing; remove restores the tree', async () => {
    root = espRoot();
    const esp = root.at('/efi');
    const before = snapshotTree(esp);
    const result = await add(root, '--initramfs', 'dracut');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`layout=auto: chose bls: ${esp}/loader/entries exists`);
    expect(result.stderr).not.toContain('bootctl install');
    const entry = `loader/entries/${MACHINE_ID}-${V}.conf`;
    expect(Object.keys(snapshotTree(esp)).sort()).toEqual(
      [
        ...Object.keys(before),
        MACHINE_ID,
        `${MACHINE_ID}/${V}`,
        `${MACHINE_ID}/${V}/initrd`,
        `${MACHINE_ID}/${V}/linux`,
        entry,
      ].sort(),
    );
    expect(readFileSync(root.at(`/efi/${MACHINE_ID}/${V}/linux`)).equals(readFileSync(kernel.image))).toBe(true);
    // The ESP here shares the neutral location's filesystem: the image's bytes were written once.
    expect(statSync(root.at(`/efi/${MACHINE_ID}/${V}/linux`)).ino).toBe(statSync(root.at(`/lib/modules/${V}/vmlinuz`)).ino);
    expect(readFileSync(root.at(`/efi/${entry}`), 'utf8')).toBe(
      [
        'title Gentoo Linux',
        `version ${V}`,
        `machine-id ${MACHINE_ID}`,
        'sort-key gentoo',
        'options root=/dev/vda1 ro',
        `linux /${MACHINE_ID}/${V}/linux`,
        `initrd /${MACHINE_ID}/${V}/initrd`,
        '',
      ].join('\n'),
    );
    const listing = execFileSync('lsinitrd', [root.at(`/efi/${MACHINE_ID}/${V}/initrd`)], { encoding: 'utf8' });
    expect(listing).toContain(`usr/lib/modules/${V}/modules.dep`);

    // The same initramfs again, so the bytes can be compared (dracut's output is not reproducible).
    const installed = snapshotTree(esp);
    copyFileSync(root.at(`/efi/${MACHINE_ID}/${V}/initrd`), root.at('/initrd.img'));
    const again = await add(root, '--initrd', root.at('/initrd.img'));
    expect(again.exitCode, again.stderr).toBe(0);
    expect(snapshotTree(esp)).toEqual(installed);

    const listed = await kinstall(['list', '--json', '--root', root.root]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ version: V, layout: 'bls', entry: root.at(`/efi/${entry}`) }]);

    const removed = await kinstall(['remove', '--root', root.root, V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(snapshotTree(esp)).toEqual(before);
  });

  it('boot counting: /etc/kernel/tries names the entry +N, and a reinstall replaces a half-counted entry instead of adding one', async () => {
    root = espRoot({ machineId: false });
    writeFileSync(root.at('/etc/kernel/entry-token'), 'gentoo-desk\n');
    writeFileSync(root.at('/etc/kernel/tries'), '3\n');
    const first = await add(root, '--layout', 'systemd-boot', '--initramfs', 'none');
    expect(first.exitCode, first.stderr).toBe(0);
    const entries = root.at('/efi/loader/entries');
    expect(readdirSync(entries)).toEqual([`gentoo-desk-${V}+3.conf`]);
    expect(readFileSync(`${entries}/gentoo-desk-${V}+3.conf`, 'utf8')).toBe(
      [
        'title Gentoo Linux',
        `version ${V}`,
        'sort-key gentoo',
        'options root=/dev/vda1 ro',
        `linux /gentoo-desk/${V}/linux`,
        '',
      ].join('\n'),
    );
    expect(readdirSync(root.at(`/efi/gentoo-desk/${V}`))).toEqual(['linux']);

    // systemd-boot counts a failed try by renaming the entry.
    renameSync(`${entries}/gentoo-desk-${V}+3.conf`, `${entries}/gentoo-desk-${V}+2-1.conf`);
    const second = await add(root, '--layout', 'bls', '--initramfs', 'none');
    expect(second.exitCode, second.stderr).toBe(0);
    expect(readdirSync(entries)).toEqual([`gentoo-desk-${V}+3.conf`]);
  });

  it('--esp names the boot root; a missing loader.conf is a warning that says to run bootctl install', async () => {
    root = espRoot({ esp: '/boot/esp', loaderConf: false });
    const result = await add(root, '--layout', 'bls', '--esp', '/boot/esp', '--initramfs', 'none');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/warn: .*\/boot\/esp\/loader\/loader\.conf is missing.*run bootctl install/);
    expect(readFileSync(root.at(`/boot/esp/${MACHINE_ID}/${V}/linux`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readdirSync(root.at('/boot/esp/loader/entries'))).toEqual([`${MACHINE_ID}-${V}.conf`]);
  });

  it('no boot root: exit 4 naming every place tried, nothing changed', async () => {
    root = espRoot({ esp: false });
    const before = snapshotTree(root.root);
    const result = await add(root, '--layout', 'bls', '--initramfs', 'none');
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EPREFLIGHT: /m);
    expect(result.stderr).toContain(
      `no boot root found (tried ${root.at('/efi')}, ${root.at('/boot/efi')}, ${root.at('/boot')})`,
    );
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('no command line: exit 4 saying to create /etc/kernel/cmdline, nothing changed', async () => {
    root = espRoot({ cmdline: false });
    const before = snapshotTree(root.root);
    const result = await add(root, '--layout', 'bls', '--initramfs', 'none');
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: EPREFLIGHT: .*no kernel command line for the boot entry: create ${root.at('/etc/kernel/cmdline')}`,
        'm',
      ),
    );
    expect(snapshotTree(root.root)).toEqual(before);
    const given = await add(root, '--layout', 'bls', '--initramfs', 'none', '--cmdline', 'root=LABEL=gentoo quiet');
    expect(given.exitCode, given.stderr).toBe(0);
    expect(readFileSync(root.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`), 'utf8')).toContain(
      '\noptions root=LABEL=gentoo quiet\n',
    );
  });

  it('a bad tries file is refused in preflight', async () => {
    root = espRoot();
    writeFileSync(root.at('/etc/kernel/tries'), 'three\n');
    const before = snapshotTree(root.root);
    const result = await add(root, '--layout', 'bls', '--initramfs', 'none');
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain(`${root.at('/etc/kernel/tries')} must hold a whole number of boot tries, found "three"`);
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('a preinst hook that rewrites /etc/kernel/cmdline: the entry carries the new line, not the one preflight read', async () => {
    root = espRoot();
    writeHook(root, '/etc/kernel/preinst.d', '10-cmdline', `echo 'root=/dev/vda2 rw quiet' > ${root.at('/etc/kernel/cmdline')}`);
    const result = await add(root, '--layout', 'bls', '--initramfs', 'none');
    expect(result.exitCode, result.stderr).toBe(0);
    const entry = readFileSync(root.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`), 'utf8');
    expect(entry.split('\n').filter((l) => l.startsWith('options '))).toEqual(['options root=/dev/vda2 rw quiet']);
  });
});
