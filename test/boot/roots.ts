// Target roots for boot tests: kinstall installs the real kernel into them with an initramfs from
// its dracut plugin that carries the marker hooks; each layout's test then boots the result.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kinstall } from '../helpers/cli.js';
import { BOOT_CMDLINE, MARKER_HOOK_FILES, markerDracutArgs, type BootVerdict } from '../helpers/boot.js';
import { testKernel } from '../helpers/kernel.js';
import { makeRoot, type TestRoot } from '../helpers/root.js';

export const kernel = testKernel();
export const V = kernel.version;
export const MACHINE_ID = '6b696e7374616c6c2d626f6f74746573';

/** A root with the test kernel's modules, a command line, a machine id and the marker dracut config. */
export function bootRoot(pluginOptions: Record<string, unknown> = {}): TestRoot {
  const root = makeRoot({ modules: true, config: false });
  // Not a chrootable system: any hooks the root shows (the host's /usr bound in by the grub test)
  // run on the host with the root's paths, as makeRoot's roots do.
  const config = { dracut: { args: markerDracutArgs(root) }, targetHooks: 'host', ...pluginOptions };
  writeFileSync(root.at('/etc/kinstall/config.json'), JSON.stringify(config, null, 2));
  mkdirSync(root.at('/etc/kernel'), { recursive: true });
  writeFileSync(root.at('/etc/kernel/cmdline'), `${BOOT_CMDLINE}\n`);
  writeFileSync(root.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(root.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  return root;
}

/** kinstall add of the test kernel; throws with kinstall's own words when it fails. */
export async function install(root: TestRoot, args: string[], env?: Record<string, string>): Promise<void> {
  const result = await kinstall(['add', '--root', root.root, ...args, V, kernel.image], { env });
  if (result.exitCode !== 0) throw new Error(`kinstall add ${args.join(' ')} exited ${result.exitCode}:\n${result.stderr}`);
}

/** The marker hooks must be in the initramfs (or UKI) kinstall built, else a boot proves nothing. */
export function hasMarkerHooks(image: string): boolean {
  const listing = execFileSync('lsinitrd', [image], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return MARKER_HOOK_FILES.every((file) => listing.includes(file));
}

/** A per-root scratch file for images and logs, removed with the root. */
export const scratch = (root: TestRoot, name: string) => path.join(root.root, 'boot-test', name);

export function scratchDir(root: TestRoot): void {
  mkdirSync(path.join(root.root, 'boot-test'), { recursive: true });
}

/** Boot times, printed once per file so the report shows what each boot cost. */
export function reportTime(label: string, verdict: BootVerdict): void {
  const outcome = verdict.booted ? 'booted' : `failed (${verdict.reason}: ${verdict.evidence})`;
  process.stderr.write(`boot ${label}: ${outcome} in ${verdict.seconds.toFixed(1)} s\n`);
}
