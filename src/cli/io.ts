// What the CLI talks to (argv, env, stdout, stderr) and how it reports an error; the package's own
// directory (its version, its shipped hooks.d).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KinstallError } from '../core/errors.js';

export interface Io {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stderr is a terminal: long steps may redraw one progress line there. */
  stderrIsTTY?: boolean;
}

/** The real process's argv, environment, directory and streams (tests pass their own Io). */
export function processIo(): Io {
  return {
    argv: process.argv.slice(2),
    env: process.env,
    cwd: process.cwd(),
    stdout: untilClosed(process.stdout),
    stderr: untilClosed(process.stderr),
    stderrIsTTY: process.stderr.isTTY,
  };
}

/** A package.json's fields, or undefined where there is none. */
function packageJson(dir: string): { name?: string; version?: string } | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
  } catch {
    return undefined;
  }
}

/**
 * The package's top directory (holds package.json and hooks.d), from dist/ or from src/: the first
 * package.json with a name on the way up (dist/src/cli's own only says its scripts are CommonJS).
 */
function packageDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!packageJson(dir)?.name && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export function packageVersion(): string {
  return packageJson(packageDir())?.version ?? 'unknown';
}

export const shippedHooksDir = () => path.join(packageDir(), 'hooks.d');

/**
 * Writes to one of the process's own streams until its reader goes away. `kinstall list | head -1`
 * closes the pipe: the output ends there, quietly (no EPIPE stack trace), and the command carries on
 * to its own exit status, so an install is never left half-way because nobody reads its output.
 * The listener also covers the logger, which writes to process.stderr itself.
 */
function untilClosed(stream: NodeJS.WriteStream): (text: string) => void {
  let open = true;
  stream.on('error', () => {
    open = false;
  });
  return (text) => {
    if (open && !stream.destroyed) stream.write(text);
  };
}

/** The one-line coded error on stderr; with --json also `{"error": …}` on stdout, for scripts. */
export function reportError(io: Io, error: unknown, verbose: boolean, json = io.argv.includes('--json')): number {
  const known = error instanceof KinstallError ? error : KinstallError.fromStep('kinstall', error);
  if (json) {
    io.stdout(
      `${JSON.stringify({ error: { code: known.code, exitCode: known.exitCode, message: known.message, details: known.details } }, null, 2)}\n`,
    );
  }
  io.stderr(`kinstall: ${known.code}: ${known.message}\n`);
  for (const line of known.details) io.stderr(`  ${line}\n`);
  if (verbose && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
  return known.exitCode;
}
