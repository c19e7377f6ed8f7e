// SIGINT/SIGTERM as the core sees them: the CLI notes the signal, and the pipeline and the
// transaction stop at their next safe point and roll back instead of dying half-way.
import { KinstallError } from './errors.js';

let received: string | undefined;
const commands = new AbortController();

/** Called by the CLI's signal handler; the first signal counts, later ones change nothing. */
export function noteInterrupt(signal: string): void {
  if (received) return;
  received = signal;
  commands.abort();
}

/**
 * For a command about to start: aborted by the first signal, so a running dracut or hook is
 * stopped instead of holding the run; undefined once a signal arrived, so the commands of the
 * rollback itself (lilo on the restored files) run to their end.
 */
export const commandAbortSignal = (): AbortSignal | undefined => (received ? undefined : commands.signal);

export const interruptedBy = (): string | undefined => received;

/** Throws at a safe point (between steps, between file changes) once a signal arrived. */
export function throwIfInterrupted(): void {
  if (received) throw new KinstallError('EINTERRUPTED', { signal: received });
}
