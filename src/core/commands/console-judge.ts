// The verdict of `kinstall verify`, read from the serial console line by line: pass only on a
// milestone the initramfs reaches when it works, and a failure named by the line that showed it.
export type Verdict =
  'pass' | 'init-failed' | 'kernel-panic' | 'no-initramfs' | 'initramfs-unpack-failed' | 'no-output' | 'timeout';

/** Which init the console shows: systemd (dracut's default), dracut's own shell init, or another. */
export type InitKind = 'systemd' | 'dracut' | 'other';

export interface Judgement {
  verdict: Verdict;
  /** The console line that decided it: the milestone reached, or the sign of the failure. */
  cause?: string;
  /** For pass, what was reached, in words. */
  milestone?: string;
}

// The signals, in the order the console shows them:
// - the kernel starts init: "Run /init as init process" (or "Run <path> as init process");
// - which init runs, from its first lines: systemd logs as "systemd[1]:" and paints status lines
//   ("Welcome to …", "[  OK  ] …"); dracut's shell init logs as "dracut:"; anything else is another init;
// - pass, by kind: systemd reaching basic.target or starting dracut's initqueue (a systemd that
//   froze never gets there); dracut's init printing its banner ("dracut: Debian GNU/Linux-12", after
//   it mounted /proc, /sys and /dev); another init printing anything at all (a test's marker init);
// - init-failed: init said it cannot go on (systemd freezing, emergency mode, dracut's FATAL or
//   its debug shell) before the milestone; this wins over a panic that follows;
// - initramfs-unpack-failed: the kernel could not unpack the image; this wins over the panic
//   ("No working init found") that follows;
// - kernel-panic: "Kernel panic - not syncing" before any of the above.
const runInit = /\bRun \S+ as init process/;
const timestamped = /^\[\s*\d+\.\d+\]/;
const unpackFailed =
  /Initramfs unpacking failed|junk in compressed archive|compression method \S+ not configured|decompressor failed|invalid magic at start of compressed archive/i;
const panic = /Kernel panic - not syncing/;
// The kernel's own complaints about init: never taken for init's output, timestamp or not.
const kernelInitError = /Failed to execute|No working init found|Starting init: .* exists but couldn't execute|Kernel panic/;
const systemdLine = /\bsystemd\[1\]:|^Welcome to .*!$|^\[\s*(?:OK|FAILED|DEPEND|TIME|!!!!!!)\s*\]|^\s+(?:Starting|Stopping) \S/;
const dracutLine = /^\[\s*\d+\.\d+\]\s+dracut(?: Warning)?:|^dracut(?: Warning)?:/;
const systemdMilestone =
  /Reached target (?:basic\.target\b|.*\bBasic System\b)|Starting dracut-initqueue|Starting .*dracut initqueue hook/;
const dracutMilestone = /^(?:\[\s*\d+\.\d+\]\s+)?dracut: (?!FATAL:)\S/;
const otherOutput = /^\[\s*\d+\.\d+\]\s+(?:initramfs|init)\b/i;
const initFailed = [
  /Freezing execution/,
  /Failed to mount API filesystems/,
  /Entering emergency mode/,
  /You are in emergency mode/,
  /dracut(?: Warning)?: (?:dracut: )?FATAL: /,
  /Dropping to debug shell/,
  /^dracut:\/#/,
  /Could not boot\./,
  /Cannot mount \S+ on \S+! Compile the kernel with CONFIG_\w+/,
  // The init (or its shell) could not even start: the panic that follows names no cause.
  /error while loading shared libraries/,
];

// Firmware, systemd and loaders paint with ANSI escapes; the verdict and the shown lines go without.
// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** A console line as verify shows it: without colour escapes and carriage returns. */
export function plainConsoleLine(line: string): string {
  // systemd's ellipsis can cut an escape in two and leave its tail ("…[0m") without the ESC.
  return line
    .replace(ansi, '')
    .replace(/…\[[0-9;]*m/g, '…')
    .replace(/\r/g, '')
    .trimEnd();
}

const milestoneWords: Record<InitKind, string> = {
  systemd: "systemd's basic system in the initramfs",
  dracut: "dracut's init in the initramfs",
  other: "the initramfs's init",
};

/** Reads the console as QEMU prints it; `feed` returns the judgement once the console decided it. */
export class ConsoleJudge {
  private initStarted = false;
  private kind: InitKind | undefined;
  private unpackError: string | undefined;
  private judgement: Judgement | undefined;

  get decided(): Judgement | undefined {
    return this.judgement;
  }

  get initKind(): InitKind | undefined {
    return this.kind;
  }

  feed(raw: string): Judgement | undefined {
    if (this.judgement) return this.judgement;
    const line = plainConsoleLine(raw);
    const text = line.replace(timestamped, '').trim();
    if (unpackFailed.test(line)) this.unpackError ??= text;
    if (panic.test(line))
      return this.decide({
        verdict: this.unpackError ? 'initramfs-unpack-failed' : 'kernel-panic',
        cause: this.unpackError ?? text,
      });
    if (runInit.test(line)) {
      this.initStarted = true;
      return undefined;
    }
    if (!this.initStarted || this.unpackError || line.trim() === '' || kernelInitError.test(line)) return undefined;
    if (initFailed.some((p) => p.test(line))) return this.decide({ verdict: 'init-failed', cause: text });
    this.kind ??= systemdLine.test(line)
      ? 'systemd'
      : dracutLine.test(line)
        ? 'dracut'
        : otherOutput.test(line) || !timestamped.test(line)
          ? 'other'
          : undefined;
    // systemd runs dracut's services, which log as "dracut-…": once systemd is seen it stays systemd.
    if (this.kind !== 'systemd' && systemdLine.test(line)) this.kind = 'systemd';
    const reached =
      this.kind === 'systemd'
        ? systemdMilestone.test(line)
        : this.kind === 'dracut'
          ? dracutMilestone.test(line)
          : this.kind === 'other' && (otherOutput.test(line) || !timestamped.test(line));
    if (!reached || !this.kind) return undefined;
    return this.decide({ verdict: 'pass', cause: text, milestone: milestoneWords[this.kind] });
  }

  /** The verdict once QEMU has ended by itself (or was stopped at the limit) without a decision. */
  ended(how: { timedOut: boolean; sawOutput: boolean; hasInitramfs: boolean }): Judgement {
    let judgement: Judgement = this.judgement ?? { verdict: 'kernel-panic' };
    // QEMU stopped by the timeout is a timeout, whatever the console said (or did not say) by then.
    if (how.timedOut) judgement = { verdict: 'timeout' };
    else if (!this.judgement) {
      if (!how.sawOutput) judgement = { verdict: 'no-output' };
      else if (this.unpackError) judgement = { verdict: 'initramfs-unpack-failed', cause: this.unpackError };
      // qemu ended by itself (panic=-1 with -no-reboot, or a crash) without a recognised line.
    }
    // QEMU has no disk, so without an initramfs the kernel can only fail to mount a root.
    if (judgement.verdict === 'kernel-panic' && !how.hasInitramfs) judgement = { ...judgement, verdict: 'no-initramfs' };
    return judgement;
  }

  private decide(judgement: Judgement): Judgement {
    this.judgement = judgement;
    return judgement;
  }
}
