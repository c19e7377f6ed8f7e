// Early microcode: the target's /boot/intel-uc.img (or microcode* a hook leaves in the staging
// area) is loaded before the initramfs: its own initrd line first in a BLS entry (a copy in the
// version's directory, removed with it), first in the UKI's initrd section.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { kinstallInNamespace, leakedMounts, prepareGrubRoot } from '../helpers/grub-namespace.js';
import { initramfsFixture, microcodeFixture } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const newRoot = useScratchRoots();

/** An ESP target (/efi) with a prebuilt initramfs to install, and os-release for the UKI. */
function espRoot(layout: string): { r: TestRoot; initrd: string } {
  const r = newRoot();
  mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/install.conf'), `layout=${layout}\n`);
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  const initrd = r.at('/var/tmp/initrd.img');
  mkdirSync(r.at('/var/tmp'), { recursive: true });
  writeFileSync(initrd, initramfsFixture('main-initramfs'));
  return { r, initrd };
}

const entryOf = (r: TestRoot) => readFileSync(r.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`), 'utf8');

describe('early microcode', () => {
  it('bls: /boot/intel-uc.img copied beside the kernel, its initrd line first; removed with the version', async () => {
    const { r, initrd } = espRoot('bls');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const initrdLines = entryOf(r).split('\n').filter((l) => l.startsWith('initrd'));
    expect(initrdLines).toEqual([`initrd /${MACHINE_ID}/${V}/intel-uc.img`, `initrd /${MACHINE_ID}/${V}/initrd`]);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/intel-uc.img`)).equals(microcodeFixture())).toBe(true);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/initrd`)).equals(readFileSync(initrd))).toBe(true);

    const removed = await kinstall(['remove', '--root', r.root, V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(existsSync(r.at(`/efi/${MACHINE_ID}/${V}`))).toBe(false);
    // The target's own image stays where its package put it.
    expect(readFileSync(r.at('/boot/intel-uc.img')).equals(microcodeFixture())).toBe(true);
  });

  it('bls: microcode a preinst hook leaves in the staging area alone is loaded first as well', async () => {
    const { r, initrd } = espRoot('bls');
    writeFileSync(r.at('/var/tmp/amd.img'), microcodeFixture('amd'));
    writeHook(r, '/etc/kernel/preinst.d', '40-microcode.install', `cp '${r.at('/var/tmp/amd.img')}' "$INSTALLKERNEL_STAGING_AREA/microcode-amd.img"`);
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const initrdLines = entryOf(r).split('\n').filter((l) => l.startsWith('initrd'));
    expect(initrdLines).toEqual([`initrd /${MACHINE_ID}/${V}/microcode-amd.img`, `initrd /${MACHINE_ID}/${V}/initrd`]);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/microcode-amd.img`)).equals(microcodeFixture('amd'))).toBe(true);
  });

  it('uki (assembled around a given initramfs): the initrd section is the microcode, then the initramfs', async () => {
    const { r, initrd } = espRoot('uki');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const uki = r.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`);
    const section = r.at('/var/tmp/section.bin');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.initrd', uki, section]);
    expect(readFileSync(section).equals(Buffer.concat([microcodeFixture(), readFileSync(initrd)]))).toBe(true);
  });

  it('grub: the real grub-mkconfig (Debian\'s 10_linux) loads /boot/intel-uc.img before the initramfs by itself', async () => {
    const r = prepareGrubRoot(newRoot(), 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_CMDLINE_LINUX="console=ttyS0"\n');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const initrd = r.at('/prebuilt-initrd.img');
    writeFileSync(initrd, initramfsFixture('main-initramfs'));
    const result = await kinstallInNamespace(r, ['add', '--root', r.root, '--layout', 'grub', '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const cfg = readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8');
    const escaped = V.replace(/[.]/g, '\\.');
    expect(cfg).toMatch(new RegExp(`^\\s*initrd\\s+/intel-uc\\.img /initramfs-${escaped}\\.img$`, 'm'));
    expect(leakedMounts(r)).toEqual([]);
  });
});
