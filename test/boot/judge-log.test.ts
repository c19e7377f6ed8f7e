// The boot verdict read from serial logs, in-process: the harness must tell a marker from each
// kind of failure, and must not mistake a kernel's own messages for a loader failure.
import { describe, expect, it } from 'vitest';
import { judgeLog, parseMarker } from '../helpers/boot.js';

const V = '6.1.0-56-cloud-amd64';
const marker = `\r\nKINSTALL-BOOT-MARKER version=${V} efi=yes loader_entry=abc-${V}.conf loader_info=systemd-boot_252.39-1~deb12u2 stubinfo=- cmdline=initrd=\\abc\\initrd console=ttyS0\r\n`;

describe('boot log verdicts', () => {
  it('reads the marker line: version, EFI, the loader variables (spaces restored) and the command line', () => {
    expect(parseMarker(`[    5.9] random: crng init done${marker}[    6.0] sysrq: Power Off\r\n`)).toEqual({
      version: V,
      efi: true,
      loaderEntry: `abc-${V}.conf`,
      loaderInfo: 'systemd-boot 252.39-1~deb12u2',
      stubInfo: undefined,
      cmdline: 'initrd=\\abc\\initrd console=ttyS0',
    });
  });

  it('waits for the whole marker line before judging', () => {
    expect(judgeLog(marker.slice(0, -10))).toBeUndefined();
  });

  it('tells kernel panics, initramfs errors and loader errors apart', () => {
    expect(judgeLog('[ 1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n')).toEqual({
      booted: false,
      reason: 'kernel-panic',
      evidence: 'Kernel panic - not syncing: VFS: Unable to mount root fs',
    });
    expect(judgeLog('[ 0.9] Initramfs unpacking failed: read error\r\n')).toMatchObject({ reason: 'initramfs-error' });
    expect(judgeLog('BdsDxe: starting Boot0002\r\n   Error preparing initrd: Not Found\r\n')).toMatchObject({
      reason: 'loader-error',
      evidence: 'Error preparing initrd: Not Found',
    });
    expect(judgeLog("\r\rerror: file `/vmlinuz' not found.\r\n")).toMatchObject({
      reason: 'loader-error',
      evidence: "error: file `/vmlinuz' not found.",
    });
  });

  it('tells systemd\'s freeze in the initramfs from a kernel\'s own "Failed to" lines', () => {
    const frozen =
      "[    0.5] systemd[1]: Failed to find module 'autofs4'\r\n[\x1b[0;1;31m!!!!!!\x1b[0m] Failed to mount API filesystems.\r\n[    0.6] systemd[1]: Freezing execution.\r\n";
    expect(judgeLog(`[    0.000000] Linux version 6.1.192\r\n${frozen}`)).toEqual({
      booted: false,
      reason: 'initramfs-error',
      evidence: 'Failed to mount API filesystems.',
    });
  });

  it('judges a failure only once its line is complete (the log is read while it is written)', () => {
    expect(judgeLog('\r\rerror: file')).toBeUndefined();
    expect(judgeLog("\r\rerror: file `/vmlinuz-6.1' not f")).toBeUndefined();
    expect(judgeLog("\r\rerror: file `/vmlinuz-6.1' not found.\r\n")).toMatchObject({
      reason: 'loader-error',
      evidence: "error: file `/vmlinuz-6.1' not found.",
    });
    expect(judgeLog('[ 1.2] Kernel panic - not syncing: VFS: Unable to mo')).toBeUndefined();
  });

  it('counts loader messages only before the kernel banner, and the UEFI shell only when not expected', () => {
    expect(judgeLog('[    0.000000] Linux version 6.1.0\r\n[    2.1] systemd[1]: Failed to load module\r\n')).toBeUndefined();
    const shell = 'BdsDxe: starting Boot0003 "EFI Internal Shell" from Fv(...)\r\n';
    expect(judgeLog(shell)).toMatchObject({ reason: 'loader-error' });
    expect(judgeLog(shell, true)).toBeUndefined();
  });
});
