// Reading `efibootmgr -v` with BootNext set, as efibootmgr 17 and 18 print it: BootNext comes first,
// only while it is set, and is never taken for a boot entry.
import { describe, expect, it } from 'vitest';
import { parseBootState } from '../../plugins/layout-efistub/firmware.js';

const GUID = 'c7a1d0a4-5b1e-4f6e-9d1a-0e2b3c4d5e6f';
/** Load options as efibootmgr 17 shows UCS-2 text: each character followed by a dot. */
const dotted = (text: string) => `${text.split('').join('.')}.`;
/** As efibootmgr 18 shows them: the UCS-2 bytes in hex. */
const hex = (text: string) => Buffer.from(text, 'utf16le').toString('hex');

const header = ['BootNext: 0002', 'BootCurrent: 0001', 'Timeout: 1 seconds', 'BootOrder: 0001,0000,0002'];

describe('parseBootState with BootNext', () => {
  it('reads efibootmgr 17 output: BootNext, BootOrder, File() device paths and dotted options', () => {
    const text = [
      ...header,
      `Boot0000* Windows Boot Manager\tHD(1,GPT,${GUID},0x800,0x32000)/File(\\EFI\\Microsoft\\Boot\\bootmgfw.efi)`,
      `Boot0001* Gentoo 6.1.192\tHD(1,GPT,${GUID},0x800,0x32000)/File(\\EFI\\Gentoo\\vmlinuz-6.1.192.efi)${dotted('root=/dev/vda2 ro')}`,
      `Boot0002* Gentoo 6.6.1 (trial)\tHD(1,GPT,${GUID},0x800,0x32000)/File(\\EFI\\Gentoo\\vmlinuz-6.6.1.efi)${dotted('root=/dev/vda2')}`,
      '',
    ].join('\n');
    const state = parseBootState(text);
    expect(state.next).toBe('0002');
    expect(state.order).toEqual(['0001', '0000', '0002']);
    expect(state.entries.map((e) => e.num)).toEqual(['0000', '0001', '0002']);
    expect(state.entries[2]).toEqual({
      num: '0002',
      label: 'Gentoo 6.6.1 (trial)',
      loader: '\\EFI\\Gentoo\\vmlinuz-6.6.1.efi',
      args: 'root=/dev/vda2',
    });
  });

  it('reads efibootmgr 18 output: the bare path after the partition node and hex options', () => {
    const text = [
      ...header,
      `Boot0000* Windows Boot Manager\tHD(1,GPT,${GUID},0x800,0x32000)/\\EFI\\Microsoft\\Boot\\bootmgfw.efi`,
      `Boot0001* Gentoo 6.1.192\tHD(1,GPT,${GUID},0x800,0x32000)/\\EFI\\Gentoo\\vmlinuz-6.1.192.efi${hex('root=/dev/vda2 ro')}`,
      `Boot0002* Gentoo 6.6.1 (trial)\tHD(1,GPT,${GUID},0x800,0x32000)/\\EFI\\Gentoo\\vmlinuz-6.6.1.efi${hex('root=/dev/vda2')}`,
    ].join('\n');
    const state = parseBootState(text);
    expect(state.next).toBe('0002');
    expect(state.order).toEqual(['0001', '0000', '0002']);
    expect(state.entries[1]).toEqual({
      num: '0001',
      label: 'Gentoo 6.1.192',
      loader: '\\EFI\\Gentoo\\vmlinuz-6.1.192.efi',
      args: 'root=/dev/vda2 ro',
    });
    expect(state.entries[2]?.label).toBe('Gentoo 6.6.1 (trial)');
  });

  it('has no next when efibootmgr prints no BootNext line (it is not set, or the firmware used it)', () => {
    const state = parseBootState(
      ['BootCurrent: 0002', 'Timeout: 1 seconds', 'BootOrder: 0001,0000', 'Boot0000* Windows Boot Manager'].join('\n'),
    );
    expect(state.next).toBeUndefined();
    expect('next' in state).toBe(false);
    expect(state.entries.map((e) => e.num)).toEqual(['0000']);
  });

  it('ignores a BootNext line that does not hold one 4-digit number', () => {
    expect(parseBootState('BootNext: 12345\nBootOrder: 0001').next).toBeUndefined();
    expect(parseBootState('BootNext:\nBootOrder: 0001').next).toBeUndefined();
    expect(parseBootState('BootNext: 00a3\nBootOrder: 00A3').next).toBe('00A3');
  });
});
