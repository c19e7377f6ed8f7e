// The test-only crash points: KINSTALL_TEST_CRASH_AFTER=POINT makes the process SIGKILL itself at
// that point, so the crash tests can reproduce a power loss at a known moment.

/** The environment variable that names the crash point (tests only). */
export const CRASH_POINT_ENV = 'KINSTALL_TEST_CRASH_AFTER';

/**
 * Points: `journal` (first journal write, nothing changed), `backup:N` (Nth change's backup made,
 * target not yet replaced), `op:N` (Nth change done), `reactivate` (a bootloader tool is about to
 * run), `step:NAME` (a pipeline step is about to run), `activated` (a layout's bootloader step
 * finished, the run not final yet), `committed` (run final, backups not yet dropped), `rollback:N`
 * (Nth restore of a rollback done); in recovery, `recover:N` (Nth restore done) and
 * `recover:reactivate` (the layouts' recovery is about to run).
 */
export function crashHook(point: string | undefined): (name: string) => void {
  if (!point) return () => undefined;
  return (name) => {
    if (name === point) process.kill(process.pid, 'SIGKILL');
  };
}
