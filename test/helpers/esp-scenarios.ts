// What the ESP scenarios (faults, crashes, hostile inputs) share, whether the ESP is a plain
// directory or a mounted FAT image: the target system's files, the efistub firmware fake, and the
// one-coded-error-line assertion.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { top, type CliResult } from './cli.js';
import type { TestRoot } from './root.js';

export const MACHINE_ID = '0123456789abcdef0123456789abcdef';
export const EFIBOOTMGR = path.join(top, 'test/fakes/efibootmgr');

/** What bls, uki and efistub need besides the ESP: a command line, a machine id, os-release. */
export function espBasics(r: TestRoot, cmdline = 'root=/dev/vda1 ro'): void {
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), `${cmdline}\n`);
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
}

/** The efistub section of a config: the efibootmgr fake, EFI variables present, the ESP on /dev/vda1. */
export const efistubConfig = (options: Record<string, unknown> = {}) => ({
  efistub: { efibootmgr: EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1, ...options },
});

/** The fake firmware's state (/var/fake/efi.json) holding Windows only, in the fake's own format. */
export function writeFirmware(r: TestRoot): void {
  const windows = {
    label: 'Windows Boot Manager',
    active: true,
    disk: '/dev/vda',
    part: 1,
    loader: '\\EFI\\Microsoft\\Boot\\bootmgfw.efi',
    args: '',
  };
  mkdirSync(r.at('/var/fake'), { recursive: true });
  writeFileSync(
    r.at('/var/fake/efi.json'),
    `${JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: ['0000'], entries: { '0000': windows } }, null, 2)}\n`,
  );
}

/** The environment for the efibootmgr fake; `failOn` is the option whose run fails. */
export const efiEnv = (r: TestRoot, failOn?: string) => ({
  EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json'),
  ...(failOn ? { EFIBOOTMGR_FAKE_FAIL: failOn } : {}),
});

/** Every argv the efibootmgr fake was run with. */
export const efiCalls = (r: TestRoot) =>
  readFileSync(r.at('/var/fake/efi.json.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as string[]);

/** Exactly one `kinstall: CODE: …` line on stderr, matching the pattern; the exit code. */
export function expectError(result: CliResult, exitCode: number, pattern: RegExp): void {
  expect(result.exitCode, result.stderr).toBe(exitCode);
  const errors = result.stderr.split('\n').filter((line) => /^kinstall: E[A-Z]+: /.test(line));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
}
