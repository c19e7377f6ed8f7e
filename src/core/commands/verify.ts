// `kinstall verify VERSION`: boots the installed kernel and initramfs in QEMU (direct kernel boot,
// no disk) and reports whether the initramfs reached a milestone of a working init (the verdict is
// console-judge.ts's). It checks the kernel and the initramfs only, not the real root device,
// the boot loader or the firmware.
import { readFile, writeFile } from 'node:fs/promises';
import { file as tmpFile } from 'tmp-promise';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { inspectKernelImage } from '../system/kernel-image.js';
import { listKernels } from './list.js';
import { ConsoleJudge, plainConsoleLine, type Verdict } from './console-judge.js';
import { bootDirect } from './qemu.js';

export type { Verdict } from './console-judge.js';

export interface VerifyResult {
  version: string;
  verdict: Verdict;
  /** The console line that decided the verdict: the milestone reached, or the sign of the failure. */
  cause?: string;
  /** For pass: what the initramfs reached, in words. */
  milestone?: string;
  /** The last relevant console lines (qemu's own errors when the console stayed silent). */
  lines: string[];
  seconds: number;
}

export const QEMU = 'qemu-system-x86_64';
export const defaultVerifyTimeout = 90;
const shownLines = 15;

/** The installed image and initramfs of a version, as a layout lists them. */
async function findInstalled(ctx: Context, version: string): Promise<{ kernel: string; initrds: string[] }> {
  const kernels = (await listKernels(ctx)).filter((k) => k.version === version);
  for (const kernel of kernels) {
    // A UKI is one PE file that QEMU's direct kernel boot cannot load; other layouts may list it too.
    // An image that is no kernel at all is booted anyway: QEMU's own complaint is the verdict.
    const format = await inspectKernelImage(kernel.image).then(
      (info) => info.format,
      () => undefined,
    );
    if (format === 'uki') continue;
    return { kernel: kernel.image, initrds: kernel.initrds };
  }
  if (kernels.length > 0) {
    throw new KinstallError('EVERIFY', {
      version,
      why: 'only a unified kernel image is installed, which QEMU cannot boot directly',
    });
  }
  throw new KinstallError('ENOTINSTALLED', { version, layout: ctx.settings.layout });
}

/**
 * The initramfs files a loader hands the kernel one after another (early microcode, then the
 * initramfs), as the one file QEMU's -initrd takes: the kernel reads concatenated archives the same.
 */
async function joinInitrds(initrds: string[]): Promise<{ path: string; cleanup(): Promise<void> } | undefined> {
  if (initrds.length === 0) return undefined;
  if (initrds.length === 1) return { path: initrds[0] ?? '', cleanup: async () => undefined };
  const joined = await tmpFile({ prefix: 'kinstall-verify-initrd-' });
  await writeFile(joined.path, Buffer.concat(await Promise.all(initrds.map((f) => readFile(f)))));
  return joined;
}

export async function verifyKernel(ctx: Context, input: { version: string; timeoutSeconds?: number }): Promise<VerifyResult> {
  const qemu = await ctx.exec.which(QEMU);
  if (!qemu) throw new KinstallError('ENOQEMU', { tool: QEMU, package: 'qemu-system-x86' });
  const found = await findInstalled(ctx, input.version);
  const timeoutSeconds = input.timeoutSeconds ?? defaultVerifyTimeout;
  const console: string[] = [];
  const judge = new ConsoleJudge();
  const onLine = (line: string): boolean => {
    console.push(plainConsoleLine(line));
    return judge.feed(line) !== undefined;
  };
  const append = verifyCmdline(ctx.settings.cmdline);
  const initrds = found.initrds.length > 0 ? found.initrds.join(' + ') : undefined;
  ctx.log.info(
    `booting ${found.kernel} ${initrds ? `with ${initrds}` : 'without an initramfs (none is installed)'} in QEMU (up to ${timeoutSeconds} s)`,
  );
  const env = Object.fromEntries(Object.entries(ctx.env).filter((e): e is [string, string] => e[1] !== undefined));
  const joined = await joinInitrds(found.initrds);
  const outcome = await bootDirect({
    qemu,
    kernel: found.kernel,
    initrd: joined?.path,
    append,
    timeoutMs: timeoutSeconds * 1000,
    env,
    onLine,
  }).finally(() => joined?.cleanup());
  if (outcome.ended === 'signal') {
    throw new KinstallError('EINTERRUPTED', {
      signal: outcome.signal ?? 'a signal',
      outcome: 'QEMU was stopped; nothing was changed',
    });
  }
  const relevant = console.filter((l) => l.trim() !== '');
  const { verdict, cause, milestone } = judge.ended({
    timedOut: outcome.ended === 'timeout',
    sawOutput: relevant.length > 0,
    hasInitramfs: found.initrds.length > 0,
  });
  let lines = relevant.length > 0 ? relevant.slice(-shownLines) : outcome.stderr.split('\n').filter(Boolean).slice(-shownLines);
  // The cause may come long before the end (an unpack error before its panic): keep it in view.
  const causeLine = cause === undefined ? undefined : relevant.find((l) => l.includes(cause));
  if (verdict !== 'pass' && causeLine && !lines.includes(causeLine)) lines = [causeLine, ...lines.slice(-(shownLines - 1))];
  return {
    version: input.version,
    verdict,
    ...(cause === undefined ? {} : { cause }),
    ...(milestone ? { milestone } : {}),
    lines,
    seconds: outcome.seconds,
  };
}

/**
 * The kernel command line of the trial boot: the serial console, a panic ends QEMU, the target's
 * own line, and what the verdict needs to see. `quiet` is dropped and systemd's status lines are
 * forced on, since the milestones are info-level messages; printk.time=1 comes last so that a
 * line without a timestamp can only come from userspace (the initramfs's init).
 */
export function verifyCmdline(cmdline: string | undefined): string {
  const own = (cmdline ?? '').split(/\s+/).filter((word) => word !== '' && word !== 'quiet');
  return ['console=ttyS0', 'panic=-1', ...own, 'systemd.show_status=1', 'printk.time=1'].join(' ');
}

export function describeVerify(result: VerifyResult): string[] {
  const why: Partial<Record<Verdict, string>> = {
    pass: `reached ${result.milestone ?? "the initramfs's init"}${result.cause ? `: ${result.cause}` : ''}`,
    'init-failed': `the initramfs's init gave up: ${result.cause ?? 'see the console lines'}`,
    'kernel-panic': result.cause,
    'initramfs-unpack-failed': result.cause,
    'no-initramfs': 'no initramfs is installed for this kernel, so it found no init to run',
  };
  const head = `${result.version}: ${result.verdict}${why[result.verdict] ? `: ${why[result.verdict]}` : ''} (${result.seconds} s)`;
  return [head, ...(result.lines.length > 0 ? ['last console lines:', ...result.lines.map((l) => `  ${l}`)] : [])];
}
