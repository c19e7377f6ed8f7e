// Gentoo installkernel's plugin protocol: {preinst,postinst}.d in /usr/lib/kernel and /etc/kernel,
// *.install names, one version order, masking, leftovers, the INSTALLKERNEL_* environment and the
// staging-area contract (an initrd or uki.efi a plugin leaves is installed, kinstall's dracut never
// runs). The plugins are written here for the test; none is Gentoo's.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { failingRuns, failingToolsEnv } from '../helpers/failing-tools.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

/**
 * A root with install.conf as Gentoo's installkernel reads it; the test kernel's modules when
 * dracut is the generator (its preflight wants them), else an empty modules dir.
 */
function gentooRoot(conf = 'layout=compat\ninitrd_generator=dracut\n'): TestRoot {
  const r = newRoot({ modules: conf.includes('initrd_generator=dracut') });
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/var/tmp'), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/install.conf'), conf);
  return r;
}

const runLog = (r: TestRoot) => r.at('/var/tmp/plugins.log');
const ran = (r: TestRoot) => (existsSync(runLog(r)) ? readFileSync(runLog(r), 'utf8').trim().split('\n') : []);

/** A plugin that appends "NAME ARGS" to the run log. */
const recorder = (r: TestRoot, dir: string, name: string, then = '') =>
  writeHook(r, dir, name, `printf '%s %s\\n' '${name}' "$*" >> '${runLog(r)}'\n${then}`);

/** kinstall with the given root; dracut on PATH is a fake that records each call and fails. */
const add = (r: TestRoot, ...extra: string[]) =>
  kinstall(['add', '--root', r.root, ...extra, V, kernel.image], { env: failingToolsEnv(r, ['dracut']) });

describe('installkernel plugins: the staging-area contract', () => {
  it("a generator plugin that leaves initrd makes the initramfs: installed byte for byte, kinstall's dracut never runs", async () => {
    root = gentooRoot();
    const made = root.at('/var/tmp/made-initrd');
    writeFileSync(made, randomBytes(4096));
    // Acts only for its generator, as Gentoo's generator plugins do.
    writeHook(
      root,
      '/usr/lib/kernel/preinst.d',
      '52-testgen.install',
      [
        '[ "$INSTALLKERNEL_INITRD_GENERATOR" = dracut ] || exit 0',
        `printf '%s %s %s %s\\n' "$INSTALLKERNEL_LAYOUT" "$INSTALLKERNEL_VERBOSE" "$INSTALLKERNEL_UKI_GENERATOR" "$*" > '${root.at('/var/tmp/env')}'`,
        `cp '${made}' "$INSTALLKERNEL_STAGING_AREA/initrd"`,
      ].join('\n'),
    );
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(root.at(`/boot/initramfs-${V}.img`)).equals(readFileSync(made))).toBe(true);
    expect(failingRuns(root)).toEqual([]);
    expect(result.stderr).toContain("initramfs made by hook 52-testgen.install (initrd): kinstall's generator does not run");
    expect(readFileSync(root.at('/var/tmp/env'), 'utf8')).toBe(`compat 0  ${V} ${root.at(`/lib/modules/${V}/vmlinuz`)}\n`);
  });

  it("without such a plugin kinstall's own dracut runs (here a failing fake: exit 5, rolled back)", async () => {
    root = gentooRoot();
    failingToolsEnv(root, ['dracut']);
    const before = snapshotTree(root.root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(5);
    expect(failingRuns(root)).toHaveLength(1);
    expect(failingRuns(root)[0]).toMatch(/^dracut /);
    expect(withoutState(snapshotTree(root.root))).toEqual({
      ...before,
      ...pick(snapshotTree(root.root), 'var/fake/failing-tools.log'),
    });
  });

  it('initrd_generator=ugrd: a preflight error without a ugrd plugin; its initrd installed with one', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=ugrd\n');
    const before = snapshotTree(root.boot);
    const missing = await add(root);
    expect(missing.exitCode).toBe(4);
    expect(missing.stderr).toMatch(
      /^kinstall: EGENERATOR: initrd_generator=ugrd: kinstall has no such generator and no hook named after it would make the initramfs/m,
    );
    expect(snapshotTree(root.boot)).toEqual(before);

    // A plugin named after it that makes nothing: the install stops and is rolled back.
    recorder(root, '/usr/lib/kernel/preinst.d', '52-ugrd.install');
    const idle = await add(root);
    expect(idle.exitCode).toBe(5);
    expect(idle.stderr).toMatch(/^kinstall: ENOTPRODUCED: initrd_generator=ugrd: no hook left an initrd in the staging area/m);
    expect(snapshotTree(root.boot)).toEqual(before);

    const made = root.at('/var/tmp/ugrd-initrd');
    writeFileSync(made, randomBytes(2048));
    writeHook(
      root,
      '/usr/lib/kernel/preinst.d',
      '52-ugrd.install',
      `[ "$INSTALLKERNEL_INITRD_GENERATOR" = ugrd ] && cp '${made}' "$INSTALLKERNEL_STAGING_AREA/initrd"`,
    );
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(root.at(`/boot/initramfs-${V}.img`)).equals(readFileSync(made))).toBe(true);
    expect(failingRuns(root)).toEqual([]);
  });

  for (const [generator, hook] of [
    ['dracut', '60-testuki.install'],
    ['ukify', '60-ukify.install'],
  ] as const) {
    it(`uki_generator=${generator}: a plugin that leaves uki.efi for the uki layout: that file is the installed UKI, dracut never runs`, async () => {
      root = gentooRoot(`layout=uki\ninitrd_generator=dracut\nuki_generator=${generator}\n`);
      mkdirSync(root.at('/efi/EFI/Linux'), { recursive: true });
      writeFileSync(root.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
      writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
      writeFileSync(root.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
      // A real UKI, assembled here around the test kernel with systemd's stub (no initramfs in it).
      const made = root.at('/var/tmp/made-uki.efi');
      writeFileSync(root.at('/var/tmp/osrel'), 'ID=test\n');
      execFileSync('objcopy', [
        '--add-section',
        `.osrel=${root.at('/var/tmp/osrel')}`,
        '--change-section-vma',
        '.osrel=0x20000',
        '--add-section',
        `.linux=${kernel.image}`,
        '--change-section-vma',
        '.linux=0x2000000',
        '/usr/lib/systemd/boot/efi/linuxx64.efi.stub',
        made,
      ]);
      // A generator kinstall lacks (ukify) needs a preinst hook named after it, which must leave uki.efi.
      const idle = generator === 'ukify' ? await add(root) : undefined;
      expect(idle?.exitCode ?? 4).toBe(4);
      if (idle)
        expect(idle.stderr).toMatch(
          /^kinstall: EGENERATOR: uki_generator=ukify: kinstall has no such generator and no hook named after it would make the UKI/m,
        );
      writeHook(
        root,
        '/usr/lib/kernel/preinst.d',
        hook,
        `[ "$INSTALLKERNEL_LAYOUT" = uki ] && [ "$INSTALLKERNEL_UKI_GENERATOR" = ${generator} ] && cp '${made}' "$INSTALLKERNEL_STAGING_AREA/uki.efi"`,
      );
      const result = await add(root);
      expect(result.exitCode, result.stderr).toBe(0);
      const installed = readdirSync(root.at('/efi/EFI/Linux'));
      expect(installed).toEqual([`0123456789abcdef0123456789abcdef-${V}.efi`]);
      expect(readFileSync(root.at(`/efi/EFI/Linux/${installed[0] ?? ''}`)).equals(readFileSync(made))).toBe(true);
      expect(result.stderr).toContain(`UKI made by hook ${hook}`);
      expect(failingRuns(root)).toEqual([]);
    });
  }

  it('uki_generator=ukify with a ukify plugin that leaves no uki.efi: exit 5 (ENOTPRODUCED), rolled back', async () => {
    root = gentooRoot('layout=uki\ninitrd_generator=dracut\nuki_generator=ukify\n');
    mkdirSync(root.at('/efi/EFI/Linux'), { recursive: true });
    writeFileSync(root.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
    recorder(root, '/usr/lib/kernel/preinst.d', '60-ukify.install');
    const before = snapshotTree(root.at('/efi'));
    const result = await add(root);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ENOTPRODUCED: uki_generator=ukify: no hook left a uki\.efi in the staging area/m);
    expect(snapshotTree(root.at('/efi'))).toEqual(before);
    expect(failingRuns(root)).toEqual([]);
  });
});

/** A snapshot without kinstall's state dir, which a rolled-back run leaves empty (checked). */
function withoutState(snapshot: Record<string, string>): Record<string, string> {
  const state = Object.keys(snapshot).filter((k) => k.startsWith('var/lib/kinstall/'));
  expect(state).toEqual([]);
  return Object.fromEntries(Object.entries(snapshot).filter(([k]) => k !== 'var/lib' && k !== 'var/lib/kinstall'));
}

/** The entries of a snapshot under a prefix. */
function pick(snapshot: Record<string, string>, prefix: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snapshot).filter(([k]) => k.startsWith(prefix)));
}

describe('installkernel plugins: which run, in which order', () => {
  it("*.install and plain names run in one version order across /usr/lib and /etc, beside kinstall's hooks.d", async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    recorder(root, '/etc/kernel/preinst.d', '5-etc.install');
    recorder(root, '/usr/lib/kernel/preinst.d', '10-usrlib.install');
    recorder(root, '/etc/kernel/preinst.d', '9-plain');
    recorder(root, '/etc/kinstall/hooks.d', '20-kinstall');
    recorder(root, '/usr/lib/kernel/postinst.d', '100-last.install');
    recorder(root, '/etc/kernel/postinst.d', '99-check.install');
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    const staged = root.at(`/lib/modules/${V}/vmlinuz`);
    const boot = root.at(`/boot/vmlinuz-${V}`);
    // Lexical order would put 10- before 5- and 100- before 99-: version order does not.
    expect(ran(root)).toEqual([
      `5-etc.install ${V} ${staged}`,
      `9-plain ${V} ${staged}`,
      `10-usrlib.install ${V} ${staged}`,
      `20-kinstall ${V} ${staged}`,
      `20-kinstall ${V} ${boot}`,
      `99-check.install ${V} ${boot}`,
      `100-last.install ${V} ${boot}`,
    ]);
  });

  it('/etc replaces /usr/lib by name; a /dev/null link or an empty file masks it', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    recorder(root, '/usr/lib/kernel/preinst.d', '30-replaced.install');
    writeHook(root, '/etc/kernel/preinst.d', '30-replaced.install', `echo 'etc 30-replaced.install' >> '${runLog(root)}'`);
    recorder(root, '/usr/lib/kernel/preinst.d', '31-nulled.install');
    symlinkSync('/dev/null', root.at('/etc/kernel/preinst.d/31-nulled.install'));
    recorder(root, '/usr/lib/kernel/postinst.d', '32-emptied.install');
    mkdirSync(root.at('/etc/kernel/postinst.d'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/postinst.d/32-emptied.install'), '');
    recorder(root, '/usr/lib/kernel/postinst.d', '33-kept.install');
    const result = await add(root, '--verbose');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(ran(root)).toEqual(['etc 30-replaced.install', `33-kept.install ${V} ${root.at(`/boot/vmlinuz-${V}`)}`]);
    expect(result.stderr).toContain(`not running ${root.at('/etc/kernel/preinst.d/31-nulled.install')}: masked by`);
    expect(result.stderr).toContain(`not running ${root.at('/etc/kernel/postinst.d/32-emptied.install')}: masked by`);
  });

  it('package-manager and editor leftovers never run; --verbose names each skip and why', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    const leftovers = [
      '50-x.install.dpkg-old',
      '50-x.install.dpkg-dist',
      '50-x.install.rpmsave',
      '50-x.install.rpmnew',
      '._cfg0000_50-x.install',
      '50-x.install~',
      '50-x.install.bak',
      '50-x.install.swp',
      '.hidden.install',
    ];
    for (const name of leftovers) recorder(root, '/etc/kernel/preinst.d', name);
    recorder(root, '/etc/kernel/preinst.d', '50-x.install');
    const result = await add(root, '--verbose');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(ran(root)).toEqual([`50-x.install ${V} ${root.at(`/lib/modules/${V}/vmlinuz`)}`]);
    for (const name of leftovers) expect(result.stderr).toContain(`not running ${root.at(`/etc/kernel/preinst.d/${name}`)}: `);
    expect(result.stderr).toMatch(/50-x\.install\.dpkg-old: a leftover of dpkg/);
    expect(result.stderr).toMatch(/\._cfg0000_50-x\.install: a config update/);
  });

  it('exit 77 stops the remaining plugins of the phase successfully', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    recorder(root, '/usr/lib/kernel/preinst.d', '10-stop.install', 'exit 77');
    recorder(root, '/usr/lib/kernel/preinst.d', '20-skipped.install');
    recorder(root, '/usr/lib/kernel/postinst.d', '20-post.install');
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(ran(root).map((l) => l.split(' ')[0])).toEqual(['10-stop.install', '20-post.install']);
  });
});

describe('installkernel plugins: failures', () => {
  it('a failing plugin before the commit: exit 5, everything rolled back, the tree byte-identical', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    writeFileSync(root.at(`/boot/vmlinuz-${V}`), 'the previous kernel');
    recorder(root, '/usr/lib/kernel/preinst.d', '40-fails.install', 'exit 3');
    recorder(root, '/usr/lib/kernel/preinst.d', '41-after.install');
    failingToolsEnv(root, ['dracut']);
    const before = snapshotTree(root.root);
    const result = await add(root);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      new RegExp(`^kinstall: EHOOK: hook ${root.at('/usr/lib/kernel/preinst.d/40-fails.install')} failed with exit code 3`, 'm'),
    );
    const after = withoutState(snapshotTree(root.root));
    expect(after).toEqual({ ...before, 'var/tmp/plugins.log': after['var/tmp/plugins.log'] });
    expect(ran(root).map((l) => l.split(' ')[0])).toEqual(['40-fails.install']);
  });

  it('a failing plugin after the commit: exit 7 (EPOSTINST), the kernel stays, later plugins still run', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    recorder(root, '/usr/lib/kernel/postinst.d', '40-fails.install', 'exit 9');
    recorder(root, '/etc/kernel/postinst.d', '41-after.install');
    const result = await add(root);
    expect(result.exitCode).toBe(7);
    expect(result.stderr).toMatch(
      /^kinstall: EPOSTINST: kernel installed, but 1 postinst hook\(s\) failed: .*40-fails\.install \(exit 9\)/m,
    );
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(ran(root).map((l) => l.split(' ')[0])).toEqual(['40-fails.install', '41-after.install']);
  });
});

describe('installkernel plugins: the log, and what runs under --root', () => {
  it('targetHooks = "host": a .install logger runs on the host with the target\'s paths under the root', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    // The test roots' setting (test/helpers/root.ts): hooks reach the target only through the paths
    // they are given, so this one writes to $INSTALLKERNEL_ROOT/var/log. Inside the target (the
    // default) is hooks-chroot.test.ts.
    writeHook(
      root,
      '/usr/lib/kernel/postinst.d',
      '95-testlog.install',
      'printf "%s %s %s\\n" "$1" "$2" "$INSTALLKERNEL_LAYOUT" >> "$INSTALLKERNEL_ROOT/var/log/testlog.log"',
    );
    mkdirSync(root.at('/var/log'), { recursive: true });
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(root.at('/var/log/testlog.log'), 'utf8')).toBe(`${V} ${root.at(`/boot/vmlinuz-${V}`)} compat\n`);
    expect(existsSync('/var/log/testlog.log')).toBe(false);
  });

  it('on a Debian target /etc/kernel/postinst.d runs with run-parts names; on Gentoo every executable name runs', async () => {
    for (const [os, expected] of [
      ['ID=debian', ['50-plain']],
      ['ID=ubuntu\nID_LIKE=debian', ['50-plain']],
      ['ID=gentoo', ['50-plain', '60-dotted.install']],
    ] as const) {
      root = gentooRoot('layout=compat\ninitrd_generator=none\n');
      writeFileSync(root.at('/etc/os-release'), `${os}\n`);
      recorder(root, '/etc/kernel/postinst.d', '50-plain');
      recorder(root, '/etc/kernel/postinst.d', '60-dotted.install');
      const result = await add(root, '--verbose');
      expect(result.exitCode, result.stderr).toBe(0);
      expect(ran(root).map((l) => l.split(' ')[0])).toEqual(expected);
      if (expected.length === 1) {
        expect(result.stderr).toContain(
          `not running ${root.at('/etc/kernel/postinst.d/60-dotted.install')}: not a run-parts name (letters, digits, - and _)`,
        );
      }
    }
  });

  it("installkernel.log: kinstall writes Gentoo's columns; a 99-write-log plugin is skipped, or run instead of kinstall's line", async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    writeHook(
      root,
      '/usr/lib/kernel/postinst.d',
      '99-write-log.install',
      `printf 'plugin-line\\t%s\\n' "$1" >> '${root.at('/var/log/installkernel.log')}'`,
    );
    const first = await add(root, '--verbose');
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toMatch(
      /not running .*99-write-log\.install: redundant: it appends to \/var\/log\/installkernel\.log, which kinstall writes itself/,
    );
    const lines = () => readFileSync(root.at('/var/log/installkernel.log'), 'utf8').split('\n').filter(Boolean);
    expect(lines()).toHaveLength(1);
    expect(lines()[0]?.split('\t').slice(1, 10)).toEqual([
      'kinstall',
      V,
      'notset',
      'compat',
      'none',
      'notset',
      '/boot',
      `vmlinuz-${V}`,
      'unknown',
    ]);

    writeFileSync(
      root.at('/etc/kinstall/config.json'),
      JSON.stringify({ runRedundant: ['99-write-log.install'], targetHooks: 'host' }),
    );
    const second = await add(root);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(lines()).toHaveLength(2);
    expect(lines()[1]).toBe(`plugin-line\t${V}`);
    // kinstall's own record keeps both events.
    expect(readFileSync(root.at('/var/lib/kinstall/history.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  });
});

describe('add --dry-run lists what would run', () => {
  it('every hook and plugin in order with its phase and protocol, each skipped one with its reason; nothing runs', async () => {
    root = gentooRoot('layout=compat\ninitrd_generator=none\n');
    recorder(root, '/usr/lib/kernel/preinst.d', '52-gen.install');
    recorder(root, '/etc/kernel/preinst.d', '52-gen.install.dpkg-old');
    recorder(root, '/etc/kinstall/hooks.d', '10-mine');
    recorder(root, '/usr/lib/kernel/postinst.d', '99-write-log.install');
    recorder(root, '/usr/lib/kernel/install.d', '90-loaderentry.install');
    const text = await add(root, '--dry-run');
    expect(text.exitCode, text.stderr).toBe(0);
    const listed = text.stdout.split('\n').filter((l) => l.startsWith('  preinst ') || l.startsWith('  postinst '));
    expect(listed).toEqual([
      `  preinst kinstall ${root.at('/etc/kinstall/hooks.d/10-mine')}: run`,
      expect.stringMatching(/^ {2}preinst kinstall \/.*\/hooks\.d\/50-dkms: run$/),
      `  preinst installkernel ${root.at('/usr/lib/kernel/preinst.d/52-gen.install')}: run`,
      `  preinst installkernel ${root.at('/etc/kernel/preinst.d/52-gen.install.dpkg-old')}: skip: a leftover of dpkg`,
      `  postinst kinstall ${root.at('/etc/kinstall/hooks.d/10-mine')}: run`,
      expect.stringMatching(/^ {2}postinst kinstall \/.*\/hooks\.d\/50-dkms: skip: it acts only in preinst /),
      expect.stringMatching(
        /^ {2}postinst kernel-install .*\/usr\/lib\/kernel\/install\.d\/90-loaderentry\.install: skip: redundant: it copies the kernel/,
      ),
      expect.stringMatching(
        /^ {2}postinst installkernel .*\/usr\/lib\/kernel\/postinst\.d\/99-write-log\.install: skip: redundant/,
      ),
    ]);
    expect(ran(root)).toEqual([]);
    const json = await add(root, '--dry-run', '--json');
    const order = (
      JSON.parse(json.stdout) as { hookOrder: Array<{ phase: string; name: string; runs: boolean; reason?: string }> }
    ).hookOrder;
    expect(order.map((h) => `${h.phase} ${h.name} ${h.runs}`)).toEqual([
      'preinst 10-mine true',
      'preinst 50-dkms true',
      'preinst 52-gen.install true',
      'preinst 52-gen.install.dpkg-old false',
      'postinst 10-mine true',
      'postinst 50-dkms false',
      'postinst 90-loaderentry.install false',
      'postinst 99-write-log.install false',
    ]);
  });
});
