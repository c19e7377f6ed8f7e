// The grub layout with the real grub-mkconfig (Debian's grub2-common), as the grub tests run it:
// kinstall runs it in a chroot of the test root, which borrows the host's /usr in a private mount
// namespace; /boot is its own (tmpfs) filesystem there, and only grub-probe is a stand-in.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { kinstallBin, top } from './cli.js';
import type { TestRoot } from './root.js';

const fakeGrubProbe = path.join(top, 'test/fakes/grub-probe');
const libArch = '/usr/lib/x86_64-linux-gnu';

/** Makes a root look like an installed Debian to grub-mkconfig: its scripts, its defaults, /boot/grub. */
export function makeGrubRoot(r: TestRoot): void {
  for (const dir of ['/usr', '/dev', '/proc', '/var/log', '/boot/grub', '/etc/default', `/lib/${path.basename(libArch)}`]) {
    mkdirSync(r.at(dir), { recursive: true });
  }
  // The host is merged-/usr; /lib stays a real directory because kernels are staged there.
  for (const [link, target] of [['/bin', 'usr/bin'], ['/sbin', 'usr/sbin'], ['/lib64', 'usr/lib64']] as const) {
    execFileSync('ln', ['-s', target, r.at(link)]);
  }
  cpSync('/etc/grub.d', r.at('/etc/grub.d'), { recursive: true });
  writeFileSync(
    r.at('/etc/default/grub'),
    'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_DISTRIBUTOR=Kinstall\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n',
  );
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** How the shell reports a kinstall killed by SIGKILL (128 + 9). */
export const KILLED_STATUS = 137;

/**
 * Runs kinstall with ARGS inside a private mount namespace, where /boot is a tmpfs (grub-mkrelpath
 * then makes paths relative to it, as for a separate /boot partition); whatever kinstall left there,
 * even killed, is copied back onto the root's real /boot before the namespace goes away.
 */
export async function kinstallInNamespace(r: TestRoot, args: string[], env: Record<string, string> = {}) {
  const R = quote(r.root);
  const boot = quote(r.boot);
  const stash = quote(`${r.root}/.boot-stash`);
  const script = [
    'set -e',
    `mount --bind /usr ${R}/usr`,
    `mount -o remount,bind,ro ${R}/usr`,
    `mount --bind ${libArch} ${R}/lib/${path.basename(libArch)}`,
    `mount --bind /dev ${R}/dev`,
    `mount -t proc proc ${R}/proc`,
    `mount --bind ${quote(fakeGrubProbe)} ${R}/usr/sbin/grub-probe`,
    `cp -a ${boot}/. ${stash}/`,
    `mount -t tmpfs -o mode=0755 tmpfs ${boot}`,
    `cp -a ${stash}/. ${boot}/`,
    `rm -rf ${stash} && mkdir ${stash}`,
    'set +e',
    `node ${quote(kinstallBin)} ${args.map(quote).join(' ')}`,
    'status=$?',
    'set -e',
    `cp -a ${boot}/. ${stash}/`,
    `umount ${boot}`,
    `rm -rf ${boot} && mv ${stash} ${boot}`,
    'exit $status',
  ].join('\n');
  mkdirSync(`${r.root}/.boot-stash`);
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false, stdin: 'ignore', env });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}
