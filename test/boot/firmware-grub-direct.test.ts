// Boots the efistub layout from the firmware entry kinstall created (through the UEFI shell's
// startup.nsh), the grub layout through a real GRUB EFI image reading the grub.cfg the real
// grub-mkconfig wrote at install, and the compat layout by direct kernel boot; each with a negative
// boot that must fail.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_CMDLINE, bootVm, describeVerdict } from '../helpers/boot.js';
import { top } from '../helpers/cli.js';
import { buildEspImage } from '../helpers/esp-image.js';
import { grubCfgVersions, grubEfiFiles, kinstallInNamespace, prepareGrubRoot } from '../helpers/grub-namespace.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { bootRoot, hasMarkerHooks, install, kernel, reportTime, scratch, scratchDir, V } from './roots.js';

interface FakeFirmware {
  bootOrder: string[];
  entries: Record<string, { label: string; loader: string; args: string }>;
}

describe('efistub layout boots from the firmware entry kinstall created', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  let startup: string;
  const loaderFile = `EFI/Gentoo/vmlinuz-${V}.efi`;
  beforeAll(async () => {
    root = roots.adopt(
      bootRoot({ efistub: { efibootmgr: path.join(top, 'test/fakes/efibootmgr'), efivars: true, disk: '/dev/vda', part: 1 } }),
    );
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

  it("the UEFI shell runs the entry's loader and arguments; the EFI stub loads the initramfs kinstall placed", async () => {
    expect(startup).toBe(`FS0:\r\n\\EFI\\Gentoo\\vmlinuz-${V}.efi ${BOOT_CMDLINE} initrd=\\EFI\\Gentoo\\initramfs-${V}.img\r\n`);
    expect(hasMarkerHooks(root.at(`/boot/efi/EFI/Gentoo/initramfs-${V}.img`))).toBe(true);
    const esp = buildEspImage({
      from: root.at('/boot/efi'),
      out: scratch(root, 'esp.img'),
      add: { 'startup.nsh': Buffer.from(startup) },
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log'), shellExpected: true });
    reportTime('efistub', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true });
    expect(verdict.marker.cmdline).toBe(
      `\\EFI\\Gentoo\\vmlinuz-${V}.efi ${BOOT_CMDLINE} initrd=\\EFI\\Gentoo\\initramfs-${V}.img`,
    );
  });

  it("fails when the entry's loader file is not on the ESP", async () => {
    const esp = buildEspImage({
      from: root.at('/boot/efi'),
      out: scratch(root, 'esp-no-loader.img'),
      add: { 'startup.nsh': Buffer.from(startup) },
      omit: [loaderFile],
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-loader.log'), shellExpected: true, timeoutSeconds: 40 });
    reportTime('efistub without loader', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toContain('is not recognized');
  });
});

/**
 * /etc/default/grub of the boot root: the menu's first entry at once, GRUB on the firmware console
 * (mirrored to serial), and the boot tests' command line.
 */
const GRUB_DEFAULTS = `GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Gentoo\nGRUB_TERMINAL=console\nGRUB_CMDLINE_LINUX="${BOOT_CMDLINE}"\nGRUB_CMDLINE_LINUX_DEFAULT=""\n`;
/** The disk the boot sees: /boot as a FAT filesystem with this volume id, as grub-probe reports it. */
const VOLUME_ID = '4B1E5EED';
const grubProbeDisk = { GRUB_PROBE_FAKE_FS: 'fat', GRUB_PROBE_FAKE_FS_UUID: '4b1e-5eed' };
describe('grub layout boots through GRUB EFI from the grub.cfg the real grub-mkconfig wrote', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  let grubLoader: Record<string, string>;
  beforeAll(async () => {
    root = prepareGrubRoot(roots.adopt(bootRoot()), GRUB_DEFAULTS);
    scratchDir(root);
    const result = await kinstallInNamespace(
      root,
      ['add', '--root', root.root, '--layout', 'grub', '--initramfs', 'dracut', V, kernel.image],
      grubProbeDisk,
    );
    if (result.exitCode !== 0) throw new Error(`kinstall add --layout grub exited ${result.exitCode}:\n${result.stderr}`);
    // /boot is the image's filesystem, so GRUB's prefix is /grub on the device it was loaded from.
    grubLoader = grubEfiFiles(scratch(root, 'grubx64.efi'));
  });

  it("GRUB runs grub-mkconfig's grub.cfg: it finds /boot by its UUID and boots kinstall's kernel and initramfs", async () => {
    const cfgPath = root.at('/boot/grub/grub.cfg');
    execFileSync('grub-script-check', [cfgPath]);
    const cfg = readFileSync(cfgPath, 'utf8');
    // Written by grub-mkconfig's own scripts, not a stand-in: its header, 10_linux, the probed disk.
    expect(cfg).toContain('### BEGIN /etc/grub.d/10_linux ###');
    expect(cfg).toMatch(/search --no-floppy --fs-uuid --set=root (?:--hint\S* )*4b1e-5eed$/m);
    expect(grubCfgVersions(cfg)).toEqual([V]);
    expect(cfg).toContain(`initrd\t/initramfs-${V}.img`);
    expect(hasMarkerHooks(root.at(`/boot/initramfs-${V}.img`))).toBe(true);
    const esp = buildEspImage({
      from: root.at('/boot'),
      out: scratch(root, 'esp.img'),
      add: grubLoader,
      volumeId: VOLUME_ID,
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('grub', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({
      version: V,
      efi: true,
      cmdline: `BOOT_IMAGE=/vmlinuz-${V} root=/dev/vda1 ro ${BOOT_CMDLINE}`,
    });
  });

  it('fails when grub.cfg names a kernel that is not there', async () => {
    const esp = buildEspImage({
      from: root.at('/boot'),
      out: scratch(root, 'esp-no-kernel.img'),
      add: grubLoader,
      omit: [`vmlinuz-${V}`],
      volumeId: VOLUME_ID,
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-kernel.log'), timeoutSeconds: 40 });
    reportTime('grub without kernel', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toBe(`error: file \`/vmlinuz-${V}' not found.`);
  });
});

describe('compat layout boots by direct kernel boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  beforeAll(async () => {
    root = roots.adopt(bootRoot());
    scratchDir(root);
    await install(root, ['--layout', 'compat', '--initramfs', 'dracut']);
  });

  it("the installed vmlinuz and initramfs reach the initramfs's init", async () => {
    const initrd = root.at(`/boot/initramfs-${V}.img`);
    expect(hasMarkerHooks(initrd)).toBe(true);
    const verdict = await bootVm({
      direct: { kernel: root.at(`/boot/vmlinuz-${V}`), initrd, append: BOOT_CMDLINE },
      log: scratch(root, 'serial.log'),
    });
    reportTime('compat', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: false, cmdline: BOOT_CMDLINE });
  });

  it('fails with a truncated initramfs', async () => {
    const truncated = scratch(root, 'initramfs-truncated.img');
    const bytes = readFileSync(root.at(`/boot/initramfs-${V}.img`));
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 3)));
    const verdict = await bootVm({
      direct: { kernel: root.at(`/boot/vmlinuz-${V}`), initrd: truncated, append: BOOT_CMDLINE },
      log: scratch(root, 'serial-truncated.log'),
      timeoutSeconds: 40,
    });
    reportTime('compat with truncated initramfs', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('initramfs-error');
    expect(verdict.evidence).toMatch(/^Initramfs unpacking failed: /);
  });
});
