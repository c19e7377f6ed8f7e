// The thin CLI: parse argv, pick the verb, catch signals, report errors as one coded line.
import { noteInterrupt } from '../core/interrupt.js';
import { KinstallError } from '../core/errors.js';
import { installkernelAnswer, kinstallAnswer, verbOf } from './answers.js';
import { reportError, type Io } from './io.js';
import { parseCommandLine, refuseOptions, type ParsedCommandLine } from './options.js';

/**
 * SIGINT/SIGTERM: the core stops at its next safe point and rolls back; a second signal never
 * cuts the rollback short. Returns the function that removes the handlers.
 */
function catchSignals(io: Io): () => void {
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count += 1;
    noteInterrupt(signal);
    io.stderr(
      count === 1
        ? `kinstall: ${signal} received: stopping and rolling back\n`
        : `kinstall: ${signal} received again: the rollback is finishing, please wait\n`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export { verbs } from './answers.js';

// The verbs, the core and the plugins load only when a command runs: --version and --help never pay for them.
const loadCommands = () => import('./commands.js');

/** One run of a CLI: signals caught, argv parsed, any error reported as one coded line. */
async function runCli(io: Io, main: (parsed: ParsedCommandLine) => Promise<number>): Promise<number> {
  let verbose = io.argv.includes('-v') || io.argv.includes('--verbose');
  const releaseSignals = catchSignals(io);
  try {
    const parsed = parseCommandLine(io.argv);
    verbose = parsed.values.verbose ?? false;
    return await main(parsed);
  } catch (error) {
    return reportError(io, error, verbose);
  } finally {
    releaseSignals();
  }
}

export function runKinstall(io: Io): Promise<number> {
  return runCli(io, async ({ values, positionals }) => {
    const answered = kinstallAnswer(io, { values, positionals });
    if (answered !== undefined) return answered;
    const { verb, args } = verbOf(positionals);
    refuseOptions(values, ['all', 'jobs'], `kinstall ${verb}`);
    const { add, confirm, inspect, list, prune, recover, remove, stage, status, verify } = await loadCommands();
    if (verb !== 'add') refuseOptions(values, ['try'], `kinstall ${verb}`);
    if (verb !== 'stage') refuseOptions(values, ['build-dir', 'modules-dir'], `kinstall ${verb}`);
    if (verb === 'stage') return await stage(io, values, args);
    if (verb === 'inspect') return await inspect(io, values, args);
    if (verb === 'list') return await list(io, values, args);
    if (verb === 'status') return await status(io, values, args);
    if (verb === 'confirm') return await confirm(io, values, args);
    if (verb === 'remove') return await remove(io, values, args);
    if (verb === 'prune') return await prune(io, values, args);
    if (verb === 'recover') return await recover(io, values, args);
    if (verb === 'verify') return await verify(io, values, args);
    refuseOptions(values, ['keep-modules', 'timeout'], `kinstall ${verb}`);
    if (args.length > 2)
      throw new KinstallError('EUSAGE', { what: `add takes at most VERSION and IMAGE, found ${args.length} arguments` });
    return await add(io, values, args);
  });
}

export function runInstallkernel(io: Io): Promise<number> {
  return runCli(io, async ({ values, positionals }) => {
    const answered = installkernelAnswer(io, { values, positionals });
    if (answered !== undefined) return answered;
    refuseOptions(values, ['build-dir', 'modules-dir'], 'installkernel');
    const { add, installAll } = await loadCommands();
    if (!values.all) refuseOptions(values, ['jobs'], 'installkernel without --all');
    if (values.all) {
      // Gentoo's dist-kernel reinstalls with `installkernel VER IMAGE MAP DIR --all`: every staged
      // kernel is installed from the neutral location, so VERSION, IMAGE and SYSTEM_MAP are not
      // used; DIR still names the boot dir.
      if (positionals.length > 4) {
        throw new KinstallError('EUSAGE', {
          what: `installkernel --all takes at most VERSION IMAGE SYSTEM_MAP DIR, found ${positionals.length} arguments`,
        });
      }
      return await installAll(io, values, positionals[3]);
    }
    if (positionals.length === 1 || positionals.length > 5) {
      throw new KinstallError('EUSAGE', {
        what: `installkernel takes VERSION IMAGE [SYSTEM_MAP] [DIR], found ${positionals.length} argument(s) (see --help)`,
      });
    }
    const [version, image, systemMap, dir] = positionals;
    return await add(
      io,
      values,
      [version, image, systemMap].filter((a): a is string => a !== undefined),
      dir,
    );
  });
}
