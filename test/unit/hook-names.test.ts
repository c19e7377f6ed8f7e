// Hook file names: the sort -V order installkernel and kernel-install run plugins in, and the
// leftovers that never run.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareHookNames, isRunPartsName, leftoverReason } from '../../src/core/pipeline/hooks/names.js';
import { redundancyOf } from '../../src/core/pipeline/hooks/redundant.js';

describe('compareHookNames', () => {
  it('orders exactly as GNU sort -V in the C locale (the oracle): digit runs by value, the suffix ignored first', () => {
    const names = [
      '100-last',
      '99-write-log.install',
      '5-a.install',
      '10-b',
      '50-dracut-extra',
      '50-dracut.install',
      '10-b.install',
      'zz-update-grub',
      '05-check-chroot.install',
      '9',
      '50-Dracut.install',
      '50_dracut',
      '50-dracut~rc1.install',
      'dracut',
      '1.10-x',
      '1.9-x',
    ];
    const expected = execFileSync('sort', ['-V'], { input: `${names.join('\n')}\n`, env: { LC_ALL: 'C' }, encoding: 'utf8' })
      .trim()
      .split('\n');
    expect([...names].sort(compareHookNames)).toEqual(expected);
    expect(expected.indexOf('9')).toBeLessThan(expected.indexOf('10-b'));
  });

  it('puts kernel-install plugins before or after the install point 90', () => {
    expect(compareHookNames('85-initrd.install', '90')).toBeLessThan(0);
    expect(compareHookNames('90-loaderentry.install', '90')).toBeGreaterThan(0);
    expect(compareHookNames('100-x.install', '90')).toBeGreaterThan(0);
  });
});

describe('leftovers and run-parts names', () => {
  it.each([
    ['52-dracut.install.dpkg-old', 'a leftover of dpkg'],
    ['52-dracut.install.dpkg-dist', 'a leftover of dpkg'],
    ['52-dracut.install.rpmnew', 'a leftover of rpm'],
    ['._cfg0000_52-dracut.install', 'a config update etc-update/dispatch-conf has not merged'],
    ['52-dracut.install~', 'an editor backup'],
    ['52-dracut.install.bak', 'a backup or editor file'],
    ['.52-dracut.install.swp', 'a hidden file'],
  ])('%s never runs: %s', (name, reason) => {
    expect(leftoverReason(name)).toBe(reason);
  });

  it('a plugin name is no leftover; run-parts takes only letters, digits, - and _', () => {
    expect(leftoverReason('52-dracut.install')).toBeUndefined();
    expect(isRunPartsName('zz-update-grub')).toBe(true);
    expect(isRunPartsName('52-dracut.install')).toBe(false);
  });
});

describe('redundancyOf', () => {
  it('91-grub-mkconfig redoes a step only for the grub layout; 50-depmod only under kernel-install', () => {
    expect(redundancyOf('91-grub-mkconfig.install', 'installkernel', 'grub')?.step).toBe('bootloader');
    expect(redundancyOf('91-grub-mkconfig.install', 'installkernel', 'compat')).toBeUndefined();
    expect(redundancyOf('zz-update-grub', 'run-parts', 'grub+compat')?.step).toBe('bootloader');
    expect(redundancyOf('50-depmod.install', 'kernel-install', 'bls')?.step).toBe('depmod');
    expect(redundancyOf('50-depmod.install', 'installkernel', 'bls')).toBeUndefined();
    expect(redundancyOf('99-write-log.install', 'installkernel', 'compat')?.step).toBe('history');
  });
});
