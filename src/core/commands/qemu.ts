// One direct-kernel boot in qemu-system-x86_64 for `kinstall verify`: streams the serial console
// line by line, stops the VM as soon as the caller has its answer, and never leaves qemu behind.
//
// execa is used here directly rather than through ctx.exec: exec.run only returns when the command
// has ended, and verify must read the console while qemu runs, stop it early on a verdict, and kill
// its whole process group on timeout, SIGINT/SIGTERM or any error.
import { execa } from 'execa';
import { signalProcessGroup } from '../exec.js';

export interface BootRequest {
  qemu: string;
  kernel: string;
  initrd?: string;
  append: string;
  timeoutMs: number;
  env: Record<string, string>;
  /** Called with each console line; returning true ends the boot (the verdict is known). */
  onLine(line: string): boolean;
}

export interface BootOutcome {
  /** Why the boot ended. */
  ended: 'stopped' | 'exited' | 'timeout' | 'signal';
  signal?: string;
  exitCode?: number;
  /** qemu's own messages (e.g. "linux kernel too old to load a ram disk" for a non-kernel image). */
  stderr: string;
  seconds: number;
}

export function qemuArgs(request: Pick<BootRequest, 'kernel' | 'initrd' | 'append'>): string[] {
  return [
    // TCG only: on these hosts /dev/kvm opens but the guest never runs, so a probe cannot tell
    // a usable KVM from a broken one; TCG reaches the initramfs's init in about 5 s.
    '-accel',
    'tcg',
    '-m',
    '512',
    '-nodefaults',
    '-nic',
    'none',
    '-no-reboot',
    '-display',
    'none',
    '-monitor',
    'none',
    '-serial',
    'stdio',
    '-kernel',
    request.kernel,
    ...(request.initrd ? ['-initrd', request.initrd] : []),
    '-append',
    request.append,
  ];
}

export async function bootDirect(request: BootRequest): Promise<BootOutcome> {
  const started = Date.now();
  // detached: qemu gets its own process group, so one kill reaches it and anything it forked,
  // and a terminal's Ctrl-C reaches kinstall, which then stops qemu itself.
  const child = execa(request.qemu, qemuArgs(request), {
    env: request.env,
    extendEnv: false,
    stdin: 'ignore',
    detached: true,
    reject: false,
    buffer: { stdout: false, stderr: true },
  });
  let ended: BootOutcome['ended'] | undefined;
  let signal: string | undefined;
  const killGroup = () => signalProcessGroup(child.pid, 'SIGKILL');
  const stop = (why: BootOutcome['ended'], sig?: string) => {
    ended ??= why;
    signal ??= sig;
    killGroup();
  };
  const onSignal = (sig: NodeJS.Signals) => stop('signal', sig);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killGroup);
  const timer = setTimeout(() => stop('timeout'), request.timeoutMs);
  let pending = '';
  const feed = (text: string) => {
    pending += text;
    const parts = pending.split(/\r?\n/);
    pending = parts.pop() ?? '';
    for (const line of parts) if (ended === undefined && request.onLine(line.replace(/\r/g, ''))) stop('stopped');
  };
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', feed);
  try {
    const result = await child;
    if (pending && ended === undefined && request.onLine(pending)) ended = 'stopped';
    return {
      ended: ended ?? 'exited',
      signal,
      exitCode: result.exitCode,
      stderr: String(result.stderr ?? ''),
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
  } finally {
    clearTimeout(timer);
    killGroup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killGroup);
  }
}
