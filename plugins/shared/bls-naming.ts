// How BLS entries and UKIs are named on the boot root, shared by the bls and uki layouts:
// TOKEN-KVER, with boot counting (`+TRIES`, later `+LEFT-DONE`) from /etc/kernel/tries.
import path from 'node:path';
import { quickFs, type Context } from '../../src/core/plugin-api.js';

/** A token becomes a directory and a file name prefix on a FAT filesystem. */
export const validEntryToken = (token: string) => /^[A-Za-z0-9._+-]+$/.test(token) && token !== '.' && token !== '..';

export type TriesResult = { tries?: number; problem?: string };

/** /etc/kernel/tries: absent → no counting; an integer N → `+N`; anything else is a problem to report. */
export async function readBootTries(ctx: Context): Promise<TriesResult> {
  const file = ctx.paths.under('/etc/kernel/tries');
  const text = await quickFs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return {};
  const value = text.trim();
  if (!/^[0-9]{1,9}$/.test(value))
    return {
      problem: `${file} must hold a whole number of boot tries, found "${value}" (write for example 3, or delete the file)`,
    };
  return { tries: Number(value) };
}

/** `TOKEN-KVER.EXT`, or `TOKEN-KVER+N.EXT` with boot counting. */
export function countedFileName(token: string, version: string, ext: string, tries?: number): string {
  return `${token}-${version}${tries === undefined ? '' : `+${tries}`}${ext}`;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The boot counter of a `TOKEN-KVER+LEFT[-DONE].EXT` name; undefined for an uncounted name. */
export function bootCounter(name: string, ext: string): { left: number; done: number } | undefined {
  const match = new RegExp(`\\+(\\d+)(?:-(\\d+))?${escapeRegExp(ext)}$`).exec(name);
  return match ? { left: Number(match[1]), done: Number(match[2] ?? 0) } : undefined;
}

/** Whether a file name is this version's entry, counted or not (`+3`, `+2-1`, `+0-3`). */
export function isVersionFile(name: string, token: string, version: string, ext: string): boolean {
  return new RegExp(`^${escapeRegExp(`${token}-${version}`)}(\\+\\d+(-\\d+)?)?${escapeRegExp(ext)}$`).test(name);
}

/** The version of a `TOKEN-KVER[+N[-M]].EXT` name of this token, else undefined. */
export function versionOfFile(name: string, token: string, ext: string): string | undefined {
  const match = new RegExp(`^${escapeRegExp(`${token}-`)}(.+?)(\\+\\d+(-\\d+)?)?${escapeRegExp(ext)}$`).exec(name);
  return match?.[1];
}

/** This version's files in DIR: counted, uncounted, or half-way through counting. */
export async function versionFiles(dir: string, token: string, version: string, ext: string): Promise<string[]> {
  const names = await quickFs.readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => isVersionFile(n, token, version, ext)).map((n) => path.join(dir, n));
}

/** A trial (`add --try`) is counted with one try: its first boot spends it. */
export const TRIAL_TRIES = 1;

/**
 * Where this version's file goes in DIR, counted when /etc/kernel/tries asks for it (with one try
 * for a trial), and the version's other files there, which it replaces: a reinstall starts boot
 * counting afresh, one file per version, never a second one.
 */
export async function planCountedFile(
  ctx: Context,
  dir: string,
  token: string,
  version: string,
  ext: string,
  trial = false,
): Promise<{ file: string; replaced: string[] }> {
  const tries = trial ? TRIAL_TRIES : (await readBootTries(ctx)).tries;
  const file = path.join(dir, countedFileName(token, version, ext, tries));
  return { file, replaced: (await versionFiles(dir, token, version, ext)).filter((old) => old !== file) };
}
