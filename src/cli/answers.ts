// Help and version: what a bin answers without loading a verb. run.ts asks here before it loads
// the commands; light.ts (the bins' start for help and version: one small file) asks here alone.
import { ExitCode } from '../core/errors.js';
import { commandHelp, installkernelHelp, kinstallHelp } from './help.js';
import { packageVersion, type Io } from './io.js';
import type { ParsedCommandLine } from './options.js';

export const verbs = [
  'add',
  'stage',
  'inspect',
  'list',
  'status',
  'confirm',
  'remove',
  'prune',
  'recover',
  'verify',
  'help',
] as const;
export type Verb = (typeof verbs)[number];

/** kinstall's verb and its arguments: the first positional when it names a verb, else add. */
export function verbOf(positionals: string[]): { verb: Verb; args: string[] } {
  const first = positionals[0];
  return verbs.includes(first as Verb) ? { verb: first as Verb, args: positionals.slice(1) } : { verb: 'add', args: positionals };
}

/** `kinstall --version`, `--help`, `help [VERB]`, `VERB --help`: the exit code, or undefined for a run that does work. */
export function kinstallAnswer(io: Io, { values, positionals }: ParsedCommandLine): number | undefined {
  const { verb, args } = verbOf(positionals);
  if (values.version) {
    io.stdout(`kinstall ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  if (verb === 'help' || values.help) {
    const first = positionals[0];
    const topic = verb === 'help' ? args[0] : first && verbs.includes(first as Verb) ? first : undefined;
    io.stdout(`${(topic && commandHelp[topic]) || kinstallHelp}\n`);
    return ExitCode.ok;
  }
  return undefined;
}

/** `installkernel --help` and `--version`: the exit code, or undefined for an install. */
export function installkernelAnswer(io: Io, { values }: ParsedCommandLine): number | undefined {
  if (values.help) {
    io.stdout(`${installkernelHelp}\n`);
    return ExitCode.ok;
  }
  if (values.version) {
    io.stdout(`installkernel (kinstall) ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  return undefined;
}
