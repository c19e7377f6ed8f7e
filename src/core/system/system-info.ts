// Facts about the target system that several layouts need: os-release, the machine id, the
// BLS entry token and the kernel command line. All read under --root.
import { open } from 'node:fs/promises';
import { readFile, realpath, stat } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { parseInstallConf } from '../install-conf.js';
import { elfMachineArch } from './kernel-image.js';
import type { KernelImageInfo } from '../types.js';

const readText = (file: string) => readFile(file, 'utf8').catch(() => undefined);

/**
 * A file of the target's configuration, read once per run (per context): preflight, the layout's
 * plan and the hooks' environment all ask for the machine id, the entry token and the command line,
 * and nothing in a run changes them.
 */
const targetFiles = new WeakMap<Context, Map<string, Promise<string | undefined>>>();
/** After a hook ran: it may have changed them. */
export function forgetTargetFiles(ctx: Context): void {
  targetFiles.delete(ctx);
}

function readTargetFile(ctx: Context, file: string): Promise<string | undefined> {
  let files = targetFiles.get(ctx);
  if (!files) targetFiles.set(ctx, (files = new Map()));
  const full = ctx.paths.under(file);
  let text = files.get(full);
  if (!text) files.set(full, (text = readText(full)));
  return text;
}

/** os-release of the target: /etc/os-release, else /usr/lib/os-release. */
export async function readOsRelease(ctx: Context): Promise<Record<string, string>> {
  const text = (await readTargetFile(ctx, '/etc/os-release')) ?? (await readTargetFile(ctx, '/usr/lib/os-release')) ?? '';
  return parseInstallConf(text, 'os-release').values;
}

/** MACHINE_ID from the config, else /etc/machine-id (32 hex digits), else undefined. */
export async function readMachineId(ctx: Context): Promise<string | undefined> {
  if (ctx.settings.machineId) return ctx.settings.machineId;
  const id = (await readTargetFile(ctx, '/etc/machine-id'))?.trim();
  return id && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** The BLS entry token: /etc/kernel/entry-token, else the machine id, else IMAGE_ID, else ID. */
export async function readEntryToken(ctx: Context): Promise<string | undefined> {
  const token = (await readTargetFile(ctx, '/etc/kernel/entry-token'))?.trim();
  if (token) return token;
  const machineId = await readMachineId(ctx);
  if (machineId) return machineId;
  const os = await readOsRelease(ctx);
  return os.IMAGE_ID || os.ID || undefined;
}

/** Comments stripped, whitespace folded to single spaces. */
export function foldCmdline(text: string): string {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export interface KernelCmdline {
  cmdline: string;
  source: string;
}

/**
 * The command line for entries that carry one: --cmdline/config, /etc/kernel/cmdline,
 * /usr/lib/kernel/cmdline, then (only on the real root) /proc/cmdline minus BOOT_IMAGE= and initrd=.
 */
export async function readKernelCmdline(ctx: Context): Promise<KernelCmdline | undefined> {
  if (ctx.settings.cmdline !== undefined) return { cmdline: foldCmdline(ctx.settings.cmdline), source: 'settings' };
  for (const file of ['/etc/kernel/cmdline', '/usr/lib/kernel/cmdline']) {
    const text = await readTargetFile(ctx, file);
    if (text !== undefined) return { cmdline: foldCmdline(text), source: ctx.paths.under(file) };
  }
  if (ctx.isHostRoot && !(await inChroot())) {
    const proc = await readText('/proc/cmdline');
    if (proc !== undefined) {
      const kept = foldCmdline(proc)
        .split(' ')
        .filter((arg) => !/^(BOOT_IMAGE|initrd)=/.test(arg));
      return { cmdline: kept.join(' '), source: '/proc/cmdline' };
    }
  }
  return undefined;
}

/**
 * Inside a chroot (a Gentoo install from a live medium), /proc/cmdline is the live medium's, not
 * the target's: PID 1's root differs from ours.
 */
async function inChroot(): Promise<boolean> {
  const [mine, init] = await Promise.all([stat('/').catch(() => undefined), stat('/proc/1/root/').catch(() => undefined)]);
  if (!mine || !init) return false;
  return mine.dev !== init.dev || mine.ino !== init.ino;
}

type Arch = KernelImageInfo['arch'];

const nodeArch: Record<string, Arch> = { x64: 'x86_64', ia32: 'x86', arm64: 'arm64' };

/** The ELF machine of a program, as kinstall names architectures. */
async function elfArch(file: string): Promise<Arch> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return 'unknown';
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, 20, 0);
    if (bytesRead < 20 || header.toString('latin1', 0, 4) !== '\x7fELF') return 'unknown';
    return elfMachineArch(header.readUInt16LE(18));
  } finally {
    await handle.close();
  }
}

/**
 * The architecture of the system the kernel is for: the running one on `/`; under another
 * --root, that of the root's own shell (links followed only while they stay inside the root).
 * `unknown` when the root holds no programs (nothing to compare against).
 */
export async function readTargetArch(ctx: Context): Promise<Arch> {
  if (ctx.isHostRoot) return nodeArch[process.arch] ?? 'unknown';
  const root = await realpath(ctx.paths.root).catch(() => ctx.paths.root);
  for (const program of ['/bin/sh', '/usr/bin/sh', '/usr/bin/env', '/bin/busybox']) {
    const real = await realpath(ctx.paths.under(program)).catch(() => undefined);
    if (!real || !real.startsWith(`${root}${path.sep}`)) continue;
    const arch = await elfArch(real);
    if (arch !== 'unknown') return arch;
  }
  return 'unknown';
}

/** Why a kernel of `image`'s architecture cannot run the target's programs, or undefined. */
export function archMismatch(image: Arch, target: Arch): string | undefined {
  if (image === 'unknown' || target === 'unknown') return undefined;
  const family = (a: Arch) => (a === 'arm64' ? 'arm64' : 'x86');
  if (family(image) !== family(target) || (image === 'x86' && target === 'x86_64')) {
    return `the image is an ${image} kernel, but the target system's programs are ${target}`;
  }
  return undefined;
}
