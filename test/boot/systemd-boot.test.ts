// Boots the bls and uki layouts through the real systemd-boot in OVMF: kinstall's entry file and
// UKI must be what the loader picks (LoaderEntrySelected) and the installed kernel must reach init.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_CMDLINE, bootVm, describeVerdict, markerDracutArgs } from '../helpers/boot.js';
import { buildEspImage, listEspImage } from '../helpers/esp-image.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { bootRoot, hasMarkerHooks, install, MACHINE_ID, reportTime, scratch, scratchDir, V } from './roots.js';

const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const loader = { 'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT };

/** An ESP as `bootctl install` leaves it, with timeout 0 so the default entry boots at once. */
function espRoot(): TestRoot {
  const root = bootRoot();
  mkdirSync(root.at('/efi/EFI/Linux'), { recursive: true });
  mkdirSync(root.at('/efi/loader/entries'), { recursive: true });
  writeFileSync(root.at('/efi/loader/loader.conf'), 'timeout 0\n');
  scratchDir(root);
  return root;
}

describe('bls layout boots through systemd-boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  const entry = `${MACHINE_ID}-${V}.conf`;
  beforeAll(async () => {
    root = roots.adopt(espRoot());
    await install(root, ['--layout', 'bls', '--initramfs', 'dracut']);
  });

  it('systemd-boot selects the entry kinstall wrote and the installed kernel reaches the initramfs', async () => {
    expect(hasMarkerHooks(root.at(`/efi/${MACHINE_ID}/${V}/initrd`))).toBe(true);
    const esp = buildEspImage({ from: root.at('/efi'), out: scratch(root, 'esp.img'), add: loader });
    expect(listEspImage(esp).sort()).toEqual(
      [
        '/EFI/BOOT/BOOTX64.EFI',
        `/${MACHINE_ID}/${V}/initrd`,
        `/${MACHINE_ID}/${V}/linux`,
        `/loader/entries/${entry}`,
        '/loader/loader.conf',
      ].sort(),
    );
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('bls', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: entry });
    expect(verdict.marker.loaderInfo).toMatch(/^systemd-boot \d/);
    expect(verdict.marker.cmdline).toBe(`initrd=\\${MACHINE_ID}\\${V}\\initrd ${BOOT_CMDLINE}`);
  });

  it('fails when the entry names an initrd that is not on the ESP', async () => {
    const esp = buildEspImage({
      from: root.at('/efi'),
      out: scratch(root, 'esp-no-initrd.img'),
      add: loader,
      omit: [`${MACHINE_ID}/${V}/initrd`],
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-initrd.log'), timeoutSeconds: 40 });
    reportTime('bls without initrd', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toMatch(/initrd/i);
  });
});

describe('uki layout boots through systemd-boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  const uki = `${MACHINE_ID}-${V}.efi`;
  beforeAll(async () => {
    root = roots.adopt(espRoot());
    // dracut builds the UKI with its own initramfs, so the generator step is skipped.
    await install(root, ['--layout', 'uki', '--initramfs', 'none']);
  });

  it('systemd-boot finds the UKI in EFI/Linux, its stub starts the kernel with the embedded command line', async () => {
    expect(hasMarkerHooks(root.at(`/efi/EFI/Linux/${uki}`))).toBe(true);
    const esp = buildEspImage({ from: root.at('/efi'), out: scratch(root, 'esp.img'), add: loader });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('uki', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: uki, cmdline: BOOT_CMDLINE });
    expect(verdict.marker.stubInfo).toMatch(/^systemd-stub \d/);
  });

  it('fails when the UKI is not on the ESP', async () => {
    const esp = buildEspImage({
      from: root.at('/efi'),
      out: scratch(root, 'esp-no-uki.img'),
      add: loader,
      omit: [`EFI/Linux/${uki}`],
    });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial-no-uki.log'), timeoutSeconds: 40 });
    reportTime('uki missing', verdict);
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    // With no entry left, systemd-boot shows its menu holding only its own firmware-setup item.
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toBe('Reboot Into Firmware Interface');
  });
});

/** An initramfs built outside kinstall, as a distribution kernel ships one: real dracut, marker hooks. */
function prebuiltInitramfs(root: TestRoot): string {
  const out = scratch(root, 'prebuilt-initrd.img');
  execFileSync('depmod', ['-a', '-b', root.root, V]);
  const args = [
    '--force',
    '--kver',
    V,
    '--kmoddir',
    root.at(`/lib/modules/${V}`),
    '--no-hostonly',
    ...markerDracutArgs(root),
    out,
  ];
  execFileSync('dracut', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

describe('uki layout assembled around a prebuilt initramfs boots through systemd-boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  let initrd: string;
  const uki = `${MACHINE_ID}-${V}.efi`;
  beforeAll(async () => {
    root = roots.adopt(espRoot());
    initrd = prebuiltInitramfs(root);
    await install(root, ['--layout', 'uki', '--initrd', initrd]);
  });

  it('the UKI carries the given initramfs byte for byte, systemd-boot starts it and the marker runs', async () => {
    const image = root.at(`/efi/EFI/Linux/${uki}`);
    const extracted = scratch(root, 'initrd-from-uki.img');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.initrd', image, extracted]);
    expect(readFileSync(extracted).equals(readFileSync(initrd))).toBe(true);
    expect(hasMarkerHooks(image)).toBe(true);
    const esp = buildEspImage({ from: root.at('/efi'), out: scratch(root, 'esp.img'), add: loader });
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('uki from a prebuilt initramfs', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: uki, cmdline: BOOT_CMDLINE });
    expect(verdict.marker.stubInfo).toMatch(/^systemd-stub \d/);
  });
});
