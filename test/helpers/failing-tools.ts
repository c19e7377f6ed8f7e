// Fault injection: test/fakes/failing-tool under the name of a real tool, first on PATH (tools
// kinstall runs on the host) or inside a test root with a shell to run it (tools run in a chroot).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { top } from './cli.js';
import type { TestRoot } from './root.js';

export const FAILING_TOOL = path.join(top, 'test/fakes/failing-tool');
const LOG = '/var/fake/failing-tools.log';

/**
 * The environment for a kinstall run in which each named tool fails: a directory of links to the
 * failing fake, first on PATH. `clobber` is a file the fake half-overwrites before it fails.
 */
export function failingToolsEnv(r: TestRoot, names: string[], clobber?: string): Record<string, string> {
  const bin = r.at('/var/fake/failing-bin');
  mkdirSync(bin, { recursive: true });
  for (const name of names) if (!existsSync(path.join(bin, name))) symlinkSync(FAILING_TOOL, path.join(bin, name));
  return {
    PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    FAILING_TOOL_LOG: r.at(LOG),
    ...(clobber ? { FAILING_TOOL_CLOBBER: clobber } : {}),
  };
}

/** The runs of failing fakes so far, one "NAME ARGS" line each (host-side runs). */
export const failingRuns = (r: TestRoot): string[] =>
  existsSync(r.at(LOG)) ? readFileSync(r.at(LOG), 'utf8').trim().split('\n') : [];

/** Copies a file into the root at a target path, executable. */
function copyInto(r: TestRoot, from: string, to: string): void {
  mkdirSync(path.dirname(r.at(to)), { recursive: true });
  copyFileSync(from, r.at(to));
  chmodSync(r.at(to), 0o755);
}

/**
 * A root that can run shell scripts in a chroot: dash (and its libraries) as /bin/sh. `tools` maps a
 * path inside the root to the script placed there.
 */
export function installInRoot(r: TestRoot, tools: Record<string, string>): void {
  const dash = '/usr/bin/dash';
  const libs = execFileSync('ldd', [dash], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
  for (const lib of libs) copyInto(r, lib, lib);
  copyInto(r, dash, '/bin/sh');
  for (const [to, from] of Object.entries(tools)) copyInto(r, from, to);
  mkdirSync(r.at('/var/log'), { recursive: true });
}

/** Runs of failing fakes made inside the root's chroot: they log to /var/log/failing-tools.log there. */
export const CHROOT_LOG = '/var/log/failing-tools.log';
export const failingRunsInRoot = (r: TestRoot): string[] =>
  existsSync(r.at(CHROOT_LOG)) ? readFileSync(r.at(CHROOT_LOG), 'utf8').trim().split('\n') : [];
