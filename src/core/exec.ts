// The one wrapper around execa: argv arrays only (never a shell), a timeout, output to the log,
// and a dry-run mode that logs the command instead of running it.
import { delimiter, join } from 'node:path';
import { access, constants } from './quick-fs.js';
import { execa } from 'execa';
import type { Logger } from './logger.js';
import { KinstallError } from './errors.js';
import { commandAbortSignal } from './interrupt.js';

/** After SIGTERM, how long a stopped command's process group gets before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** Signals a whole process group (the command and whatever it forked); gone already is fine. */
export function signalProcessGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group has exited
  }
}

/**
 * A command's output line as the log shows it: after the command's name, unless the line already
 * starts with it (dracut writes "dracut: …", a hook may write "50-dkms: …" or "50-dkms[PID]: …").
 */
export function outputLine(name: string, line: string): string {
  const own = line.trimStart();
  return own.startsWith(`${name}: `) || own.startsWith(`${name}[`) || own === `${name}:` ? own : `${name}: ${line}`;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Milliseconds; default 10 minutes (dracut on a slow disk). */
  timeout?: number;
  /** For probes: return the result even when the command fails. */
  reject?: boolean;
  /** Run even in dry-run mode (read-only probes such as `uname`). */
  readOnly?: boolean;
  /** Stream each output line to the log at info level instead of debug. */
  streamOutput?: boolean;
  /** Called with each output line as it comes (a progress display). */
  onLine?: (line: string) => void;
  input?: string;
  /** Hooks: `env` is the whole environment, nothing inherited from kinstall's own. */
  explicitEnv?: boolean;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  failed: boolean;
  /** Set when the command could not start at all (ENOENT, EACCES). */
  spawnError?: string;
}

export interface Exec {
  run(file: string, args: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Where a command name is found on PATH, or undefined. */
  which(name: string): Promise<string | undefined>;
}

export function createExec(log: Logger, env: Record<string, string | undefined>, dryRun: boolean): Exec {
  const baseEnv = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));

  async function run(file: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const shown = [file, ...args].join(' ');
    if (dryRun && !options.readOnly) {
      log.info(`would run: ${shown}`);
      return { exitCode: 0, stdout: '', stderr: '', failed: false };
    }
    log.debug(`run: ${shown}`);
    const lineLevel = options.streamOutput ? 'info' : 'debug';
    const name = file.split('/').pop() ?? file;
    const toLog = function* (line: unknown) {
      log.log(lineLevel, `  ${outputLine(name, String(line))}`);
      options.onLine?.(String(line));
      yield line as string;
    };
    // Its own process group, so that stopping it (on SIGINT/SIGTERM, on a timeout) reaches
    // everything it started: dracut's cpio and compressor, a hook's sleep.
    const subprocess = execa(file, args, {
      detached: true,
      cwd: options.cwd,
      env: options.explicitEnv ? { ...options.env } : { ...baseEnv, ...options.env },
      extendEnv: false,
      reject: false,
      stripFinalNewline: true,
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : undefined,
      stdout: [toLog],
      stderr: [toLog],
      lines: false,
    });
    const abort = commandAbortSignal();
    let grace: NodeJS.Timeout | undefined;
    const stop = (why = '') => {
      log.warn(`stopping ${file.split('/').pop()} (pid ${subprocess.pid ?? '?'})${why}`);
      signalProcessGroup(subprocess.pid, 'SIGTERM');
      grace = setTimeout(() => signalProcessGroup(subprocess.pid, 'SIGKILL'), KILL_GRACE_MS);
    };
    const onAbort = () => stop();
    abort?.addEventListener('abort', onAbort, { once: true });
    // The time limit: a plain timer stopping the whole group as an interrupt does (execa's own
    // timeout option builds an abortable timer per command, milliseconds at a run's first command).
    let timedOut = false;
    const limit = setTimeout(() => {
      timedOut = true;
      stop(`: it ran longer than ${Math.round((options.timeout ?? 600_000) / 1000)} s`);
    }, options.timeout ?? 600_000);
    const result = await subprocess;
    clearTimeout(limit);
    abort?.removeEventListener('abort', onAbort);
    clearTimeout(grace);
    // A stopped or timed-out command's group may outlive its leader: nothing of it may go on.
    if (grace !== undefined) signalProcessGroup(subprocess.pid, 'SIGKILL');
    const spawnError = result.failed && result.exitCode === undefined && !timedOut ? result.originalMessage : undefined;
    const outcome: ExecResult = {
      exitCode: result.exitCode ?? (timedOut ? 124 : 127),
      stdout: String(result.stdout ?? ''),
      stderr: String(result.stderr ?? ''),
      failed: result.failed,
      spawnError,
    };
    if (outcome.failed && options.reject !== false) {
      const why = spawnError ?? (timedOut ? 'timed out' : `exit code ${outcome.exitCode}`);
      const lastLines = (outcome.stderr || outcome.stdout).split('\n').filter(Boolean).slice(-5);
      throw new KinstallError('ETOOL', { tool: file.split('/').pop() ?? file, why }, lastLines);
    }
    return outcome;
  }

  async function which(name: string): Promise<string | undefined> {
    if (name.includes('/'))
      return (await access(name, constants.X_OK).then(
        () => true,
        () => false,
      ))
        ? name
        : undefined;
    for (const dir of (baseEnv.PATH ?? '').split(delimiter).filter(Boolean)) {
      const candidate = join(dir, name);
      if (
        await access(candidate, constants.X_OK).then(
          () => true,
          () => false,
        )
      )
        return candidate;
    }
    return undefined;
  }

  return { run, which };
}
