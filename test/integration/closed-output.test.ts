// A reader that stops reading (`kinstall list | head -1`): the output ends quietly, without an EPIPE
// stack trace; the command's exit status stands and an install still runs to its end.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { kinstallBin, top } from '../helpers/cli.js';
import { initramfsFixture, silentInitramfs } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();

interface ClosedRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** What was written to the stream left open. */
  stdout: string;
  stderr: string;
}

/**
 * Runs the built kinstall with the read end of stdout (and stderr, when asked) closed before it
 * starts writing: node takes far longer to start than the close takes, so every write meets a
 * pipe without a reader.
 */
function runClosed(args: string[], close: { stderr?: boolean } = {}): Promise<ClosedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', [kinstallBin, ...args], { cwd: top, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.destroy();
    if (close.stderr) child.stderr.destroy();
    else child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, ...out }));
  });
}

/** A root with V installed in the compat layout with the silent initramfs (no dracut: fast). */
async function installedRoot(): Promise<TestRoot> {
  const r = newRoot({ modules: true });
  writeFileSync(r.at('/etc/prebuilt.img'), silentInitramfs());
  const added = await execa(
    'node',
    [kinstallBin, 'add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/etc/prebuilt.img'), V, kernel.image],
    { reject: false },
  );
  expect(added.exitCode, String(added.stderr)).toBe(0);
  return r;
}

const noCrash = (stderr: string) => {
  expect(stderr).not.toContain('EPIPE');
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain("Unhandled 'error' event");
};

describe('a closed stdout or stderr', () => {
  it('--help into a closed pipe: exit 0, nothing on stderr', async () => {
    const result = await runClosed(['--help']);
    expect(result.signal).toBeNull();
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });

  it('list and list --json into a closed pipe: exit 0, no EPIPE', async () => {
    const r = await installedRoot();
    for (const json of [[], ['--json']]) {
      const result = await runClosed(['list', '--root', r.root, ...json]);
      noCrash(result.stderr);
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
    }
  }, 60_000);

  it('a usage error with --json into a closed stdout still reports on stderr, exit 2', async () => {
    const result = await runClosed(['list', '--json', 'extra']);
    noCrash(result.stderr);
    expect(result.stderr).toBe('kinstall: EUSAGE: list takes no arguments\n');
    expect(result.exitCode).toBe(2);
  });

  it('verify into a closed pipe keeps its own exit status (8 on a timeout) and its coded error', async () => {
    const r = await installedRoot();
    const result = await runClosed(['verify', '--timeout', '2', '--cmdline', 'loglevel=0', '--root', r.root, V]);
    noCrash(result.stderr);
    expect(result.stderr).toContain(`kinstall: EVERIFY: ${V} did not boot in QEMU: timeout`);
    expect(result.exitCode).toBe(8);
  }, 60_000);

  it('add --json with both stdout and stderr closed installs the kernel completely, exit 0', async () => {
    const r = newRoot({ modules: true });
    writeFileSync(r.at('/etc/prebuilt.img'), initramfsFixture('a prebuilt initramfs'));
    const result = await runClosed(
      ['add', '--json', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/etc/prebuilt.img'), V, kernel.image],
      { stderr: true },
    );
    expect(result.signal).toBeNull();
    expect(result.exitCode).toBe(0);
    expect(readFileSync(r.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readFileSync(r.at(`/boot/initramfs-${V}.img`)).equals(initramfsFixture('a prebuilt initramfs'))).toBe(true);
    expect(readFileSync(r.at(`/boot/System.map-${V}`)).equals(readFileSync(kernel.systemMap))).toBe(true);
    expect(readFileSync(r.at(`/boot/config-${V}`)).equals(readFileSync(kernel.config))).toBe(true);
    expect(readFileSync(r.at(`/lib/modules/${V}/vmlinuz`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(existsSync(r.at(`/lib/modules/${V}/modules.dep`))).toBe(true);
    expect(existsSync(r.at('/var/lib/kinstall/journal.json')), 'the run finished: no journal').toBe(false);
    expect(existsSync(r.at('/run/lock/kinstall.lock')), 'the lock was released').toBe(false);
  }, 60_000);

  it('in a shell pipeline whose reader has gone: `kinstall list | …` ends quietly with exit 0', async () => {
    const r = await installedRoot();
    const flag = r.at('/reader-gone');
    const status = r.at('/status');
    const errors = r.at('/stderr');
    // The writer starts only once the reader has closed its end, so the first write meets no reader.
    const script =
      '{ while [ ! -e "$5" ]; do sleep 0.05; done; node "$1" list --root "$2" 2>"$3"; echo $? >"$4"; } | { exec 0<&-; : >"$5"; }';
    await execa('sh', ['-c', script, 'sh', kinstallBin, r.root, errors, status, flag], { cwd: top });
    const stderr = readFileSync(errors, 'utf8');
    noCrash(stderr);
    expect(stderr).toBe('');
    expect(readFileSync(status, 'utf8').trim()).toBe('0');
  }, 60_000);
});
