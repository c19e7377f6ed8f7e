// Boots the efistub layout from the firmware entry kinstall created (through the UEFI shell's
// startup.nsh), the grub layout through a real GRUB EFI image reading kinstall's grub.cfg, and the
// compat layout by direct kernel boot; each with a negative boot that must fail.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_CMDLINE, bootVm, describeVerdict } from '../helpers/boot.js';
import { top } from '../helpers/cli.js';
import { buildEspImage } from '../helpers/esp-image.js';
import type { TestRoot } from '../helpers/root.js';
import { bootRoot, hasMarkerHooks, install, reportTime, scratch, scratchDir, V } from './roots.js';

interface FakeFirmware {
  bootOrder: string[];
  entries: Record<string, { label: string; loader: string; args: string }>;
}

describe('efistub layout boots from the firmware entry kinstall created', () => {
  let root: TestRoot;
  let startup: string;
  const loaderFile = `EFI/Gentoo/vmlinuz-${V}.efi`;
  beforeAll(async () => {
    root = bootRoot({ efistub: { efibootmgr: path.join(top, 'test/fakes/efibootmgr'), efivars: true, disk: '/dev/vda', part: 1 } });
    mkdirSync(root.at('/boot/efi/EFI'), { recursive: true });
    scratchDir(root);
    const state = scratch(root, 'efivars.json');
    await install(root, ['--layout', 'efistub', '--initramfs', 'dracut'], { EFIBOOTMGR_FAKE_STATE: state });
    // The firmware would boot BootOrder's first entry: its loader path with its load options.
    const firmware = JSON.parse(readFileSync(state, 'utf8')) as FakeFirmware;
    const entry = firmware.entries[firmware.bootOrder[0] ?? ''];
    if (!entry) throw new Error(`the efibootmgr fake holds no boot entry: ${JSON.stringify(firmware)}`);
    startup = `FS0:\r\n${entry.loader} ${entry.args}\r\n`;
  });
  afterAll(() => root?.cleanup());

  it('the UEFI shell runs the entry\'s loader and arguments; the EFI stub loads the initramfs kinstall placed', async () => {
    expect(startup).toBe(`FS0:\r\n\\EFI\\Gentoo\\vmlinuz-${V}.efi ${BOOT_CMDLINE} initrd=\\EFI\\Gentoo\\initramfs-${V}.img\r\n`);
    expect(hasMarkerHooks(root.at(`/boot/efi/EFI/Gentoo/initramfs-${V}.img`))).toBe(true);
    const esp = buildEspImage({ from: root.at('/boot/efi'), out: scratch(root, 'esp.img'), add: { 'startup.nsh': Buffer.from(startup) } });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log'), shellExpected: true });
    reportTime('efistub', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true });
    expect(verdict.marker.cmdline).toBe(`\\EFI\\Gentoo\\vmlinuz-${V}.efi ${BOOT_CMDLINE} initrd=\\EFI\\Gentoo\\initramfs-${V}.img`);
  });

  it('fails when the entry\'s loader file is not on the ESP', async () => {
    const esp = buildEspImage({ from: root.at('/boot/efi'), out: scratch(root, 'esp-no-loader.img'), add: { 'startup.nsh': Buffer.from(startup) }, omit: [loaderFile] });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-loader.log'), shellExpected: true, timeoutSeconds: 40 });
    reportTime('efistub without loader', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toContain('is not recognized');
  });
});

/** The target's grub-mkconfig: the test fake, with a dash (and its libraries) to run it in the chroot. */
function installGrubMkconfigFake(root: TestRoot): void {
  const dash = '/usr/bin/dash';
  const libs = execFileSync('ldd', [dash], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
  const files: Array<[string, string]> = [...libs.map((lib): [string, string] => [lib, lib]), [dash, '/bin/sh'], [path.join(top, 'test/fakes/grub-mkconfig'), '/usr/sbin/grub-mkconfig']];
  for (const [from, to] of files) {
    mkdirSync(path.dirname(root.at(to)), { recursive: true });
    copyFileSync(from, root.at(to));
    chmodSync(root.at(to), 0o755);
  }
  mkdirSync(root.at('/boot/grub'), { recursive: true });
  mkdirSync(root.at('/etc/default'), { recursive: true });
  mkdirSync(root.at('/var/log'), { recursive: true });
  writeFileSync(root.at('/etc/default/grub'), `GRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Gentoo\nGRUB_CMDLINE_LINUX="${BOOT_CMDLINE}"\n`);
}

const GRUB_MODULES = ['part_gpt', 'part_msdos', 'fat', 'normal', 'linux', 'configfile', 'search', 'echo', 'all_video', 'test', 'gzio'];

describe('grub layout boots through GRUB EFI from kinstall\'s /boot', () => {
  let root: TestRoot;
  let grubEfi: string;
  beforeAll(async () => {
    root = bootRoot();
    installGrubMkconfigFake(root);
    scratchDir(root);
    await install(root, ['--layout', 'grub', '--initramfs', 'dracut']);
    // /boot is the image's filesystem, so GRUB's prefix is /grub on the device it was loaded from.
    grubEfi = scratch(root, 'grubx64.efi');
    execFileSync('grub-mkimage', ['-O', 'x86_64-efi', '-p', '/grub', '-o', grubEfi, ...GRUB_MODULES]);
  });
  afterAll(() => root?.cleanup());

  it('GRUB reads the grub.cfg made at install and boots kinstall\'s kernel and initramfs', async () => {
    expect(readFileSync(root.at('/var/log/grub-mkconfig.fake.log'), 'utf8')).toBe('-o /boot/grub/grub.cfg.kinstall-new\n');
    expect(readFileSync(root.at('/boot/grub/grub.cfg'), 'utf8')).toContain(`initrd /initramfs-${V}.img`);
    expect(hasMarkerHooks(root.at(`/boot/initramfs-${V}.img`))).toBe(true);
    const esp = buildEspImage({ from: root.at('/boot'), out: scratch(root, 'esp.img'), add: { 'EFI/BOOT/BOOTX64.EFI': grubEfi } });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('grub', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true, cmdline: `BOOT_IMAGE=/vmlinuz-${V} ${BOOT_CMDLINE}` });
  });

  it('fails when grub.cfg names a kernel that is not there', async () => {
    const esp = buildEspImage({ from: root.at('/boot'), out: scratch(root, 'esp-no-kernel.img'), add: { 'EFI/BOOT/BOOTX64.EFI': grubEfi }, omit: [`vmlinuz-${V}`] });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-kernel.log'), timeoutSeconds: 40 });
    reportTime('grub without kernel', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toBe(`error: file \`/vmlinuz-${V}' not found.`);
  });
});

describe('compat layout boots by direct kernel boot', () => {
  let root: TestRoot;
  beforeAll(async () => {
    root = bootRoot();
    scratchDir(root);
    await install(root, ['--layout', 'compat', '--initramfs', 'dracut']);
  });
  afterAll(() => root?.cleanup());

  it('the installed vmlinuz and initramfs reach the initramfs\'s init', async () => {
    const initrd = root.at(`/boot/initramfs-${V}.img`);
    expect(hasMarkerHooks(initrd)).toBe(true);
    const verdict = await bootVm({ direct: { kernel: root.at(`/boot/vmlinuz-${V}`), initrd, append: BOOT_CMDLINE }, log: scratch(root, 'serial.log') });
    reportTime('compat', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: false, cmdline: BOOT_CMDLINE });
  });

  it('fails with a truncated initramfs', async () => {
    const truncated = scratch(root, 'initramfs-truncated.img');
    const bytes = readFileSync(root.at(`/boot/initramfs-${V}.img`));
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 3)));
    const verdict = await bootVm({ direct: { kernel: root.at(`/boot/vmlinuz-${V}`), initrd: truncated, append: BOOT_CMDLINE }, log: scratch(root, 'serial-truncated.log'), timeoutSeconds: 40 });
    reportTime('compat with truncated initramfs', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('initramfs-error');
    expect(verdict.evidence).toMatch(/^Initramfs unpacking failed: /);
  });
});
