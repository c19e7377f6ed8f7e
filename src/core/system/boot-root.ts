// Finds where ESP layouts (bls, uki, efistub) put their files: --esp/BOOT_ROOT, else the first of
// /efi, /boot/efi, /boot that is an ESP or XBOOTLDR. On the real root that means a mounted vfat;
// under another --root (tests, chroots being prepared) a directory that holds EFI/ or loader/.
import { readFile } from '../quick-fs.js';
import path from 'node:path';
import type { Context } from '../context.js';
import { isDirectory } from '../fs.js';

export interface BootRoot {
  /** Host path of the boot root. */
  dir: string;
  /** The same as the target system names it. */
  targetPath: string;
  reason: string;
}

const CANDIDATES = ['/efi', '/boot/efi', '/boot'];

/** Mount points of vfat filesystems, from /proc/self/mounts (real root only). */
async function vfatMounts(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  const mounts = text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[2] === 'vfat');
  return new Set(mounts.map((f) => (f[1] ?? '').replace(/\\040/g, ' ')));
}

async function looksLikeBootRoot(dir: string): Promise<boolean> {
  return (await isDirectory(path.join(dir, 'EFI'))) || (await isDirectory(path.join(dir, 'loader')));
}

export function bootRootCandidates(): string[] {
  return [...CANDIDATES];
}

export async function findBootRoot(ctx: Context): Promise<BootRoot | undefined> {
  const explicit = ctx.settings.bootRoot;
  if (explicit) {
    const dir = ctx.paths.under(explicit);
    return (await isDirectory(dir)) ? { dir, targetPath: explicit, reason: `--esp/BOOT_ROOT ${explicit}` } : undefined;
  }
  const mounts = ctx.isHostRoot ? await vfatMounts() : new Set<string>();
  for (const candidate of CANDIDATES) {
    const dir = ctx.paths.under(candidate);
    if (!(await isDirectory(dir))) continue;
    if (ctx.isHostRoot ? mounts.has(candidate) : await looksLikeBootRoot(dir)) {
      return {
        dir,
        targetPath: candidate,
        reason: ctx.isHostRoot ? `${candidate} is a mounted vfat` : `${candidate} holds EFI/ or loader/`,
      };
    }
  }
  return undefined;
}
