// Roots for the efistub layout's integration tests: an ESP at /boot/efi, a command line, and the
// efibootmgr fake (test/fakes/efibootmgr) whose firmware holds a Windows entry, with readers for its
// JSON state and the argv it recorded.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { top } from './cli.js';
import type { ScratchRoots, TestRoot } from './root.js';

export const FAKE_EFIBOOTMGR = path.join(top, 'test/fakes/efibootmgr');
/** The efistub options that point the layout at the fake, on /dev/vda partition 1. */
export const FAKE_FIRMWARE_OPTIONS = { efibootmgr: FAKE_EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1 };

export const WINDOWS_ENTRY = {
  label: 'Windows Boot Manager',
  active: true,
  disk: '/dev/vda',
  part: 1,
  loader: '\\EFI\\Microsoft\\Boot\\bootmgfw.efi',
  args: '',
};

/** The fake's JSON state, as tests read it. */
export interface FakeEfiState {
  bootOrder: string[];
  bootNext?: string;
  entries: Record<string, { label: string; loader: string; args: string; disk: string; part: number }>;
}

/** A root with the ESP at /boot/efi, `cmdline` in /etc/kernel/cmdline, os-release NAME=Gentoo, and the firmware holding Windows. */
export function efistubRoot(
  newRoot: ScratchRoots,
  { options = FAKE_FIRMWARE_OPTIONS, cmdline }: { options?: Record<string, unknown>; cmdline: string },
): TestRoot {
  const r = newRoot({ modules: true, config: { efistub: options } });
  mkdirSync(r.at('/boot/efi/EFI'), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), cmdline);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  writeFileSync(
    r.at('/var/fake/efi.json'),
    JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: ['0000'], entries: { '0000': WINDOWS_ENTRY } }),
  );
  return r;
}

/** The environment that gives kinstall's efibootmgr runs the root's fake state. */
export const fakeEfiEnv = (r: TestRoot, extra: Record<string, string> = {}) => ({
  EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json'),
  ...extra,
});

export const fakeFirmware = (r: TestRoot) => JSON.parse(readFileSync(r.at('/var/fake/efi.json'), 'utf8')) as FakeEfiState;

/** Every argv the fake was run with, in order. */
export const efibootmgrCalls = (r: TestRoot) =>
  existsSync(r.at('/var/fake/efi.json.log'))
    ? readFileSync(r.at('/var/fake/efi.json.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[])
    : [];
