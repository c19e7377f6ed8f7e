// Test roots kinstall can chroot into: the host's /usr (read-only) bound into the root inside the
// test's own private mount namespace (unshare -m), with merged-/usr links, so the target's /bin/sh,
// its systemd plugins and its loader are the host's, and nothing of it is mounted on the host.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { kinstallBin, type CliResult } from './cli.js';
import { makeRoot, type RootOptions, type TestRoot } from './root.js';

const libArch = '/usr/lib/x86_64-linux-gnu';

/**
 * A root a chroot works in: /usr, /proc, /sys, /dev, /var/tmp, /var/log, links bin, sbin, lib64
 * into usr (the host is merged-/usr). /lib stays a real directory (kernels are staged in
 * /lib/modules); the host's multiarch libraries are bound at /lib/x86_64-linux-gnu. Its config
 * leaves targetHooks at its default ("run").
 */
export function makeChrootRoot(options: RootOptions = {}): TestRoot {
  const r = makeRoot(options);
  for (const dir of ['/usr', '/proc', '/sys', '/dev', '/var/tmp', '/var/log', `/lib/${path.basename(libArch)}`]) {
    mkdirSync(r.at(dir), { recursive: true });
  }
  for (const [link, target] of [
    ['/bin', 'usr/bin'],
    ['/sbin', 'usr/sbin'],
    ['/lib64', 'usr/lib64'],
  ] as const) {
    execFileSync('ln', ['-s', target, r.at(link)]);
  }
  const configFile = r.at('/etc/kinstall/config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  delete config.targetHooks;
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  return r;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The namespace script: the host's /usr and libraries bound in, then kinstall (its status kept). */
function namespaceScript(r: TestRoot, args: string[]): string {
  const R = quote(r.root);
  return [
    'set -e',
    `mount --bind /usr ${R}/usr`,
    `mount -o remount,bind,ro ${R}/usr`,
    `mount --bind ${libArch} ${R}/lib/${path.basename(libArch)}`,
    `exec node ${quote(kinstallBin)} ${args.map(quote).join(' ')}`,
  ].join('\n');
}

/** Starts kinstall in a private mount namespace where the root can be entered; not awaited. */
export function spawnInChrootRoot(
  r: TestRoot,
  args: string[],
  env: Record<string, string> = {},
): ResultPromise<{ reject: false; stdin: 'ignore' }> {
  return execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', namespaceScript(r, args)], {
    reject: false,
    stdin: 'ignore',
    env,
  });
}

/** Runs kinstall in a private mount namespace where the root can be entered. */
export async function kinstallInChrootRoot(r: TestRoot, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await spawnInChrootRoot(r, args, env);
  return { exitCode: result.exitCode ?? -1, signal: result.signal, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The host's mounts that name the root: none may outlive a run, whichever way it ended. */
export const mountsUnder = (r: TestRoot, mountsFile = '/proc/mounts'): string[] =>
  readFileSync(mountsFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(r.root));
