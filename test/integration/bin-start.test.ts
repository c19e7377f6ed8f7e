// The bins run as users run them (executed, not `node BIN`): a shell start that runs node without
// NODE_EXTRA_CA_CERTS (read at every start of Node 20, for TLS kinstall never uses) and gives the
// value back to the tools kinstall runs (hooks get their own environment, without it, as before).
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installkernelBin, kinstallBin } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
// A file that is not there: Node warns at its start when it reads the variable.
const MISSING = '/nonexistent/kinstall-test-ca.pem';
const env = { ...process.env, NODE_EXTRA_CA_CERTS: MISSING };
const warned = /extra certs/i;
const DEPMOD = execFileSync('sh', ['-c', 'command -v depmod'], { encoding: 'utf8' }).trim();

describe('the bins start without NODE_EXTRA_CA_CERTS and give it back to their children', () => {
  it('node itself reads the variable (the premise): `node BIN --version` warns about the missing file', async () => {
    const result = await execa('node', [kinstallBin, '--version'], { env, reject: false });
    expect(result.stdout).toMatch(/^kinstall \d/);
    expect(result.stderr).toMatch(warned);
  });

  it.each([
    ['kinstall', kinstallBin],
    ['installkernel', installkernelBin],
  ])('%s executed: the same output, no warning', async (name, bin) => {
    const result = await execa(bin, ['--version'], { env, reject: false });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(name === 'kinstall' ? /^kinstall \d/ : /^installkernel \(kinstall\) \d/);
    expect(result.stderr).not.toMatch(warned);
  });

  /** depmod as kinstall runs it (--depmod always), through a wrapper first on PATH that notes its environment. */
  async function depmodSees(environment: Record<string, string | undefined>): Promise<string> {
    const root = newRoot({ modules: true });
    const bin = root.at('/var/tmp/bin');
    mkdirSync(bin, { recursive: true });
    const seen = root.at('/var/tmp/seen');
    writeFileSync(
      path.join(bin, 'depmod'),
      `#!/bin/sh\necho "NODE_EXTRA_CA_CERTS=\${NODE_EXTRA_CA_CERTS-unset} KINSTALL_NODE_EXTRA_CA_CERTS=\${KINSTALL_NODE_EXTRA_CA_CERTS-unset}" > ${seen}\nexec ${DEPMOD} "$@"\n`,
      { mode: 0o755 },
    );
    const result = await execa(
      kinstallBin,
      ['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', '--depmod', 'always', V, kernel.image],
      { env: { ...environment, PATH: `${bin}:${process.env.PATH ?? ''}` }, extendEnv: false, reject: false },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(warned);
    return readFileSync(seen, 'utf8').trim();
  }

  it('the tools kinstall runs see NODE_EXTRA_CA_CERTS as the user set it, not the name it travelled under', async () => {
    expect(await depmodSees(env)).toBe(`NODE_EXTRA_CA_CERTS=${MISSING} KINSTALL_NODE_EXTRA_CA_CERTS=unset`);
  });

  it('unset stays unset', async () => {
    const clean = { ...process.env };
    delete clean.NODE_EXTRA_CA_CERTS;
    expect(await depmodSees(clean)).toBe('NODE_EXTRA_CA_CERTS=unset KINSTALL_NODE_EXTRA_CA_CERTS=unset');
  });
});
