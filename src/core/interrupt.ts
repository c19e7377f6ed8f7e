// SIGINT/SIGTERM as the core sees them: the CLI notes the signal, and the pipeline and the
// transaction stop at their next safe point and roll back instead of dying half-way.
import { KinstallError } from './errors.js';

let received: string | undefined;

/** Called by the CLI's signal handler; the first signal counts, later ones change nothing. */
export function noteInterrupt(signal: string): void {
  received ??= signal;
}

export const interruptedBy = (): string | undefined => received;

/** Throws at a safe point (between steps, between file changes) once a signal arrived. */
export function throwIfInterrupted(): void {
  if (received) throw new KinstallError('EINTERRUPTED', { signal: received });
}
