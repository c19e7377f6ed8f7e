// The bins' start for help and version (start.ts): built into one small file (dist/src/cli/light.cjs,
// no chunks to resolve, no verbs), it answers from answers.ts, the same code run.ts asks first. A
// command line it cannot answer (a verb to run, a usage error to report) goes on to the full start.
import { installkernelAnswer, kinstallAnswer } from './answers.js';
import { processIo } from './io.js';
import { parseCommandLine } from './options.js';

/** The exit code of a help or version answer, or undefined: the full start takes over, output untouched. */
export function answerLight(bin: 'runKinstall' | 'runInstallkernel'): number | undefined {
  const io = processIo();
  let parsed;
  try {
    parsed = parseCommandLine(io.argv);
  } catch {
    return undefined;
  }
  return bin === 'runKinstall' ? kinstallAnswer(io, parsed) : installkernelAnswer(io, parsed);
}
