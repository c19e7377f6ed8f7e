// Early microcode through a real boot: the target ships /boot/intel-uc.img, the bls entry loads it
// before the initramfs, systemd-boot in OVMF hands both to the kernel in that order, and the kernel
// (which skips an update no CPU takes) goes on into the initramfs and reaches the marker. One boot.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_CMDLINE, bootVm, describeVerdict } from '../helpers/boot.js';
import { buildEspImage, listEspImage } from '../helpers/esp-image.js';
import { microcodeFixture } from '../helpers/initramfs.js';
import type { TestRoot } from '../helpers/root.js';
import { bootRoot, hasMarkerHooks, install, MACHINE_ID, reportTime, scratch, scratchDir, V } from './roots.js';

const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';

describe('early microcode boots through systemd-boot', () => {
  let root: TestRoot;
  const entry = `${MACHINE_ID}-${V}.conf`;
  beforeAll(async () => {
    root = bootRoot();
    mkdirSync(root.at('/efi/loader/entries'), { recursive: true });
    writeFileSync(root.at('/efi/loader/loader.conf'), 'timeout 0\n');
    writeFileSync(root.at('/boot/intel-uc.img'), microcodeFixture());
    scratchDir(root);
    await install(root, ['--layout', 'bls', '--initramfs', 'dracut']);
  });
  afterAll(() => root?.cleanup());

  it('the bls entry loads /boot/intel-uc.img first, then the initramfs, and the kernel reaches the marker', async () => {
    const initrdLines = readFileSync(root.at(`/efi/loader/entries/${entry}`), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('initrd'));
    expect(initrdLines).toEqual([`initrd /${MACHINE_ID}/${V}/intel-uc.img`, `initrd /${MACHINE_ID}/${V}/initrd`]);
    expect(hasMarkerHooks(root.at(`/efi/${MACHINE_ID}/${V}/initrd`))).toBe(true);
    const esp = buildEspImage({
      from: root.at('/efi'),
      out: scratch(root, 'esp.img'),
      add: { 'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT },
    });
    expect(listEspImage(esp)).toContain(`/${MACHINE_ID}/${V}/intel-uc.img`);
    const verdict = await bootVm({ esp, log: scratch(root, 'serial.log') });
    reportTime('bls with early microcode', verdict);
    expect(verdict.booted, describeVerdict(verdict)).toBe(true);
    if (!verdict.booted) return;
    expect(verdict.marker).toMatchObject({ version: V, efi: true, loaderEntry: entry });
    // systemd-boot names each initrd it loaded, in the order it concatenated them for the kernel.
    expect(verdict.marker.cmdline).toBe(
      `initrd=\\${MACHINE_ID}\\${V}\\intel-uc.img initrd=\\${MACHINE_ID}\\${V}\\initrd ${BOOT_CMDLINE}`,
    );
  });
});
