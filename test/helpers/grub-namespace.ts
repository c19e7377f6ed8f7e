// The real grub-mkconfig (Debian's grub2-common) for a test root: kinstall runs it in a chroot of
// the root, which borrows the host's /usr and /etc/grub.d inside a private mount namespace, with
// /boot its own (tmpfs) filesystem as on a real machine. Only grub-probe is a stand-in.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { kinstallBin, top, type CliResult } from './cli.js';
import type { TestRoot } from './root.js';

const fakeGrubProbe = path.join(top, 'test/fakes/grub-probe');
const libArch = '/usr/lib/x86_64-linux-gnu';

/** Makes a root look like an installed Debian to grub-mkconfig: its scripts, these defaults, /boot/grub. */
export function prepareGrubRoot(r: TestRoot, defaults: string): TestRoot {
  for (const dir of ['/usr', '/dev', '/proc', '/var/log', '/boot/grub', '/etc/default', `/lib/${path.basename(libArch)}`]) {
    mkdirSync(r.at(dir), { recursive: true });
  }
  // The host is merged-/usr; /lib stays a real directory because makeRoot put modules there.
  for (const [link, target] of [
    ['/bin', 'usr/bin'],
    ['/sbin', 'usr/sbin'],
    ['/lib64', 'usr/lib64'],
  ] as const) {
    execFileSync('ln', ['-s', target, r.at(link)]);
  }
  cpSync('/etc/grub.d', r.at('/etc/grub.d'), { recursive: true });
  writeFileSync(r.at('/etc/default/grub'), defaults);
  return r;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs kinstall with the given arguments inside a private mount namespace. /boot is a tmpfs there
 * (grub-mkrelpath then makes paths relative to it, as for a separate /boot partition); its final
 * content is copied back onto the root's real /boot before the namespace goes away, also when
 * kinstall was killed (the shell's status is then 128 + the signal).
 */
export async function kinstallInNamespace(r: TestRoot, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
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
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    reject: false,
    stdin: 'ignore',
    env,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Mounts of the host that still name the root: none may outlive the namespace. */
export const leakedMounts = (r: TestRoot) =>
  readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(r.root));

/** The kernel versions a grub.cfg boots (its `linux /vmlinuz-KVER` lines), sorted, each once. */
export function grubCfgVersions(cfg: string): string[] {
  return [...new Set([...cfg.matchAll(/^\s*linux\s+\S*\/vmlinuz-(\S+)/gm)].map((m) => m[1] ?? ''))].sort();
}

/** How the shell reports a kinstall killed by SIGKILL (128 + 9). */
export const KILLED_STATUS = 137;

/** The grub root the crash tests use: Debian-like defaults with a serial console. */
export function makeGrubRoot(r: TestRoot): TestRoot {
  return prepareGrubRoot(
    r,
    'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_DISTRIBUTOR=Kinstall\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n',
  );
}

const GRUB_MODULE_DIR = '/usr/lib/grub/x86_64-efi';
/** The modules built into the image: enough to find /boot and read grub.cfg; the rest load from the prefix. */
const GRUB_CORE_MODULES = [
  'part_gpt',
  'part_msdos',
  'fat',
  'normal',
  'linux',
  'configfile',
  'search',
  'echo',
  'all_video',
  'test',
  'gzio',
];

/**
 * The real GRUB EFI loader for a boot disk whose filesystem is the root's /boot, as grub-install
 * would leave it: a grub-mkimage image (written to `image`, a scratch path) at the removable path
 * EFI/BOOT/BOOTX64.EFI with its prefix /grub (so grub.cfg and grubenv are /boot/grub's), and every
 * module and list under grub/x86_64-efi for insmod and load_env/save_env. For buildBootDisk's `add`.
 */
export function grubEfiFiles(image: string): Record<string, string> {
  execFileSync('grub-mkimage', ['-O', 'x86_64-efi', '-p', '/grub', '-o', image, ...GRUB_CORE_MODULES]);
  const files: Record<string, string> = { 'EFI/BOOT/BOOTX64.EFI': image };
  for (const name of readdirSync(GRUB_MODULE_DIR).filter((n) => /\.(mod|lst)$/.test(n))) {
    files[`grub/x86_64-efi/${name}`] = path.join(GRUB_MODULE_DIR, name);
  }
  return files;
}
