// Spawns the built CLIs (dist/) the way users and `make install` run them.
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const top = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const kinstallBin = path.join(top, 'dist/src/cli/kinstall.js');
export const installkernelBin = path.join(top, 'dist/src/cli/installkernel.js');

export interface CliResult {
  /** -1 when a signal ended the process (see `signal`). */
  exitCode: number;
  /** The signal that ended the process, if one did. */
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
}

async function spawnCli(bin: string, args: string[], options: CliOptions = {}): Promise<CliResult> {
  const result = await execa('node', [bin, ...args], {
    cwd: options.cwd ?? top,
    env: options.env,
    reject: false,
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode ?? -1, signal: result.signal, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export const kinstall = (args: string[], options?: CliOptions) => spawnCli(kinstallBin, args, options);
export const installkernel = (args: string[], options?: CliOptions) => spawnCli(installkernelBin, args, options);
