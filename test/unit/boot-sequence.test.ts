// What the try-once boot tests read from a serial log of several boots in one QEMU (splitBoots),
// on a log shaped as OVMF and the kernel write it; and the trial initramfs images they boot.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { readInitramfsLayout } from '../../src/core/system/initramfs-format.js';
import { splitBoots } from '../helpers/boot.js';
import { badTryInitramfs, goodTryInitramfs, TRY_MARKER } from '../helpers/initramfs.js';
import { testKbuild } from '../helpers/kbuild.js';

const firmware = (num: string, label: string) =>
  `\x1b[2J\x1b[01;01H  BdsDxe: loading Boot${num} "${label}" from \\EFI\\Test\\x.efi\r\nBdsDxe: starting Boot${num} "${label}" from \\EFI\\Test\\x.efi\r\nEFI stub: Loaded initrd from command line option\r\n`;
const kernel = (cmdline: string, ...lines: string[]) =>
  [`[    0.000000] Linux version 6.1.0`, `[    0.000000] Command line: ${cmdline}`, ...lines].map((l) => `${l}\r\n`).join('');

describe('splitBoots', () => {
  const log = [
    firmware('0002', 'Test B'),
    kernel(
      'initrd=\\EFI\\Test\\b.img console=ttyS0 panic=1 kinstall.tag=B',
      '[    1.7] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
      '[    1.8] Rebooting in 1 seconds..',
    ),
    firmware('0001', 'Test A'),
    kernel('initrd=\\EFI\\Test\\a.img console=ttyS0 kinstall.tag=A', `[    1.5] ${TRY_MARKER}`),
  ].join('');

  it('makes one boot per kernel command line, with its firmware option, panic and marker', () => {
    const boots = splitBoots(log);
    expect(boots.map(({ log: _log, ...b }) => b)).toEqual([
      {
        cmdline: 'initrd=\\EFI\\Test\\b.img console=ttyS0 panic=1 kinstall.tag=B',
        tag: 'B',
        bootOption: '0002',
        panicked: true,
        reachedMarker: false,
      },
      {
        cmdline: 'initrd=\\EFI\\Test\\a.img console=ttyS0 kinstall.tag=A',
        tag: 'A',
        bootOption: '0001',
        panicked: false,
        reachedMarker: true,
      },
    ]);
    // Each boot's log holds its firmware lines and its kernel's, nothing of the other boot.
    expect(boots[0]!.log).toContain('BdsDxe: starting Boot0002');
    expect(boots[0]!.log).toContain('Rebooting in 1 seconds');
    expect(boots[0]!.log).not.toContain('Boot0001');
    expect(boots[1]!.log.startsWith('BdsDxe: loading Boot0001')).toBe(true);
    // The first boot also holds what the firmware wrote before it: together they are the whole log.
    expect(boots.map((b) => b.log).join('')).toBe(log);
  });

  it('waits for a whole command line, takes a marker of the caller, and has no tag or option when none is shown', () => {
    expect(splitBoots(log.slice(0, log.lastIndexOf('kinstall.tag=A')))).toHaveLength(1);
    const direct = kernel('console=ttyS0', 'KINSTALL-BOOT-MARKER version=6.1');
    expect(splitBoots(direct, /KINSTALL-BOOT-MARKER version=\S+/)).toMatchObject([
      { cmdline: 'console=ttyS0', tag: undefined, bootOption: undefined, reachedMarker: true, panicked: false },
    ]);
    expect(splitBoots('BdsDxe: starting Boot0001 "x"\r\n')).toEqual([]);
  });
});

describe('the trial initramfs images', () => {
  it('the good one is a newc archive whose /init writes the marker; the bad one has no /init', () => {
    const good = goodTryInitramfs(testKbuild().out);
    const bad = badTryInitramfs();
    expect(readInitramfsLayout(good)).toEqual({ parts: [{ offset: 0, format: 'none' }] });
    expect(readInitramfsLayout(bad)).toEqual({ parts: [{ offset: 0, format: 'none' }] });
    const list = (image: Buffer) =>
      execFileSync('cpio', ['-t', '--quiet'], { input: image, encoding: 'utf8' }).trim().split('\n');
    expect(list(good)).toContain('init');
    expect(list(bad)).toEqual(['no-init-here']);
    const init = execFileSync('cpio', ['-i', '--to-stdout', '--quiet', 'init'], { input: good, encoding: 'utf8' });
    expect(init).toContain(`kmsg 3 "${TRY_MARKER}"`);
  });
});
