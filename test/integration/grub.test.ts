// The grub layout with the real grub-mkconfig from Debian's grub2-common, run by kinstall in a
// chroot of the test root. The root borrows the host's /usr in a private mount namespace, /boot is
// its own (tmpfs) filesystem as on a real machine, and only grub-probe is a stand-in.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { makeRoot, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const fakeGrubProbe = path.join(top, 'test/fakes/grub-probe');
const libArch = '/usr/lib/x86_64-linux-gnu';
let root: TestRoot | undefined;
afterEach(() => root?.cleanup());

/** A root that looks like an installed Debian to grub-mkconfig: its scripts, its defaults, /boot/grub. */
function grubRoot(): TestRoot {
  const r = makeRoot();
  for (const dir of ['/usr', '/dev', '/proc', '/var/log', '/boot/grub', '/etc/default', `/lib/${path.basename(libArch)}`]) {
    mkdirSync(r.at(dir), { recursive: true });
  }
  // The host is merged-/usr; /lib stays a real directory because makeRoot put modules there.
  for (const [link, target] of [['/bin', 'usr/bin'], ['/sbin', 'usr/sbin'], ['/lib64', 'usr/lib64']] as const) {
    execFileSync('ln', ['-s', target, r.at(link)]);
  }
  cpSync('/etc/grub.d', r.at('/etc/grub.d'), { recursive: true });
  writeFileSync(
    r.at('/etc/default/grub'),
    'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_DISTRIBUTOR=Kinstall\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n',
  );
  return r;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs kinstall with the given arguments inside a private mount namespace. /boot is a tmpfs there
 * (grub-mkrelpath then makes paths relative to it, as for a separate /boot partition); its final
 * content is copied back onto the root's real /boot before the namespace goes away.
 */
async function kinstallInNamespace(r: TestRoot, args: string[]) {
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
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { reject: false, stdin: 'ignore' });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const leakedMounts = (r: TestRoot) => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(r.root));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('grub layout with the real grub-mkconfig', () => {
  it('regenerates grub.cfg with entries for the new kernel and its initramfs; the old one kept as grub.cfg~', async () => {
    root = grubRoot();
    const oldCfg = '# the grub.cfg from before\n';
    writeFileSync(root.at('/boot/grub/grub.cfg'), oldCfg);
    const initrd = root.at('/prebuilt-initrd.img');
    writeFileSync(initrd, execFileSync('sh', ['-c', 'cd / && echo etc | cpio -o -H newc 2>/dev/null']));
    const result = await kinstallInNamespace(root, ['add', '--root', root.root, '--layout', 'grub', '--initrd', initrd, V, kernel.image]);
    expect(result.stderr).toContain(`installed ${V} (grub)`);
    expect(result.exitCode).toBe(0);
    expect(leakedMounts(root)).toEqual([]);

    const cfgPath = root.at('/boot/grub/grub.cfg');
    execFileSync('grub-script-check', [cfgPath]);
    const cfg = readFileSync(cfgPath, 'utf8');
    expect(cfg).toMatch(new RegExp(`menuentry 'Kinstall GNU/Linux, with Linux ${escape(V)}'`));
    expect(cfg).toMatch(new RegExp(`^\\s*linux\\s+/vmlinuz-${escape(V)} root=/dev/vda1 ro console=ttyS0 quiet$`, 'm'));
    expect(cfg).toMatch(new RegExp(`^\\s*initrd\\s+/initramfs-${escape(V)}\\.img$`, 'm'));
    expect(readFileSync(`${cfgPath}~`, 'utf8')).toBe(oldCfg);
    expect(readdirSync(root.at('/boot/grub')).sort()).toEqual(['grub.cfg', 'grub.cfg~']);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readFileSync(root.at(`/boot/initramfs-${V}.img`)).equals(readFileSync(initrd))).toBe(true);

    // The real grub-mkconfig asked the stand-in about / and /boot; the log proves it ran.
    const probes = readFileSync(root.at('/var/log/grub-probe.fake.log'), 'utf8');
    expect(probes).toContain('--target=device /boot');
    expect(probes).toContain('--target=fs_uuid');
  });

  it('a failing grub.d script: exit 5, the boot dir restored byte for byte', async () => {
    root = grubRoot();
    writeFileSync(root.at('/boot/grub/grub.cfg'), '# the grub.cfg from before\n');
    writeFileSync(root.at(`/boot/vmlinuz-${V}`), 'an older build of the same version\n');
    chmodSync(root.at(`/boot/vmlinuz-${V}`), 0o644);
    writeFileSync(root.at('/etc/grub.d/10_linux'), '#!/bin/sh\necho "10_linux: broken on purpose" >&2\nexit 1\n');
    const before = snapshotTree(root.boot);
    const result = await kinstallInNamespace(root, ['add', '--root', root.root, '--layout', 'grub', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: .*rolled back/m);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(leakedMounts(root)).toEqual([]);
  });

  it('a broken /etc/default/grub: exit 5, nothing changed', async () => {
    root = grubRoot();
    writeFileSync(root.at('/etc/default/grub'), 'GRUB_TIMEOUT=3\nif then fi\n');
    const before = snapshotTree(root.boot);
    const result = await kinstallInNamespace(root, ['add', '--root', root.root, '--layout', 'grub', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode).toBe(5);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(existsSync(root.at(`/boot/vmlinuz-${V}`))).toBe(false);
    expect(leakedMounts(root)).toEqual([]);
  });
});
