// Hooks: the one order across kinstall's and Gentoo's directories, masking, exit 77, arguments and
// environment, what a failing hook does in each phase; and the shipped hooks.d/50-dkms.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { kinstall, kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot, writeHook } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

const addArgs = (r: TestRoot, ...extra: string[]) => [
  'add',
  '--root',
  r.root,
  '--layout',
  'compat',
  '--initramfs',
  'none',
  ...extra,
  V,
  kernel.image,
];

const hook = writeHook;

/** A hook that appends "PHASE NAME ARGS" to <root>/var/tmp/hooks.log. */
const recorder = (r: TestRoot, dir: string, name: string, then = '') =>
  hook(r, dir, name, `printf '%s %s %s\\n' "$KINSTALL_PHASE" ${name} "$*" >> ${r.at('/var/tmp/hooks.log')}\n${then}`);

const hookLog = (r: TestRoot) =>
  existsSync(r.at('/var/tmp/hooks.log')) ? readFileSync(r.at('/var/tmp/hooks.log'), 'utf8').trim().split('\n') : [];

function rootWithModules(): TestRoot {
  const r = newRoot();
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/var/tmp'), { recursive: true });
  return r;
}

describe('hook order, arguments and masking', () => {
  it('runs every directory of both families in one version order per phase, with VERSION IMAGE', async () => {
    root = rootWithModules();
    recorder(root, '/usr/lib/kinstall/hooks.d', '10-usrlib-kinstall');
    recorder(root, '/etc/kinstall/hooks.d', '20-etc-kinstall');
    recorder(root, '/etc/kernel/preinst.d', '05-etc-kernel-pre');
    recorder(root, '/usr/lib/kernel/preinst.d', '25-usrlib-kernel-pre');
    recorder(root, '/etc/kernel/postinst.d', '15-etc-kernel-post');
    recorder(root, '/usr/lib/kernel/postinst.d', '30-usrlib-kernel-post');
    // Editor backups and package-manager leftovers never run (plugins-gentoo.test.ts has the full list).
    recorder(root, '/etc/kinstall/hooks.d', '20-etc-kinstall.bak');
    recorder(root, '/etc/kernel/postinst.d', '40-new.dpkg-dist');
    const result = await kinstall(addArgs(root));
    expect(result.exitCode, result.stderr).toBe(0);
    const boot = root.at(`/boot/vmlinuz-${V}`);
    const staged = root.at(`/lib/modules/${V}/vmlinuz`);
    expect(hookLog(root)).toEqual([
      `preinst 05-etc-kernel-pre ${V} ${staged}`,
      `preinst 10-usrlib-kinstall ${V} ${staged}`,
      `preinst 20-etc-kinstall ${V} ${staged}`,
      `preinst 25-usrlib-kernel-pre ${V} ${staged}`,
      `postinst 10-usrlib-kinstall ${V} ${boot}`,
      `postinst 15-etc-kernel-post ${V} ${boot}`,
      `postinst 20-etc-kinstall ${V} ${boot}`,
      `postinst 30-usrlib-kernel-post ${V} ${boot}`,
    ]);
  });

  it('a same-named file in /etc replaces the /usr/lib one; an empty file or a /dev/null link disables it', async () => {
    root = rootWithModules();
    recorder(root, '/usr/lib/kinstall/hooks.d', '10-replaced');
    hook(root, '/etc/kinstall/hooks.d', '10-replaced', `echo "etc version $KINSTALL_PHASE" >> ${root.at('/var/tmp/hooks.log')}`);
    recorder(root, '/usr/lib/kinstall/hooks.d', '20-emptied');
    writeFileSync(root.at('/etc/kinstall/hooks.d/20-emptied'), '');
    recorder(root, '/usr/lib/kernel/postinst.d', '30-nulled');
    mkdirSync(root.at('/etc/kernel/postinst.d'), { recursive: true });
    symlinkSync('/dev/null', root.at('/etc/kernel/postinst.d/30-nulled'));
    recorder(root, '/usr/lib/kernel/postinst.d', '40-kept');
    const result = await kinstall(addArgs(root));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(hookLog(root)).toEqual([
      'etc version preinst',
      'etc version postinst',
      `postinst 40-kept ${V} ${root.at(`/boot/vmlinuz-${V}`)}`,
    ]);
  });

  it('exit 77 stops the rest of that phase successfully; the other phase still runs', async () => {
    root = rootWithModules();
    recorder(root, '/etc/kinstall/hooks.d', '10-first', '[ "$KINSTALL_PHASE" = preinst ] && exit 77\nexit 0');
    recorder(root, '/etc/kinstall/hooks.d', '20-second');
    recorder(root, '/etc/kernel/preinst.d', '30-third');
    const result = await kinstall(addArgs(root));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(hookLog(root).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([
      'preinst 10-first',
      'postinst 10-first',
      'postinst 20-second',
    ]);
    expect(existsSync(root.at(`/boot/vmlinuz-${V}`))).toBe(true);
  });
});

describe('hook environment', () => {
  it('KINSTALL_* and the INSTALLKERNEL_* names Gentoo hooks read, in both phases', async () => {
    root = rootWithModules();
    const names = ['PHASE', 'LAYOUT', 'INITRD_GENERATOR', 'STAGING_AREA', 'ROOT', 'VERBOSE'];
    const record = [...names.map((n) => `KINSTALL_${n}`), ...names.filter((n) => n !== 'PHASE').map((n) => `INSTALLKERNEL_${n}`)]
      .map((v) => `echo "${v}=$${v}"`)
      .join('\n');
    hook(
      root,
      '/etc/kinstall/hooks.d',
      '10-env',
      `{\n${record}\necho "staging-is-dir=$([ -d "$KINSTALL_STAGING_AREA" ] && echo yes)"\n} >> ${root.at('/var/tmp/env.$KINSTALL_PHASE')}`,
    );
    const result = await kinstall(addArgs(root, '--verbose'));
    expect(result.exitCode, result.stderr).toBe(0);
    for (const phase of ['preinst', 'postinst']) {
      const env = Object.fromEntries(
        readFileSync(root.at(`/var/tmp/env.${phase}`), 'utf8')
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({
        KINSTALL_PHASE: phase,
        KINSTALL_LAYOUT: 'compat',
        KINSTALL_INITRD_GENERATOR: 'none',
        KINSTALL_ROOT: root.root,
        KINSTALL_VERBOSE: '1',
        INSTALLKERNEL_LAYOUT: 'compat',
        INSTALLKERNEL_INITRD_GENERATOR: 'none',
        INSTALLKERNEL_ROOT: root.root,
        INSTALLKERNEL_VERBOSE: '1',
        'staging-is-dir': 'yes',
      });
      expect(env.KINSTALL_STAGING_AREA).toMatch(/^\/.+/);
      expect(env.INSTALLKERNEL_STAGING_AREA).toBe(env.KINSTALL_STAGING_AREA);
    }
  });
});

describe('failing hooks', () => {
  it('a failing preinst hook aborts with exit 5 (EHOOK), later hooks do not run, the boot dir unchanged', async () => {
    root = rootWithModules();
    recorder(root, '/etc/kernel/preinst.d', '10-fails', 'exit 3');
    recorder(root, '/etc/kernel/preinst.d', '20-after');
    const before = snapshotTree(root.boot);
    const result = await kinstall(addArgs(root));
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: EHOOK: hook ${root.at('/etc/kernel/preinst.d/10-fails')} failed with exit code 3`, 'm'),
    );
    expect(hookLog(root)).toEqual([`preinst 10-fails ${V} ${root.at(`/lib/modules/${V}/vmlinuz`)}`]);
    expect(snapshotTree(root.boot)).toEqual(before);
    // The staged image is rolled back (depmod's index files too: faults.test.ts).
    expect(existsSync(root.at(`/lib/modules/${V}/vmlinuz`))).toBe(false);
  });

  it('a failing postinst hook: exit 7 (EPOSTINST), the kernel stays installed, later hooks still run', async () => {
    root = rootWithModules();
    recorder(root, '/etc/kernel/postinst.d', '10-fails', 'exit 9');
    recorder(root, '/etc/kernel/postinst.d', '20-after');
    const result = await kinstall(addArgs(root));
    expect(result.exitCode).toBe(7);
    expect(result.stderr).toMatch(
      /^kinstall: EPOSTINST: kernel installed, but 1 postinst hook\(s\) failed: .*10-fails \(exit 9\)/m,
    );
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(hookLog(root).map((l) => l.split(' ')[1])).toEqual(['10-fails', '20-after']);
  });
});

describe("hooks around a removal (Debian's prerm.d and postrm.d)", () => {
  const installed = async () => {
    const r = rootWithModules();
    expect((await kinstall(addArgs(r))).exitCode).toBe(0);
    return r;
  };
  const image = (r: TestRoot) => r.at(`/boot/vmlinuz-${V}`);

  it('prerm runs before anything is removed, postrm after, with VERSION IMAGE; kinstall dirs see the phase', async () => {
    const r = await installed();
    root = r;
    const seen = (name: string) =>
      `printf '%s %s present=%s\\n' "$KINSTALL_PHASE" ${name} "$([ -e "$2" ] && echo yes || echo no)" >> ${r.at('/var/tmp/rm.log')}`;
    recorder(root, '/etc/kernel/prerm.d', '10-prerm', seen('10-prerm'));
    recorder(root, '/etc/kernel/postrm.d', '10-postrm', seen('10-postrm'));
    recorder(root, '/etc/kinstall/hooks.d', '20-both');
    const result = await kinstall(['remove', '--root', root.root, '--layout', 'compat', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(hookLog(root)).toEqual([
      `prerm 10-prerm ${V} ${image(root)}`,
      `prerm 20-both ${V} ${image(root)}`,
      `postrm 10-postrm ${V} ${image(root)}`,
      `postrm 20-both ${V} ${image(root)}`,
    ]);
    expect(readFileSync(root.at('/var/tmp/rm.log'), 'utf8')).toBe('prerm 10-prerm present=yes\npostrm 10-postrm present=no\n');
    expect(existsSync(image(root))).toBe(false);
  });

  it('a kinstall hook starts only in the phases its kinstall-phases line names; a line naming none counts as absent', async () => {
    const r = rootWithModules();
    root = r;
    const log = `printf '%s %s\\n' "$KINSTALL_PHASE" "$(basename "$0")" >> ${r.at('/var/tmp/hooks.log')}`;
    hook(r, '/etc/kinstall/hooks.d', '10-removal-only', `# kinstall-phases: prerm, postrm\n${log}`);
    hook(r, '/etc/kinstall/hooks.d', '20-install-only', `# kinstall-phases: postinst\n${log}`);
    hook(r, '/etc/kinstall/hooks.d', '30-unknown', `# kinstall-phases: sometimes\n${log}`);
    expect((await kinstall(addArgs(r))).exitCode).toBe(0);
    const removed = await kinstall(['remove', '--root', r.root, '--layout', 'compat', '--verbose', V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(hookLog(r)).toEqual([
      'preinst 30-unknown',
      'postinst 20-install-only',
      'postinst 30-unknown',
      'prerm 10-removal-only',
      'prerm 30-unknown',
      'postrm 10-removal-only',
      'postrm 30-unknown',
    ]);
    expect(removed.stderr).toContain(
      `not running ${r.at('/etc/kinstall/hooks.d/20-install-only')}: it acts only in postinst (its "# kinstall-phases:" line)`,
    );
  });

  it('a failing prerm hook stops the removal: exit 5 (EHOOK), nothing removed', async () => {
    root = await installed();
    hook(root, '/etc/kernel/prerm.d', '10-no', 'exit 4');
    const before = { boot: snapshotTree(root.boot), modules: snapshotTree(root.at('/lib/modules')) };
    const result = await kinstall(['remove', '--root', root.root, '--layout', 'compat', V]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: EHOOK: hook ${root.at('/etc/kernel/prerm.d/10-no')} failed with exit code 4`, 'm'),
    );
    expect({ boot: snapshotTree(root.boot), modules: snapshotTree(root.at('/lib/modules')) }).toEqual(before);
  });

  it('a failing postrm hook: exit 7 (EPOSTRM), the kernel stays removed', async () => {
    root = await installed();
    hook(root, '/etc/kernel/postrm.d', '10-no', 'exit 6');
    const result = await kinstall(['remove', '--root', root.root, '--layout', 'compat', V]);
    expect(result.exitCode).toBe(7);
    expect(result.stderr).toMatch(/^kinstall: EPOSTRM: kernel removed, but 1 postrm hook\(s\) failed: \S+10-no \(exit 6\)$/m);
    expect(existsSync(image(root))).toBe(false);
    expect(existsSync(root.at(`/lib/modules/${V}`))).toBe(false);
  });
});

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The shipped 50-dkms runs dkms inside the target (chroot), so the root borrows the host's /usr
 * in a private mount namespace, with the fake dkms on a tmpfs at <root>/usr/local/sbin.
 */
async function kinstallWithFakeDkms(r: TestRoot, args: string[]) {
  const R = quote(r.root);
  for (const dir of ['/usr', '/dev', '/var/log', '/lib/x86_64-linux-gnu']) mkdirSync(r.at(dir), { recursive: true });
  for (const [link, target] of [
    ['/bin', 'usr/bin'],
    ['/sbin', 'usr/sbin'],
    ['/lib64', 'usr/lib64'],
  ] as const)
    execFileSync('ln', ['-s', target, r.at(link)]);
  const script = [
    'set -e',
    `mount --bind /usr ${R}/usr`,
    `mount -o remount,bind,ro ${R}/usr`,
    `mount --bind /usr/lib/x86_64-linux-gnu ${R}/lib/x86_64-linux-gnu`,
    `mount --bind /dev ${R}/dev`,
    `mount -t tmpfs tmpfs ${R}/usr/local`,
    `mkdir ${R}/usr/local/sbin`,
    `cp ${quote(path.join(top, 'test/fakes/dkms'))} ${R}/usr/local/sbin/dkms`,
    `exec node ${quote(kinstallBin)} ${args.map(quote).join(' ')}`,
  ].join('\n');
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    reject: false,
    stdin: 'ignore',
  });
  expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(r.root);
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const dkmsLog = (r: TestRoot) =>
  existsSync(r.at('/var/log/dkms.fake.log')) ? readFileSync(r.at('/var/log/dkms.fake.log'), 'utf8') : '';

describe('shipped hook 50-dkms', () => {
  it('is POSIX sh and shellcheck-clean', () => {
    execFileSync('shellcheck', ['--shell=sh', path.join(top, 'hooks.d/50-dkms'), path.join(top, 'test/fakes/dkms')]);
  });

  it('runs dkms autoinstall -k VERSION in the target, once, in preinst: before the initramfs is made', async () => {
    root = rootWithModules();
    mkdirSync(root.at(`/lib/modules/${V}/build`));
    const result = await kinstallWithFakeDkms(root, [...addArgs(root), '--verbose']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(dkmsLog(root)).toBe(`autoinstall -k ${V}\n`);
    expect(result.stderr).toContain(`Autoinstall on ${V} succeeded`);
    const built = result.stderr.indexOf('50-dkms: dkms autoinstall');
    expect(built).toBeGreaterThan(-1);
    expect(built).toBeLessThan(result.stderr.indexOf('step initramfs: start'));
  });

  it('skips a kernel without headers (no build dir) with a message', async () => {
    root = rootWithModules();
    const result = await kinstallWithFakeDkms(root, addArgs(root));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(dkmsLog(root)).toBe('');
    expect(result.stderr).toContain(`50-dkms: no kernel headers for ${V}`);
  });

  it('a failing dkms build stops the install: exit 5, rolled back, the boot dir as before', async () => {
    root = rootWithModules();
    mkdirSync(root.at(`/lib/modules/${V}/build`));
    mkdirSync(root.at('/var/lib/dkms'), { recursive: true });
    writeFileSync(root.at('/var/lib/dkms/fake-fail'), '');
    const before = snapshotTree(root.boot);
    const result = await kinstallWithFakeDkms(root, addArgs(root));
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: EHOOK: hook \S*50-dkms failed with exit code 10; rolled back/m);
    expect(snapshotTree(root.boot)).toEqual(before);
  });

  it('is disabled by /etc/kinstall/hooks.d/50-dkms linked to /dev/null', async () => {
    root = rootWithModules();
    mkdirSync(root.at(`/lib/modules/${V}/build`));
    mkdirSync(root.at('/etc/kinstall/hooks.d'), { recursive: true });
    symlinkSync('/dev/null', root.at('/etc/kinstall/hooks.d/50-dkms'));
    const result = await kinstallWithFakeDkms(root, addArgs(root));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(dkmsLog(root)).toBe('');
  });

  it('without dkms in the target it is not started (its kinstall-needs line), and the install succeeds', async () => {
    root = rootWithModules();
    mkdirSync(root.at(`/lib/modules/${V}/build`));
    const result = await kinstall(addArgs(root, '--verbose'));
    expect(result.exitCode, result.stderr).toBe(0);
    const dkms = path.join(top, 'hooks.d/50-dkms');
    expect(result.stderr).toContain(
      `not running ${dkms}: it needs dkms, which is not installed in ${root.root} (its "# kinstall-needs:" line)`,
    );
    expect(result.stderr).toContain(`not running ${dkms}: it acts only in preinst (its "# kinstall-phases:" line)`);
    expect(result.stderr).not.toContain('running kinstall hook');
  });

  it('run by hand without dkms it still says so itself', async () => {
    root = rootWithModules();
    const result = await execa(path.join(top, 'hooks.d/50-dkms'), [V, kernel.image], {
      env: { KINSTALL_ROOT: root.root, KINSTALL_PHASE: 'preinst' },
      reject: false,
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`50-dkms: dkms is not installed in ${root.root}: nothing to rebuild`);
  });
});

describe("a kinstall hook's declarations (# kinstall-phases:, # kinstall-needs:)", () => {
  it('a hook runs only in the phases it declares, and only when the programs it needs are in the target', async () => {
    root = rootWithModules();
    recorder(root, '/etc/kinstall/hooks.d', '10-post-only', '# kinstall-phases: postinst');
    recorder(root, '/etc/kinstall/hooks.d', '20-needs-frob', '# kinstall-needs: frobnicate');
    recorder(root, '/etc/kinstall/hooks.d', '30-needs-sh', '# kinstall-phases: preinst postinst\n# kinstall-needs: sh');
    // Not a phase: the line is not trusted to skip the hook anywhere.
    recorder(root, '/etc/kinstall/hooks.d', '40-typo', '# kinstall-phases: pre-inst');
    mkdirSync(root.at('/bin'), { recursive: true });
    writeFileSync(root.at('/bin/sh'), '', { mode: 0o755 });
    const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
    const dry = await kinstall(addArgs(root, '--dry-run'), { env });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const at = (name: string) => root.at(`/etc/kinstall/hooks.d/${name}`);
    expect(dry.stdout).toContain(`  preinst kinstall ${at('10-post-only')}: skip: it acts only in postinst`);
    expect(dry.stdout).toContain(
      `  preinst kinstall ${at('20-needs-frob')}: skip: it needs frobnicate, which is not installed in ${root.root}`,
    );
    expect((await kinstall(addArgs(root), { env })).exitCode).toBe(0);
    expect(hookLog(root).map((line) => line.split(' ').slice(0, 2).join(' '))).toEqual([
      'preinst 30-needs-sh',
      'preinst 40-typo',
      'postinst 10-post-only',
      'postinst 30-needs-sh',
      'postinst 40-typo',
    ]);

    // Once the program is in the target (on the hooks' PATH), the hook runs.
    mkdirSync(root.at('/usr/bin'), { recursive: true });
    writeFileSync(root.at('/usr/bin/frobnicate'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(root.at('/var/tmp/hooks.log'), '');
    expect((await kinstall(addArgs(root), { env })).exitCode).toBe(0);
    expect(hookLog(root).filter((line) => line.includes('20-needs-frob'))).toHaveLength(2);
  });
});
