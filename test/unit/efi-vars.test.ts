// The EDK2 variable store helper on copies of Debian's real OVMF vars files: records as the
// firmware lays them out, replace and delete by state bits, a full store, the Boot#### load option
// byte for byte, and the bridge to the efibootmgr fake's state as kinstall reads it back.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBootState } from '../../plugins/layout-efistub/firmware.js';
import { top } from '../helpers/cli.js';
import {
  EFI_GLOBAL_VARIABLE,
  NV_BS_RT,
  decodeBootOrder,
  decodeLoadOption,
  deleteVariable,
  encodeBootOrder,
  encodeLoadOption,
  guidBytes,
  readVariable,
  readVariables,
  readVarsToFakeState,
  setVariable,
  writeFakeStateToVars,
  type FakeState,
} from '../helpers/efi-vars.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-efivars-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let copies = 0;
const fresh = (source: string) => {
  const file = path.join(dir, `${(copies += 1)}-${path.basename(source)}`);
  copyFileSync(source, file);
  return file;
};
const ucs2 = (text: string) => Buffer.from(text, 'utf16le');
const global = (name: string, data: Buffer) => ({ name, guid: EFI_GLOBAL_VARIABLE, attributes: NV_BS_RT, data });
/** Where the first record starts in both files: FV header 0x48 + the 28-byte store header, aligned. */
const FIRST_RECORD = 0x64;
/** An authenticated record header: 60 bytes, then the name, then the data. */
const HEADER = 60;

describe.each([
  ['OVMF_VARS_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd', 0x3ffb8],
  ['OVMF_VARS.fd', '/usr/share/OVMF/OVMF_VARS.fd', 0xdfb8],
])('the variable store in a copy of %s', (_name, source, storeSize) => {
  it('starts empty, and a set variable is a VAR_ADDED record the firmware can read', () => {
    const vars = fresh(source);
    expect(readVariables(vars)).toEqual([]);
    setVariable(vars, global('BootOrder', encodeBootOrder(['0001', '0002'])));
    expect(readVariables(vars)).toEqual([global('BootOrder', Buffer.from([1, 0, 2, 0]))]);
    const raw = readFileSync(vars);
    expect(raw.readUInt32LE(0x48 + 16)).toBe(storeSize);
    expect(raw.readUInt16LE(FIRST_RECORD)).toBe(0x55aa);
    expect(raw[FIRST_RECORD + 2]).toBe(0x3f);
    expect(raw.readUInt32LE(FIRST_RECORD + 4)).toBe(7);
    expect(raw.readUInt32LE(FIRST_RECORD + 36)).toBe(20); // NameSize: "BootOrder\0" in UCS-2
    expect(raw.readUInt32LE(FIRST_RECORD + 40)).toBe(4); // DataSize
    expect(raw.subarray(FIRST_RECORD + 44, FIRST_RECORD + 60)).toEqual(guidBytes(EFI_GLOBAL_VARIABLE));
    expect(raw.toString('hex', FIRST_RECORD + 44, FIRST_RECORD + 52)).toBe('61dfe48bca93d211');
    expect(raw.subarray(FIRST_RECORD + HEADER, FIRST_RECORD + HEADER + 20)).toEqual(ucs2('BootOrder\0'));
    expect(raw.subarray(FIRST_RECORD + HEADER + 20, FIRST_RECORD + HEADER + 24)).toEqual(Buffer.from([1, 0, 2, 0]));
    // The next record's place (84 bytes on, already aligned) is still free space.
    expect(raw.subarray(FIRST_RECORD + 84, FIRST_RECORD + 200).every((b) => b === 0xff)).toBe(true);
  });

  it('replaces a variable: the old record deleted (0x3D), the new one appended 4-byte aligned', () => {
    const vars = fresh(source);
    setVariable(vars, global('BootNext', Buffer.from([2, 0, 9]))); // 3 bytes of data: the next record pads
    setVariable(vars, global('BootNext', Buffer.from([1, 0])));
    expect(readVariables(vars)).toEqual([global('BootNext', Buffer.from([1, 0]))]);
    const raw = readFileSync(vars);
    expect(raw[FIRST_RECORD + 2]).toBe(0x3d);
    const second = FIRST_RECORD + 84; // 60 + 18 ("BootNext\0") + 3 = 81, aligned to 84
    expect(raw.readUInt16LE(second)).toBe(0x55aa);
    expect(raw[second + 2]).toBe(0x3f);
    expect([...raw.subarray(FIRST_RECORD + 81, second)]).toEqual([0xff, 0xff, 0xff]);
  });

  it('reads a record in deleted transition (0x3E) as live unless a VAR_ADDED copy follows', () => {
    const vars = fresh(source);
    setVariable(vars, global('Timeout', Buffer.from([5, 0])));
    const raw = readFileSync(vars);
    raw[FIRST_RECORD + 2] = 0x3e;
    writeFileSync(vars, raw);
    expect(readVariable(vars, 'Timeout')).toEqual(Buffer.from([5, 0]));
    setVariable(vars, global('Timeout', Buffer.from([3, 0])));
    expect(readVariables(vars)).toEqual([global('Timeout', Buffer.from([3, 0]))]);
    expect(readFileSync(vars)[FIRST_RECORD + 2]).toBe(0x3c);
  });

  it('deletes a variable by its state alone, and says when there was none', () => {
    const vars = fresh(source);
    const other = { name: 'Boot0001', guid: '01234567-89ab-cdef-0123-456789abcdef', attributes: 3, data: Buffer.from('x') };
    setVariable(vars, global('Boot0001', Buffer.from('a')));
    setVariable(vars, other);
    expect(deleteVariable(vars, 'Boot0001')).toBe(true);
    expect(deleteVariable(vars, 'Boot0001')).toBe(false);
    expect(readVariables(vars)).toEqual([other]);
    expect(readFileSync(vars)[FIRST_RECORD + 2]).toBe(0x3d);
  });

  it('refuses a variable the free space cannot hold and leaves the file as it was', () => {
    const vars = fresh(source);
    const half = Math.floor(storeSize / 2);
    setVariable(vars, global('Big1', Buffer.alloc(half, 1)));
    const before = readFileSync(vars);
    expect(() => setVariable(vars, global('Big1', Buffer.alloc(half, 2)))).toThrow(
      /variable store full: Big1 needs \d+ bytes, \d+ free/,
    );
    expect(readFileSync(vars).equals(before)).toBe(true);
    expect(readVariable(vars, 'Big1')).toEqual(Buffer.alloc(half, 1));
  });
});

describe('load options, BootOrder and BootNext', () => {
  const option = { label: 'A', loader: '\\EFI\\T\\a.efi', args: 'x=1' };
  const handMade = Buffer.from(
    [
      '01000000', // LOAD_OPTION_ACTIVE
      '2200', // FilePathListLength: 4 + 26 + 4
      '41000000', // "A\0"
      '04041e00', // media, file path, length 30
      '5c00450046004900', // \EFI
      '5c0054005c006100', // \T\a
      '2e00650066006900', // .efi
      '0000', // the path's NUL
      '7fff0400', // end of the device path
      '78003d003100', // x=1
    ].join(''),
    'hex',
  );

  it('encodes a Boot#### byte for byte as EFI_LOAD_OPTION with the short file path', () => {
    expect(encodeLoadOption(option)).toEqual(handMade);
    expect(encodeLoadOption({ ...option, active: false }).readUInt32LE(0)).toBe(0);
    expect(() => encodeLoadOption({ ...option, loader: 'EFI/T/a.efi' })).toThrow(/EFI path/);
  });

  it('decodes it back, and an OVMF entry without a file path has no loader', () => {
    expect(decodeLoadOption(handMade)).toMatchObject({ ...option, active: true, nodes: ['4/4', '127/255'] });
    // OVMF's UiApp: Fv(...)/FvFile(...) and 16 bytes of binary optional data.
    const fvNode = (subtype: number) => Buffer.concat([Buffer.from([4, subtype, 20, 0]), Buffer.alloc(16, 0xab)]);
    const devicePath = Buffer.concat([fvNode(7), fvNode(6), Buffer.from([0x7f, 0xff, 4, 0])]);
    const head = Buffer.from([9, 0, 0, 0, devicePath.length, 0]);
    const uiApp = Buffer.concat([head, ucs2('UiApp\0'), devicePath, Buffer.alloc(16, 0xcd)]);
    expect(decodeLoadOption(uiApp)).toEqual({
      label: 'UiApp',
      loader: undefined,
      args: '',
      active: true,
      nodes: ['4/7', '4/6', '127/255'],
      optionalData: Buffer.alloc(16, 0xcd),
    });
  });

  it('BootOrder and BootNext are u16 little-endian boot numbers', () => {
    expect(encodeBootOrder(['0001', '000a', '1234'])).toEqual(Buffer.from([1, 0, 0x0a, 0, 0x34, 0x12]));
    expect(decodeBootOrder(Buffer.from([1, 0, 0x0a, 0, 0x34, 0x12]))).toEqual(['0001', '000A', '1234']);
    expect(() => encodeBootOrder(['12345'])).toThrow(/boot number/);
  });
});

describe('the efibootmgr fake state through a vars file', () => {
  const state: FakeState = {
    bootCurrent: '0001',
    timeout: 1,
    bootOrder: ['0001', '0002'],
    entries: {
      '0001': {
        label: 'Gentoo 6.1.1',
        active: true,
        disk: '/dev/sda',
        part: 1,
        loader: '\\EFI\\Gentoo\\a.efi',
        args: 'root=/dev/sda2 kinstall.tag=A',
      },
      '0002': {
        label: 'Gentoo 6.1.2',
        active: true,
        disk: '/dev/sda',
        part: 1,
        loader: '\\EFI\\Gentoo\\b+1.efi',
        args: 'initrd=\\EFI\\Gentoo\\b.img panic=1',
      },
    },
    bootNext: '0002',
  };

  it('writes every entry, BootOrder and BootNext, and reads the same state back', () => {
    const vars = fresh('/usr/share/OVMF/OVMF_VARS_4M.fd');
    writeFakeStateToVars(state, vars);
    expect(readVariables(vars).map((v) => v.name)).toEqual(['Boot0001', 'Boot0002', 'BootOrder', 'BootNext']);
    expect(readVariable(vars, 'BootNext')).toEqual(Buffer.from([2, 0]));
    expect(readVarsToFakeState(vars, { bootCurrent: '0001' })).toEqual(state);
  });

  it('keeps the firmware entries, deletes what the state dropped, and kinstall still parses the fake', () => {
    const vars = fresh('/usr/share/OVMF/OVMF_VARS_4M.fd');
    const devicePath = Buffer.concat([Buffer.from([4, 6, 20, 0]), Buffer.alloc(16, 0xab), Buffer.from([0x7f, 0xff, 4, 0])]);
    const uiApp = Buffer.concat([Buffer.from([9, 0, 0, 0, devicePath.length, 0]), ucs2('UiApp\0'), devicePath]);
    setVariable(vars, global('Boot0000', uiApp));
    setVariable(vars, global('Timeout', Buffer.from([3, 0])));
    writeFakeStateToVars({ ...state, bootOrder: ['0001', '0002', '0000'] }, vars);
    const read = readVarsToFakeState(vars);
    expect(read.entries['0000']).toEqual({ label: 'UiApp', active: true, disk: '/dev/sda', part: 1, loader: '', args: '' });
    expect(read.timeout).toBe(3);
    // efibootmgr -B 0002 and the firmware having used BootNext: both gone from the file.
    const kept = Object.fromEntries(Object.entries(read.entries).filter(([num]) => num !== '0002'));
    writeFakeStateToVars({ ...read, entries: kept, bootOrder: ['0001', '0000'], bootNext: undefined }, vars);
    expect(readVariable(vars, 'Boot0002')).toBeUndefined();
    expect(readVariable(vars, 'BootNext')).toBeUndefined();
    expect(readVariable(vars, 'Boot0000')).toEqual(uiApp);
    expect(readVariable(vars, 'Timeout')).toEqual(Buffer.from([3, 0]));

    const fakeState = path.join(dir, 'fake-state.json');
    writeFileSync(fakeState, JSON.stringify(readVarsToFakeState(vars)));
    const shown = execFileSync(path.join(top, 'test/fakes/efibootmgr'), ['-v'], {
      encoding: 'utf8',
      env: { ...process.env, EFIBOOTMGR_FAKE_STATE: fakeState },
    });
    const parsed = parseBootState(shown);
    expect(parsed.order).toEqual(['0001', '0000']);
    expect(parsed.entries.map((e) => [e.num, e.label, e.loader || undefined, e.args])).toEqual([
      ['0000', 'UiApp', undefined, ''],
      ['0001', 'Gentoo 6.1.1', '\\EFI\\Gentoo\\a.efi', 'root=/dev/sda2 kinstall.tag=A'],
    ]);
  });
});
