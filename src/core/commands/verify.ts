// `kinstall verify VERSION`: boots the installed kernel and initramfs in QEMU (direct kernel boot,
// no disk) and reports whether the initramfs's init was reached. It checks the kernel and the
// initramfs only, not the real root device, the boot loader or the firmware.
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { inspectKernelImage } from '../system/kernel-image.js';
import { listKernels } from './list.js';
import { bootDirect } from './qemu.js';

export type Verdict = 'pass' | 'kernel-panic' | 'no-initramfs' | 'initramfs-unpack-failed' | 'no-output' | 'timeout';

export interface VerifyResult {
  version: string;
  verdict: Verdict;
  /** The last relevant console lines (qemu's own errors when the console stayed silent). */
  lines: string[];
  seconds: number;
}

export const QEMU = 'qemu-system-x86_64';
export const defaultVerifyTimeout = 90;
const shownLines = 15;

// The signals, in the order the console shows them:
// - the kernel starts init: "Run /init as init process" (or "Run <path> as init process");
// - pass: any console line after that which comes from userspace init: a line tagged dracut,
//   systemd or initramfs (dracut and systemd log through /dev/kmsg), or a line without a printk
//   timestamp (plain writes to the console: "Loading, please wait...", a shell prompt);
// - initramfs-unpack-failed: the kernel could not unpack the image ("Initramfs unpacking failed",
//   "junk in compressed archive", a compression method not built in); this wins over the
//   panic ("No working init found") that follows;
// - kernel-panic: "Kernel panic - not syncing" before init produced output;
// - no-initramfs: that panic, when the layout installed no initramfs to boot with (QEMU has no
//   disk, so without one the kernel can only fail to mount a root).
const runInit = /\bRun \S+ as init process/;
const initOutput = /^\[\s*\d+\.\d+\]\s+(dracut|systemd|initramfs|init)\b/i;
const timestamped = /^\[\s*\d+\.\d+\]/;
const unpackFailed = /Initramfs unpacking failed|junk in compressed archive|compression method \S+ not configured|decompressor failed|invalid magic at start of compressed archive/i;
const panic = /Kernel panic - not syncing/;
// The kernel's own complaints about init: never taken for init's output, timestamp or not.
const kernelInitError = /Failed to execute|No working init found|Starting init: .* exists but couldn't execute|Kernel panic/;

/** The installed image and initramfs of a version, as a layout lists them. */
async function findInstalled(ctx: Context, version: string): Promise<{ kernel: string; initrd?: string }> {
  const kernels = (await listKernels(ctx)).filter((k) => k.version === version);
  for (const kernel of kernels) {
    // A UKI is one PE file that QEMU's direct kernel boot cannot load; other layouts may list it too.
    // An image that is no kernel at all is booted anyway: QEMU's own complaint is the verdict.
    const format = await inspectKernelImage(kernel.image).then((info) => info.format, () => undefined);
    if (format === 'uki') continue;
    return { kernel: kernel.image, initrd: kernel.initrds[0] };
  }
  if (kernels.length > 0) {
    throw new KinstallError('EVERIFY', { version, why: 'only a unified kernel image is installed, which QEMU cannot boot directly' });
  }
  throw new KinstallError('ENOTINSTALLED', { version, layout: ctx.settings.layout });
}

export async function verifyKernel(ctx: Context, input: { version: string; timeoutSeconds?: number }): Promise<VerifyResult> {
  const qemu = await ctx.exec.which(QEMU);
  if (!qemu) throw new KinstallError('ENOQEMU', { tool: QEMU, package: 'qemu-system-x86' });
  const found = await findInstalled(ctx, input.version);
  const timeoutSeconds = input.timeoutSeconds ?? defaultVerifyTimeout;
  const console: string[] = [];
  let initStarted = false;
  let verdict: Verdict | undefined;
  let unpackError = false;
  const onLine = (line: string): boolean => {
    console.push(line);
    if (unpackFailed.test(line)) unpackError = true;
    if (panic.test(line)) verdict = unpackError ? 'initramfs-unpack-failed' : 'kernel-panic';
    else if (runInit.test(line)) initStarted = true;
    else if (initStarted && !unpackError && line.trim() !== '' && !kernelInitError.test(line) && (initOutput.test(line) || !timestamped.test(line))) verdict = 'pass';
    return verdict !== undefined;
  };
  // printk.time=1 last, so that it wins over the configured line: the kernel's messages carry a
  // timestamp and a line without one can only come from userspace (the initramfs's init).
  const append = ['console=ttyS0', 'panic=-1', ctx.settings.cmdline, 'printk.time=1'].filter(Boolean).join(' ');
  ctx.log.info(`booting ${found.kernel} ${found.initrd ? `with ${found.initrd}` : 'without an initramfs (none is installed)'} in QEMU (up to ${timeoutSeconds} s)`);
  const env = Object.fromEntries(Object.entries(ctx.env).filter((e): e is [string, string] => e[1] !== undefined));
  const outcome = await bootDirect({ qemu, kernel: found.kernel, initrd: found.initrd, append, timeoutMs: timeoutSeconds * 1000, env, onLine });
  if (outcome.ended === 'signal') {
    throw new KinstallError('EINTERRUPTED', { signal: outcome.signal ?? 'a signal', outcome: 'QEMU was stopped; nothing was changed' });
  }
  const relevant = console.filter((l) => l.trim() !== '');
  // QEMU stopped by the timeout is a timeout, whatever the console said (or did not say) by then.
  if (outcome.ended === 'timeout') verdict = 'timeout';
  else if (verdict === undefined) {
    if (relevant.length === 0) verdict = 'no-output';
    else if (unpackError) verdict = 'initramfs-unpack-failed';
    // qemu ended by itself (panic=-1 with -no-reboot, or a crash) without a recognised line.
    else verdict = 'kernel-panic';
  }
  if (verdict === 'kernel-panic' && !found.initrd) verdict = 'no-initramfs';
  let lines = relevant.length > 0 ? relevant.slice(-shownLines) : outcome.stderr.split('\n').filter(Boolean).slice(-shownLines);
  // The unpack error comes long before the panic it causes: keep it in view as the first line.
  const cause = verdict === 'initramfs-unpack-failed' ? relevant.find((l) => unpackFailed.test(l)) : undefined;
  if (cause && !lines.includes(cause)) lines = [cause, ...lines.slice(-(shownLines - 1))];
  return { version: input.version, verdict, lines, seconds: outcome.seconds };
}

export function describeVerify(result: VerifyResult): string[] {
  const why: Partial<Record<Verdict, string>> = {
    pass: "reached the initramfs's init",
    'no-initramfs': 'no initramfs is installed for this kernel, so it found no init to run',
  };
  const head = `${result.version}: ${result.verdict}${why[result.verdict] ? `: ${why[result.verdict]}` : ''} (${result.seconds} s)`;
  return [head, ...(result.lines.length > 0 ? ['last console lines:', ...result.lines.map((l) => `  ${l}`)] : [])];
}
