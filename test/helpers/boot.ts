// Boots what kinstall installed in QEMU (TCG, OVMF or direct kernel boot) and reads the verdict
// from the serial log: the marker line of test/fixtures/boot-marker, or the first sign of failure.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { top } from './cli.js';
import { TRY_MARKER } from './initramfs.js';
import { fastDracutArgs, type TestRoot } from './root.js';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';
/** The 4 MiB build bootSequence runs: its code needs its own vars (the 2 MiB vars do not fit it). */
export const OVMF_CODE_4M = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS_4M = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Debian's ovmf with Secure Boot enforced: the snakeoil test key in PK, KEK and db. */
export const OVMF_CODE_SNAKEOIL = '/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd';
export const OVMF_VARS_SNAKEOIL = '/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd';
/** The snakeoil key (passphrase `snakeoil`) and certificate the snakeoil variables trust. */
export const SNAKEOIL_KEY = '/usr/share/ovmf/PkKek-1-snakeoil.key';
export const SNAKEOIL_CERT = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
export const MARKER_HOOKS = path.join(top, 'test/fixtures/boot-marker/hooks');
/** The command line every boot test gives its kernel: serial console, and a panic ends the VM. */
export const BOOT_CMDLINE = 'console=ttyS0 panic=-1 rd.shell=0';

/** What the marker hook saw in the booted system. */
export interface BootMarker {
  version: string;
  efi: boolean;
  /** EFI variables of systemd-boot and its stub; undefined when not set. */
  loaderEntry?: string;
  loaderInfo?: string;
  stubInfo?: string;
  cmdline: string;
}

export type FailureReason = 'kernel-panic' | 'initramfs-error' | 'loader-error' | 'no-marker' | 'timeout';

export type Judgement = { booted: true; marker: BootMarker } | { booted: false; reason: FailureReason; evidence: string };
export type BootVerdict = Judgement & { seconds: number; log: string };

export interface BootOptions {
  /** A FAT image the firmware boots from (OVMF). */
  esp?: string;
  /** Direct kernel boot without firmware, as the compat layout is booted. */
  direct?: { kernel: string; initrd?: string; append: string };
  /** Where the serial log goes; OVMF's variable store is copied beside it. */
  log: string;
  timeoutSeconds?: number;
  /** Reaching the UEFI shell is expected (startup.nsh starts the kernel), not a loader failure. */
  shellExpected?: boolean;
  /** Boot the snakeoil firmware with Secure Boot enforced (SMM, secure flash): only snakeoil-signed images start. */
  secureBoot?: boolean;
}

const MARKER =
  /KINSTALL-BOOT-MARKER version=(\S+) efi=(yes|no) loader_entry=(\S+) loader_info=(\S+) stubinfo=(\S+) cmdline=([^\r\n]*)\r?\n/;

/**
 * Failures in the order they are told apart; each names the firmware, loader or kernel message.
 * Loader failures count only before the kernel's banner, so a kernel's own "Failed to" is not one.
 */
const FAILURES: Array<{ reason: FailureReason; pattern: RegExp; unlessShell?: boolean }> = [
  { reason: 'kernel-panic', pattern: /Kernel panic - not syncing[^\r\n]*/ },
  { reason: 'initramfs-error', pattern: /Initramfs unpacking failed[^\r\n]*|Could not boot\.|Entering emergency mode[^\r\n]*/ },
  // systemd as the initramfs's init on a kernel it cannot run on (no cgroups): it freezes, no marker follows.
  { reason: 'initramfs-error', pattern: /Failed to mount API filesystems[^\r\n]*|Freezing execution[^\r\n]*/ },
  // systemd-boot ("Error preparing initrd: Not Found"), OVMF's boot manager, GRUB ("error: file ... not found").
  {
    reason: 'loader-error',
    pattern: /Error (?:preparing|loading|opening|starting)[^\r\n]*|Failed to (?:load|start|execute)[^\r\n]*/,
  },
  { reason: 'loader-error', pattern: /BdsDxe: failed to start[^\r\n]*|EFI stub: ERROR[^\r\n]*/ },
  { reason: 'loader-error', pattern: /(?:^|[\r\n])error: [^\r\n]*/ },
  // systemd-boot shows its menu with timeout 0 only when it has nothing to boot by default.
  { reason: 'loader-error', pattern: /Reboot Into Firmware Interface/ },
  {
    reason: 'loader-error',
    pattern: /is not recognized as an internal or external command[^\r\n]*|Command Error Status[^\r\n]*/,
  },
  { reason: 'loader-error', pattern: /BdsDxe: starting Boot[0-9A-F]+ "EFI Internal Shell"/, unlessShell: true },
];

const efiValue = (value: string | undefined) => (value === undefined || value === '-' ? undefined : value.replace(/_/g, ' '));

export function parseMarker(log: string): BootMarker | undefined {
  const m = MARKER.exec(log);
  if (!m) return undefined;
  return {
    version: m[1] ?? '',
    efi: m[2] === 'yes',
    loaderEntry: efiValue(m[3]),
    loaderInfo: efiValue(m[4]),
    stubInfo: efiValue(m[5]),
    cmdline: (m[6] ?? '').trim(),
  };
}

/** The verdict a log gives so far: booted, failed, or undefined while the VM is still on its way. */
export function judgeLog(log: string, shellExpected = false): Judgement | undefined {
  const marker = parseMarker(log);
  if (marker) return { booted: true, marker };
  // Failures are judged on whole lines: the serial log is read while the line is still being written.
  const complete = log.slice(0, Math.max(log.lastIndexOf('\n'), log.lastIndexOf('\r')) + 1);
  const beforeKernel = complete.split(/Linux version \d/)[0] ?? '';
  for (const failure of FAILURES) {
    if (failure.unlessShell && shellExpected) continue;
    const found = failure.pattern.exec(failure.reason === 'loader-error' ? beforeKernel : complete);
    if (found) return { booted: false, reason: failure.reason, evidence: found[0].trim() };
  }
  return undefined;
}

function qemuArgs(options: BootOptions): string[] {
  const args = [
    '-machine',
    'q35',
    '-accel',
    'tcg',
    '-m',
    '1024',
    '-nic',
    'none',
    '-no-reboot',
    '-display',
    'none',
    '-serial',
    `file:${options.log}`,
  ];
  if (options.direct) {
    const { kernel, initrd, append } = options.direct;
    return [...args, '-kernel', kernel, ...(initrd ? ['-initrd', initrd] : []), '-append', append];
  }
  if (!options.esp) throw new Error('bootVm needs an ESP image or a direct kernel');
  const vars = `${options.log}.OVMF_VARS.fd`;
  copyFileSync(options.secureBoot ? OVMF_VARS_SNAKEOIL : OVMF_VARS, vars);
  const secure = ['-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on'];
  return [
    ...args,
    ...(options.secureBoot ? secure : []),
    '-drive',
    `if=pflash,format=raw,readonly=on,file=${options.secureBoot ? OVMF_CODE_SNAKEOIL : OVMF_CODE}`,
    '-drive',
    `if=pflash,format=raw,file=${vars}`,
    '-drive',
    `format=raw,file=${options.esp}`,
  ];
}

/** Boots once and returns the verdict; QEMU is always killed before this returns. */
export async function bootVm(options: BootOptions): Promise<BootVerdict> {
  const limit = (options.timeoutSeconds ?? 120) * 1000;
  writeFileSync(options.log, '');
  const started = Date.now();
  const vm = spawn('qemu-system-x86_64', qemuArgs(options), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  vm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => vm.on('close', () => resolve()));
  void exit.then(() => (exited = true));
  const read = () => (existsSync(options.log) ? readFileSync(options.log, 'latin1') : '');
  try {
    for (;;) {
      const wasExited = exited;
      const log = read();
      const seconds = (Date.now() - started) / 1000;
      const verdict = judgeLog(log, options.shellExpected);
      if (verdict) return { ...verdict, seconds, log };
      // qemu has ended: its last line is as complete as it will get.
      const last = wasExited ? judgeLog(`${log}\n`, options.shellExpected) : undefined;
      if (last) return { ...last, seconds, log };
      if (wasExited)
        return {
          booted: false,
          reason: 'no-marker',
          evidence: `qemu exited (${vm.exitCode ?? vm.signalCode}) without a marker ${stderr.trim()}`.trim(),
          seconds,
          log,
        };
      if (Date.now() - started > limit)
        return { booted: false, reason: 'timeout', evidence: `no marker after ${limit / 1000} s`, seconds, log };
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    if (!exited) vm.kill('SIGKILL');
    await exit;
  }
}

/** Dracut as boot tests run it: the fast generic build plus the marker hooks and efivarfs. */
export function markerDracutArgs(root: TestRoot): string[] {
  return [
    ...fastDracutArgs(root.at('/etc/dracut-empty.conf.d')),
    '--add-drivers',
    'efivarfs',
    '--include',
    MARKER_HOOKS,
    '/lib/dracut/hooks',
  ];
}

/** The marker hooks as the initramfs must hold them (checked with lsinitrd before booting). */
export const MARKER_HOOK_FILES = [
  'usr/lib/dracut/hooks/cmdline/99-kinstall-rootok.sh',
  'usr/lib/dracut/hooks/pre-mount/99-kinstall-marker.sh',
];

/** A short description of a verdict, for assertion messages. */
export function describeVerdict(verdict: BootVerdict): string {
  // Firmware and loaders paint the screen with ANSI escapes; without them the tail is readable.
  // eslint-disable-next-line no-control-regex
  const tail = verdict.log.replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, ' ').slice(-1500);
  return verdict.booted
    ? `booted in ${verdict.seconds.toFixed(1)} s`
    : `${verdict.reason}: ${verdict.evidence} after ${verdict.seconds.toFixed(1)} s\n${tail}`;
}

// Several boots in one QEMU, as a machine reboots: the firmware, the disk and the EFI variables
// persist, so a panic (with panic=N on the kernel's command line) reboots into whatever the firmware
// and the loader choose next. Use with boot-disk.ts and efi-vars.ts:
//
//   const disk = buildBootDisk({ from: root.at('/efi'), out: scratch(root, 'disk.img') });
//   const vars = freshVars(scratch(root, 'vars.fd'));
//   writeFakeStateToVars(state, vars);
//   const run = await bootSequence({ disk, vars, log: scratch(root, 'serial.log'),
//     until: (boots) => boots.length === 2 && boots[1]!.reachedMarker });
//   expect(run.boots.map((b) => [b.tag, b.panicked]), describeSequence(run)).toEqual([['B', true], ['A', false]]);
//
// A reboot after the test changed something (kinstall confirm on the disk's ESP read back, the
// vars rewritten) is another bootSequence on the same disk and vars, with a new log. The boot's
// firmware option (`bootOption`) is what efibootmgr would show as BootCurrent.

/** One kernel's run inside a sequence: from its firmware's lines to the next boot's. */
export interface Boot {
  /** The kernel's command line, from its `Command line:` line (with the loader's initrd= when it adds one). */
  cmdline: string;
  /** The value of kinstall.tag= on the command line, when there is one. */
  tag?: string;
  /** The firmware boot option that started it (`BdsDxe: starting Boot0002 …`), when OVMF said. */
  bootOption?: string;
  /** The kernel panicked (`Kernel panic - not syncing`). */
  panicked: boolean;
  /** The marker line (TRY_MARKER unless told otherwise) is in this boot's part of the log. */
  reachedMarker: boolean;
  /** This boot's part of the serial log. */
  log: string;
}

export interface BootSequenceOptions {
  /** A raw disk image (buildBootDisk); the firmware and the loaders may write to it. */
  disk: string;
  /** This test's own copy of OVMF_VARS_4M.fd (freshVars), written by the firmware as it boots. */
  vars: string;
  /** The serial log, written from the start. */
  log: string;
  /** Asked after every look at the log: true ends the sequence (QEMU is killed). */
  until: (boots: Boot[]) => boolean;
  /** 300 s unless told: a boot under TCG costs 7–9 s of firmware, two or three times that under load. */
  timeoutSeconds?: number;
  /** The line that shows a boot came up; TRY_MARKER unless told. */
  marker?: string | RegExp;
}

export interface BootSequenceResult {
  boots: Boot[];
  /** Why it ended: `until` said so, the time ran out, or QEMU exited by itself (an error: see `evidence`). */
  ended: 'until' | 'timeout' | 'exited';
  evidence?: string;
  seconds: number;
  log: string;
}

/** A fresh copy of OVMF's 4 MiB variable store: the firmware's NVRAM for one test. */
export function freshVars(file: string): string {
  copyFileSync(OVMF_VARS_4M, file);
  return file;
}

/** Splits a serial log into boots: each kernel's `Command line:` starts one; the firmware's lines before it belong to it. */
export function splitBoots(log: string, marker: string | RegExp = TRY_MARKER): Boot[] {
  // Only whole lines: the log is read while QEMU writes it.
  const complete = log.slice(0, Math.max(log.lastIndexOf('\n'), log.lastIndexOf('\r')) + 1);
  const starts = [...complete.matchAll(/Command line: ([^\r\n]*)/g)].map((m) => ({ at: m.index, cmdline: (m[1] ?? '').trim() }));
  // A boot's part starts at the firmware's first BdsDxe line after the previous kernel's command line.
  const partStarts = starts.map((start, i) => {
    const previous = starts[i - 1];
    if (!previous) return 0;
    const firmware = complete.slice(previous.at, start.at).search(/BdsDxe: /);
    return firmware < 0 ? start.at : previous.at + firmware;
  });
  return starts.map((start, i) => {
    const end = partStarts[i + 1] ?? log.length;
    const kernelPart = log.slice(start.at, end);
    const firmwarePart = log.slice(partStarts[i], start.at);
    const option = [...firmwarePart.matchAll(/BdsDxe: starting Boot([0-9A-F]{4})/g)].pop();
    return {
      cmdline: start.cmdline,
      tag: /(?:^|\s)kinstall\.tag=(\S+)/.exec(start.cmdline)?.[1],
      bootOption: option?.[1],
      panicked: /Kernel panic - not syncing/.test(kernelPart),
      reachedMarker: typeof marker === 'string' ? kernelPart.includes(marker) : marker.test(kernelPart),
      log: log.slice(partStarts[i], end),
    };
  });
}

/**
 * Boots the disk with OVMF (q35, TCG, 4 MiB code read-only, the test's vars writable) without
 * -no-reboot, so reboots stay in this QEMU; ends when `until(boots)` says so or at the timeout.
 * QEMU is always killed before this returns.
 */
export async function bootSequence(options: BootSequenceOptions): Promise<BootSequenceResult> {
  if (statSync(options.vars).size !== statSync(OVMF_VARS_4M).size)
    throw new Error(`${options.vars} is not a copy of ${OVMF_VARS_4M} (freshVars makes one)`);
  const limit = (options.timeoutSeconds ?? 300) * 1000;
  writeFileSync(options.log, '');
  const args = [
    ...['-machine', 'q35', '-accel', 'tcg', '-m', '1024', '-nic', 'none', '-display', 'none'],
    ...['-serial', `file:${options.log}`],
    ...['-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE_4M}`],
    ...['-drive', `if=pflash,format=raw,file=${options.vars}`],
    ...['-drive', `format=raw,file=${options.disk}`],
  ];
  const started = Date.now();
  const vm = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  vm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => vm.on('close', () => resolve()));
  void exit.then(() => (exited = true));
  const result = (ended: BootSequenceResult['ended'], evidence?: string): BootSequenceResult => {
    const log = readFileSync(options.log, 'latin1');
    return { boots: splitBoots(log, options.marker), ended, evidence, seconds: (Date.now() - started) / 1000, log };
  };
  try {
    for (;;) {
      const wasExited = exited;
      const { boots } = result('until');
      if (options.until(boots)) return result('until');
      if (wasExited) return result('exited', `qemu exited (${vm.exitCode ?? vm.signalCode}) ${stderr.trim()}`.trim());
      if (Date.now() - started > limit) return result('timeout', `until() not met after ${limit / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    if (!exited) vm.kill('SIGKILL');
    await exit;
  }
}

/** The boots in one line each, then the end of the log: for assertion messages. */
export function describeSequence(run: BootSequenceResult): string {
  const boots = run.boots.map((b, i) => {
    const outcome = [b.panicked ? 'panicked' : '', b.reachedMarker ? 'reached the marker' : ''].filter(Boolean).join(', ');
    return `boot ${i + 1}: ${b.bootOption ? `Boot${b.bootOption} ` : ''}tag=${b.tag ?? '-'} ${outcome || 'no panic, no marker'}; cmdline: ${b.cmdline}`;
  });
  // eslint-disable-next-line no-control-regex
  const tail = run.log.replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, ' ').slice(-2000);
  const head = `${run.boots.length} boot(s), ended (${run.ended}${run.evidence ? `: ${run.evidence}` : ''}) after ${run.seconds.toFixed(1)} s`;
  return [head, ...boots, '--- end of the serial log ---', tail].join('\n');
}
