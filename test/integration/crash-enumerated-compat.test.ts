// Every crash point of add, remove and prune on the compat layout (the boot dir): SIGKILL at op:N and
// backup:N for N = 1, 2, … until a run completes, recovery after each kill, and the tree
// byte-identical to before (or to a successful run's, once the run was final).
import { describe, it } from 'vitest';
import { compat, enumerateRun, runs } from '../helpers/crash-scenarios.js';
import { useScratchRoots } from '../helpers/root.js';

const roots = useScratchRoots({ after: 'all' });

describe('SIGKILL at every op:N and backup:N, compat layout, then recovery', () => {
  for (const run of runs(compat)) {
    it(`${run.verb}: ${run.what}`, () => enumerateRun(compat, run, roots));
  }
});
