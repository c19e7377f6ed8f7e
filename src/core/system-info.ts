// Facts about the target system that several layouts need: os-release, the machine id, the
// BLS entry token and the kernel command line. All read under --root.
import { readFile, stat } from 'node:fs/promises';
import type { Context } from './context.js';
import { parseInstallConf } from './install-conf.js';

const readText = (file: string) => readFile(file, 'utf8').catch(() => undefined);

/** os-release of the target: /etc/os-release, else /usr/lib/os-release. */
export async function readOsRelease(ctx: Context): Promise<Record<string, string>> {
  const text = (await readText(ctx.paths.under('/etc/os-release'))) ?? (await readText(ctx.paths.under('/usr/lib/os-release'))) ?? '';
  return parseInstallConf(text, 'os-release').values;
}

/** MACHINE_ID from the config, else /etc/machine-id (32 hex digits), else undefined. */
export async function readMachineId(ctx: Context): Promise<string | undefined> {
  if (ctx.settings.machineId) return ctx.settings.machineId;
  const id = (await readText(ctx.paths.under('/etc/machine-id')))?.trim();
  return id && /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** The BLS entry token: /etc/kernel/entry-token, else the machine id, else IMAGE_ID, else ID. */
export async function readEntryToken(ctx: Context): Promise<string | undefined> {
  const token = (await readText(ctx.paths.under('/etc/kernel/entry-token')))?.trim();
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
    const text = await readText(ctx.paths.under(file));
    if (text !== undefined) return { cmdline: foldCmdline(text), source: ctx.paths.under(file) };
  }
  if (ctx.isHostRoot && !(await inChroot())) {
    const proc = await readText('/proc/cmdline');
    if (proc !== undefined) {
      const kept = foldCmdline(proc).split(' ').filter((arg) => !/^(BOOT_IMAGE|initrd)=/.test(arg));
      return { cmdline: kept.join(' '), source: '/proc/cmdline' };
    }
  }
  return undefined;
}

/**
 * Inside a chroot (a Gentoo install from a live medium), /proc/cmdline is the live medium's, not
 * the target's: PID 1's root differs from ours.
 */
export async function inChroot(): Promise<boolean> {
  const [mine, init] = await Promise.all([stat('/').catch(() => undefined), stat('/proc/1/root/').catch(() => undefined)]);
  if (!mine || !init) return false;
  return mine.dev !== init.dev || mine.ino !== init.ino;
}
