// Under --root the target's hooks run inside the target: chroot with /proc, /sys and /dev, in a
// private mount namespace that ends with the hook (no mount outlives a run, even a killed one),
// the paths they get as the target sees them; kinstall's own hooks.d stays on the host. A target
// that cannot run its hooks is a preflight error; targetHooks = "skip" installs without them.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { kinstallInChrootRoot, makeChrootRoot, mountsUnder, spawnInChrootRoot } from '../helpers/chroot-root.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const newRoot = useScratchRoots();

/** A Gentoo-like target kinstall can enter: compat layout, no initramfs generator. */
function gentooChrootRoot(conf = 'layout=compat\ninitrd_generator=none\n'): TestRoot {
  const r = newRoot.adopt(makeChrootRoot());
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/install.conf'), conf);
  // Else the host's /usr/lib/os-release (Debian), bound in, would make it a Debian target.
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  return r;
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n');

describe("the target's hooks run inside the target", () => {
  it("a Gentoo .install logger writes inside the target only, sees the target's paths, /proc, /dev and /sys; kinstall's hooks.d runs on the host", async () => {
    const r = gentooChrootRoot();
    // A path no test and no host service writes: it must appear in the target, never on the host.
    const logName = `/var/log/kinstall-chroot-${randomBytes(6).toString('hex')}.log`;
    writeHook(
      r,
      '/etc/kernel/preinst.d',
      '10-sees.install',
      [
        'set -e',
        'out=/var/tmp/sees.txt',
        'printf "args=%s\\n" "$*" > $out',
        'printf "staging=%s\\n" "$INSTALLKERNEL_STAGING_AREA" >> $out',
        'printf "root=%s %s\\n" "$KINSTALL_ROOT" "$INSTALLKERNEL_ROOT" >> $out',
        'printf "image=%s boot=%s\\n" "$KINSTALL_IMAGE" "$KINSTALL_BOOT_DIR" >> $out',
        'test -d "$INSTALLKERNEL_STAGING_AREA" && echo "staging-visible" >> $out',
        'test -r /proc/self/status && echo "proc" >> $out',
        'test -c /dev/null && echo "dev" >> $out',
        'test -d /sys/kernel && echo "sys" >> $out',
        'grep -c " /proc proc " /proc/self/mounts >/dev/null && echo "proc-mounted" >> $out',
      ].join('\n'),
    );
    writeHook(
      r,
      '/etc/kernel/postinst.d',
      '95-testlog.install',
      `printf '%s\\t%s\\t%s\\n' "$1" "$2" "$INSTALLKERNEL_LAYOUT" >> ${logName}`,
    );
    const result = await kinstallInChrootRoot(r, ['add', '--root', r.root, '--verbose', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);

    expect(readFileSync(r.at(logName), 'utf8')).toBe(`${V}\t/boot/vmlinuz-${V}\tcompat\n`);
    expect(existsSync(logName)).toBe(false);
    const seen = lines(r.at('/var/tmp/sees.txt'));
    expect(seen[0]).toBe(`args=${V} /lib/modules/${V}/vmlinuz`);
    expect(seen[1]).toMatch(/^staging=\/var\/tmp\/kinstall-\S+$/);
    expect(seen.slice(2)).toEqual([
      'root=/ /',
      `image=/lib/modules/${V}/vmlinuz boot=/boot`,
      'staging-visible',
      'proc',
      'dev',
      'sys',
      'proc-mounted',
    ]);
    // The staging area was inside the target and is gone with the run.
    expect(existsSync(r.at(seen[1]?.slice('staging='.length) ?? '/nonexistent'))).toBe(false);
    // kinstall's shipped 50-dkms is judged on the host: its need (dkms) looked for in the target.
    expect(result.stderr).toContain(`/hooks.d/50-dkms: it needs dkms, which is not installed in ${r.root} (its`);
    expect(mountsUnder(r)).toEqual([]);
  });

  it("systemd 252's own 90-loaderentry.install (the host's /usr bound in) writes the entry in the target's ESP", async () => {
    const r = newRoot.adopt(makeChrootRoot());
    mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
    mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/install.conf'), 'layout=bls\ninitrd_generator=none\n');
    writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro chroot-test\n');
    writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
    writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ runRedundant: ['90-loaderentry.install'] }));
    // A recorder beside it, to see what kernel-install's plugins are handed inside the target.
    writeHook(
      r,
      '/etc/kernel/install.d',
      '95-record.install',
      'printf "%s\\n" "$@" "$KERNEL_INSTALL_BOOT_ROOT" "$KERNEL_INSTALL_CONF_ROOT" > /var/tmp/record.txt',
    );
    const result = await kinstallInChrootRoot(r, ['add', '--root', r.root, '--verbose', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/running kernel-install hook \S+\/usr\/lib\/kernel\/install\.d\/90-loaderentry\.install add /);
    const entry = readFileSync(r.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`), 'utf8');
    // 90-loaderentry's own lines: the command line with the machine id it appends; /efi is no mount
    // point in the test root, so its paths start there.
    expect(entry).toMatch(/^options +root=\/dev\/vda2 ro chroot-test systemd\.machine_id=0123456789abcdef0123456789abcdef$/m);
    expect(entry).toMatch(new RegExp(`^linux +/efi/${MACHINE_ID}/${V}/linux$`, 'm'));
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/linux`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(lines(r.at('/var/tmp/record.txt'))).toEqual([
      'add',
      V,
      `/efi/${MACHINE_ID}/${V}`,
      `/lib/modules/${V}/vmlinuz`,
      '/efi',
      '/etc/kernel',
    ]);
    expect(mountsUnder(r)).toEqual([]);
  });

  it('a failing hook inside the target: exit 5, rolled back, no mount left', async () => {
    const r = gentooChrootRoot();
    writeHook(r, '/etc/kernel/preinst.d', '40-fails.install', 'test -d /proc/1 || exit 2\nexit 3');
    const before = snapshotTree(r.boot);
    const result = await kinstallInChrootRoot(r, ['add', '--root', r.root, V, kernel.image]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      /^kinstall: EHOOK: hook \S+\/etc\/kernel\/preinst\.d\/40-fails\.install failed with exit code 3/m,
    );
    expect(snapshotTree(r.boot)).toEqual(before);
    expect(mountsUnder(r)).toEqual([]);
  });

  it('kinstall killed (SIGKILL) while a hook runs inside the target: no mount outlives the hook', async () => {
    const r = gentooChrootRoot();
    writeHook(
      r,
      '/etc/kernel/preinst.d',
      '30-slow.install',
      'echo "$PPID $$" > /var/tmp/started\nsleep 3\necho done > /var/tmp/finished',
    );
    const run = spawnInChrootRoot(r, ['add', '--root', r.root, V, kernel.image]);
    const started = r.at('/var/tmp/started');
    for (let i = 0; i < 600 && !existsSync(started); i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    const [kinstallPid, hookPid] = readFileSync(started, 'utf8').trim().split(' ').map(Number);
    // The hook runs in a mount namespace of its own (its mount table, shown from its chroot, has
    // the target's /proc); the host's table never names the root.
    expect(readlinkSync(`/proc/${hookPid}/ns/mnt`)).not.toBe(readlinkSync('/proc/self/ns/mnt'));
    expect(readFileSync(`/proc/${hookPid}/mounts`, 'utf8')).toMatch(/^proc \/proc proc /m);
    expect(mountsUnder(r)).toEqual([]);
    process.kill(kinstallPid ?? 0, 'SIGKILL');
    const result = await run;
    expect(result.signal).toBe('SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${hookPid}`); i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(existsSync(`/proc/${hookPid}`)).toBe(false);
    expect(readFileSync(r.at('/var/tmp/finished'), 'utf8')).toBe('done\n');
    expect(mountsUnder(r)).toEqual([]);
  });

  it('removal: prerm and postrm hooks run inside the target with its paths', async () => {
    const r = gentooChrootRoot();
    const added = await kinstallInChrootRoot(r, ['add', '--root', r.root, V, kernel.image]);
    expect(added.exitCode, added.stderr).toBe(0);
    for (const phase of ['prerm', 'postrm'])
      writeHook(
        r,
        `/etc/kernel/${phase}.d`,
        `10-${phase}`,
        `echo "${phase} $* $KINSTALL_ROOT" >> /var/tmp/removal.txt; test -c /dev/null`,
      );
    const result = await kinstallInChrootRoot(r, ['remove', '--root', r.root, V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(lines(r.at('/var/tmp/removal.txt'))).toEqual([`prerm ${V} /boot/vmlinuz-${V} /`, `postrm ${V} /boot/vmlinuz-${V} /`]);
    expect(mountsUnder(r)).toEqual([]);
  });
});

describe('a target that cannot run its hooks', () => {
  /** A bare root (no /bin/sh) with targetHooks at its default, and a shell hook in it. */
  function bareRoot(config: Record<string, unknown> = {}): TestRoot {
    const r = newRoot();
    mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/install.conf'), 'layout=compat\ninitrd_generator=none\n');
    const existing = JSON.parse(readFileSync(r.at('/etc/kinstall/config.json'), 'utf8')) as Record<string, unknown>;
    delete existing.targetHooks;
    writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ ...existing, ...config }));
    writeHook(r, '/etc/kernel/postinst.d', '90-needs-sh.install', 'echo ran > /var/tmp/ran');
    return r;
  }

  it('without /bin/sh in the target: a preflight error naming the hooks, exit 4, nothing changed', async () => {
    const r = bareRoot();
    const before = snapshotTree(r.root);
    const result = await kinstall(['add', '--root', r.root, V, kernel.image]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: ETARGETHOOKS: the target's hooks cannot run inside ${r.root}: /etc/kernel/postinst.d/90-needs-sh.install \\(set "targetHooks": "skip" to install without them\\)$`,
        'm',
      ),
    );
    expect(result.stderr).toContain(
      '/etc/kernel/postinst.d/90-needs-sh.install: its interpreter: /bin/sh does not exist in the target',
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('targetHooks = "skip": installed without the target\'s hooks, each skip shown with --verbose', async () => {
    const r = bareRoot({ targetHooks: 'skip' });
    const result = await kinstall(['add', '--root', r.root, '--verbose', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(existsSync(r.at('/var/tmp/ran'))).toBe(false);
    expect(existsSync(r.at(`/boot/vmlinuz-${V}`))).toBe(true);
    expect(result.stderr).toContain(
      `not running ${r.at('/etc/kernel/postinst.d/90-needs-sh.install')}: the target's hooks do not run under --root (targetHooks is "skip")`,
    );
    // kinstall's own hooks.d is not the target's: judged by its own declarations, not by targetHooks.
    expect(result.stderr).toMatch(/not running \S+\/hooks\.d\/50-dkms: it needs dkms, which is not installed in /);
    expect(result.stderr).not.toMatch(/not running \S+\/hooks\.d\/50-dkms: the target's hooks/);
  });

  it('a hook built for another architecture: a preflight error naming it', async () => {
    const r = bareRoot({ targetHooks: 'run' });
    // An ELF header for aarch64 (e_machine 183) where the host is x86_64.
    const elf = Buffer.alloc(64);
    elf.write('\x7fELF', 0, 'latin1');
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(183, 18);
    mkdirSync(r.at('/etc/kernel/preinst.d'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/preinst.d/20-arm64'), elf, { mode: 0o755 });
    const result = await kinstall(['add', '--root', r.root, V, kernel.image]);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: ETARGETHOOKS: .*: \/etc\/kernel\/preinst\.d\/20-arm64, \/etc\/kernel\/postinst\.d\/90-needs-sh\.install /m,
    );
    expect(result.stderr).toContain(
      '/etc/kernel/preinst.d/20-arm64: /etc/kernel/preinst.d/20-arm64 is built for another architecture (ELF machine 183) than this host (x64)',
    );
  });
});
