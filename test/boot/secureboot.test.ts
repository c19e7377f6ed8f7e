// Secure Boot enforced by the real firmware (Debian's snakeoil OVMF, the test key in PK/KEK/db):
// the bls, uki and efistub installs kinstall signed with that key boot; the same install unsigned
// is refused by the firmware. systemd-boot is signed here by the test: kinstall does not install it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOOT_CMDLINE, bootVm, describeVerdict, SNAKEOIL_CERT, SNAKEOIL_KEY, type BootVerdict } from '../helpers/boot.js';
import { top } from '../helpers/cli.js';
import { buildEspImage } from '../helpers/esp-image.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { bootRoot, hasMarkerHooks, install, MACHINE_ID, reportTime, scratch, scratchDir, V } from './roots.js';

const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
/** What the kernel prints when the firmware told it Secure Boot is on (arch/x86/kernel/setup.c). */
const SECURE_BOOT_LINE = /Secure boot enabled/;

/** sbverify --cert: the file carries a signature by the snakeoil key. */
function signedOk(file: string): boolean {
  try {
    execFileSync('sbverify', ['--cert', SNAKEOIL_CERT, file], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The snakeoil key without its passphrase (sbsign cannot be given one) and a signed systemd-boot, once per file. */
const keyRoots = useScratchRoots({ after: 'all' });
let plainKey: string;
let signedLoader: string;
beforeAll(() => {
  const keys = keyRoots({ config: false });
  plainKey = keys.at('/etc/kinstall/snakeoil.key');
  execFileSync('openssl', ['rsa', '-passin', 'pass:snakeoil', '-in', SNAKEOIL_KEY, '-out', plainKey], { stdio: 'ignore' });
  signedLoader = keys.at('/etc/kinstall/systemd-bootx64.efi');
  execFileSync('sbsign', ['--key', plainKey, '--cert', SNAKEOIL_CERT, '--output', signedLoader, SYSTEMD_BOOT], {
    stdio: 'ignore',
  });
});

/** A root whose config signs with the snakeoil key (or does not), and an ESP as `bootctl install` leaves it. */
function secureRoot(signing: boolean, pluginOptions: Record<string, unknown> = {}): TestRoot {
  const root = bootRoot(signing ? { secureboot: { key: plainKey, cert: SNAKEOIL_CERT }, ...pluginOptions } : pluginOptions);
  mkdirSync(root.at('/efi/EFI/Linux'), { recursive: true });
  mkdirSync(root.at('/efi/loader/entries'), { recursive: true });
  writeFileSync(root.at('/efi/loader/loader.conf'), 'timeout 0\n');
  scratchDir(root);
  return root;
}

async function bootSecure(root: TestRoot, label: string, extra: Record<string, string | Buffer> = {}): Promise<BootVerdict> {
  const esp = buildEspImage({
    from: root.at('/efi'),
    out: scratch(root, 'esp.img'),
    add: { 'EFI/BOOT/BOOTX64.EFI': signedLoader, ...extra },
  });
  const verdict = await bootVm({ esp, log: scratch(root, 'serial.log'), secureBoot: true });
  reportTime(label, verdict);
  return verdict;
}

describe('bls under enforcing Secure Boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  beforeAll(async () => {
    root = roots.adopt(secureRoot(true));
    await install(root, ['--layout', 'bls', '--esp', '/efi', '--initramfs', 'dracut']);
  });

  it('the signed linux boots through signed systemd-boot and the kernel sees Secure Boot on', async () => {
    expect(signedOk(root.at(`/efi/${MACHINE_ID}/${V}/linux`))).toBe(true);
    // The neutral location keeps the unsigned image: only the staging area's copy was signed.
    expect(signedOk(root.at(`/lib/modules/${V}/vmlinuz`))).toBe(false);
    const verdict = await bootSecure(root, 'bls signed, Secure Boot');
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.log).toMatch(SECURE_BOOT_LINE);
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: `${MACHINE_ID}-${V}.conf` });
  });
});

describe('the same bls install without signing', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  beforeAll(async () => {
    root = roots.adopt(secureRoot(false));
    await install(root, ['--layout', 'bls', '--esp', '/efi', '--initramfs', 'dracut']);
  });

  it('is refused by the firmware: systemd-boot cannot load the kernel', async () => {
    expect(signedOk(root.at(`/efi/${MACHINE_ID}/${V}/linux`))).toBe(false);
    const verdict = await bootSecure(root, 'bls unsigned, Secure Boot');
    expect(verdict.booted).toBe(false);
    if (verdict.booted) return;
    expect(verdict.reason, describeVerdict(verdict)).toBe('loader-error');
    expect(verdict.evidence).toBe(`Error loading \\${MACHINE_ID}\\${V}\\linux: Access Denied`);
  });
});

describe('uki under enforcing Secure Boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  const uki = `${MACHINE_ID}-${V}.efi`;
  beforeAll(async () => {
    root = roots.adopt(secureRoot(true));
    await install(root, ['--layout', 'uki', '--esp', '/efi', '--initramfs', 'none']);
  });

  it('the signed UKI boots and its embedded initramfs reaches the marker', async () => {
    const image = root.at(`/efi/EFI/Linux/${uki}`);
    expect(signedOk(image)).toBe(true);
    expect(hasMarkerHooks(image)).toBe(true);
    const verdict = await bootSecure(root, 'uki signed, Secure Boot');
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.log).toMatch(SECURE_BOOT_LINE);
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: uki, cmdline: BOOT_CMDLINE });
  });
});

interface FakeFirmware {
  bootOrder: string[];
  entries: Record<string, { label: string; loader: string; args: string }>;
}

/**
 * efistub: the firmware starts the image from the entry kinstall created. OVMF refuses its own UEFI
 * shell under Secure Boot ("Security Violation"), so startup.nsh cannot run the entry; the signed
 * systemd-boot hands the entry's loader and arguments to the firmware's LoadImage instead, which
 * checks the signature as it does for a Boot#### entry.
 */
describe('efistub under enforcing Secure Boot', () => {
  const roots = useScratchRoots({ after: 'all' });
  let root: TestRoot;
  let entry: FakeFirmware['entries'][string];
  beforeAll(async () => {
    root = roots.adopt(
      secureRoot(true, {
        efistub: { efibootmgr: path.join(top, 'test/fakes/efibootmgr'), efivars: true, disk: '/dev/vda', part: 1 },
      }),
    );
    const state = scratch(root, 'efivars.json');
    await install(root, ['--layout', 'efistub', '--esp', '/efi', '--initramfs', 'dracut'], { EFIBOOTMGR_FAKE_STATE: state });
    const firmware = JSON.parse(readFileSync(state, 'utf8')) as FakeFirmware;
    const first = firmware.entries[firmware.bootOrder[0] ?? ''];
    if (!first) throw new Error(`the efibootmgr fake holds no boot entry: ${JSON.stringify(firmware)}`);
    entry = first;
  });

  it("the signed image starts from the firmware entry's loader and arguments", async () => {
    expect(entry.loader).toBe(`\\EFI\\Gentoo\\vmlinuz-${V}.efi`);
    expect(signedOk(root.at(`/efi/EFI/Gentoo/vmlinuz-${V}.efi`))).toBe(true);
    const conf = `title firmware entry\nefi ${entry.loader.replace(/\\/g, '/')}\noptions ${entry.args}\n`;
    const verdict = await bootSecure(root, 'efistub signed, Secure Boot', {
      'loader/entries/firmware-entry.conf': Buffer.from(conf),
    });
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.log).toMatch(SECURE_BOOT_LINE);
    expect(verdict.marker).toMatchObject({ version: V, efi: true });
    expect(verdict.marker.cmdline).toContain(`initrd=\\EFI\\Gentoo\\initramfs-${V}.img`);
  });
});
