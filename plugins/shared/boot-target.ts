// Where the bls and uki layouts put a kernel: the boot root (ESP or XBOOTLDR) and the entry token,
// with the preflight problems both layouts share (no boot root or one not mounted, no token, bad
// tries, no command line).
import path from 'node:path';
import {
  bootRootCandidates,
  checkBootRootMounted,
  checkWritableDir,
  findBootRoot,
  readEntryToken,
  readKernelCmdline,
  type BootRoot,
  type Context,
} from '../../src/core/plugin-api.js';
import { readBootTries, validEntryToken } from './bls-naming.js';

export interface BootTarget {
  boot: BootRoot;
  token: string;
}

/** The places tried for the boot root, for error messages. */
export const bootRootPlaces = (ctx: Context) =>
  ctx.settings.bootRoot
    ? `--esp/BOOT_ROOT ${ctx.paths.under(ctx.settings.bootRoot)}`
    : bootRootCandidates()
        .map((c) => ctx.paths.under(c))
        .join(', ');

/** Undefined when there is no boot root or no usable token (preflight says which). */
export async function findBootTarget(ctx: Context): Promise<BootTarget | undefined> {
  const boot = await findBootRoot(ctx);
  const token = await readEntryToken(ctx);
  if (!boot || !token || !validEntryToken(token)) return undefined;
  return { boot, token };
}

/** Plan and remove may run without preflight (remove has none): fail with the same reason. */
export async function requireBootTarget(ctx: Context): Promise<BootTarget> {
  const target = await findBootTarget(ctx);
  if (!target) throw new Error((await bootTargetProblems(ctx))[0] ?? 'no boot root');
  return target;
}

export async function bootTargetProblems(ctx: Context): Promise<string[]> {
  const problems: string[] = [];
  const boot = await findBootRoot(ctx);
  if (!boot)
    problems.push(
      `no boot root found (tried ${bootRootPlaces(ctx)}): mount the ESP or XBOOTLDR partition there, or pass --esp DIR`,
    );
  else problems.push(...(await checkWritableDir(boot.dir, 'boot root')));
  // Found or not: an ESP in fstab but not mounted is what the user has to fix first.
  problems.push(...(await checkBootRootMounted(ctx, boot, 'boot root')));
  const token = await readEntryToken(ctx);
  if (!token) {
    problems.push(
      `no entry token: create ${ctx.paths.under('/etc/kernel/entry-token')} or ${ctx.paths.under('/etc/machine-id')}, or set ID in os-release`,
    );
  } else if (!validEntryToken(token)) {
    problems.push(
      `entry token "${token}" is not a plain file name (letters, digits, . _ + -): fix ${ctx.paths.under('/etc/kernel/entry-token')}`,
    );
  }
  const { problem } = await readBootTries(ctx);
  if (problem) problems.push(problem);
  return problems;
}

export async function cmdlineProblems(ctx: Context, why: string): Promise<string[]> {
  if (await readKernelCmdline(ctx)) return [];
  return [
    `no kernel command line ${why}: create ${ctx.paths.under('/etc/kernel/cmdline')} (for example "root=UUID=... ro") or pass --cmdline`,
  ];
}

/** A boot-root path as the loader sees it: relative to the boot root, `/`-separated, leading `/`. */
export const loaderPath = (boot: BootRoot, file: string) => `/${path.relative(boot.dir, file).split(path.sep).join('/')}`;
