// Fault injection at every step of `kinstall add` and `kinstall remove` that runs a tool or a hook:
// depmod, dracut, a preinst hook, grub-mkconfig, lilo, efibootmgr, a postinst hook. A failure
// before the install is final must leave the boot dir, the ESP and the neutral location
// byte-identical to before (exit 5); a failing postinst hook leaves the complete install (exit 7).
// Also: `kinstall stage` after a killed add recovers that run instead of writing over its journal.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall, top, type CliResult } from '../helpers/cli.js';
import { efiCalls, efiEnv, efistubConfig, espBasics, expectError, writeFirmware } from '../helpers/esp-scenarios.js';
import {
  CHROOT_LOG,
  FAILING_TOOL,
  failingRuns,
  failingRunsInRoot,
  failingToolsEnv,
  installInRoot,
} from '../helpers/failing-tools.js';
import { mountFatEsp, unmountFatEsps } from '../helpers/fat-esp.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot, writeHook } from '../helpers/root.js';
import { snapshotTree, type TreeSnapshot } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const V2 = `${V}-second`;
const LILO = path.join(top, 'test/fakes/lilo');
const GRUB_MKCONFIG = path.join(top, 'test/fakes/grub-mkconfig');
const BROKEN_MKCONFIG = '/usr/local/sbin/grub-mkconfig-broken';
const LILO_CONF = `boot=/dev/vda\nmap=/boot/map\nimage=/boot/vmlinuz\n    label=linux\n    initrd=/boot/initramfs.img\n    read-only\nimage=/boot/vmlinuz.old\n    label=linux.old\n    initrd=/boot/initramfs.img.old\n    optional\n    read-only\n`;
/** What a previous depmod left in the neutral location, different from what depmod writes now. */
const STALE_INDEX = {
  'modules.dep': 'kernel/drivers/old.ko:\n',
  'modules.alias': '# Aliases extracted from modules themselves.\nalias old old\n',
};
const ROLLED_BACK = 'rolled back \\d+ change\\(s\\), nothing was changed';

const scratchRoot = useScratchRoots({ first: unmountFatEsps });

interface RootState {
  boot: TreeSnapshot;
  modules: TreeSnapshot;
}

/** The boot dir (the ESP is mounted under it) and the neutral location of a version. */
function stateOf(r: TestRoot, version = V): RootState {
  const modules = r.at(`/lib/modules/${version}`);
  return { boot: snapshotTree(r.boot), modules: existsSync(modules) ? snapshotTree(modules) : {} };
}

/** A root holding the test kernel's modules, an older build of V in /boot and a previous depmod's index. */
function newRoot(config: Record<string, unknown> = {}, staleIndex = true): TestRoot {
  const r = scratchRoot({ modules: true, config });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  for (const version of [V, V2])
    writeFileSync(r.at(`/var/fake/initrd-${version}`), initramfsFixture(`prebuilt initramfs for ${version}\n`));
  writeFileSync(r.at(`/boot/vmlinuz-${V}`), `an older build of ${V}\n`);
  writeFileSync(r.at(`/boot/initramfs-${V}.img`), `an older initramfs of ${V}\n`);
  if (staleIndex)
    for (const [name, content] of Object.entries(STALE_INDEX)) writeFileSync(r.at(`/lib/modules/${V}/${name}`), content);
  return r;
}

const hook = writeHook;

async function ok(args: string[], env: Record<string, string> = {}): Promise<void> {
  const result = await kinstall(args, { env });
  expect(result.exitCode, result.stderr).toBe(0);
}

/** A rolled-back run: the error, the tree as before, no journal and no side files left. */
function expectRolledBack(r: TestRoot, result: CliResult, pattern: RegExp, before: RootState, version = V): void {
  expectError(result, 5, pattern);
  expect(stateOf(r, version)).toEqual(before);
  expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
}

const addCompat = (r: TestRoot, ...extra: string[]) => [
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
const indexFiles = (r: TestRoot) =>
  readdirSync(r.at(`/lib/modules/${V}`))
    .filter((n) => n.startsWith('modules.'))
    .sort();

describe('kinstall add: a failing tool or hook rolls everything back (exit 5)', () => {
  it('depmod fails after half-writing modules.dep: the previous index comes back byte for byte', async () => {
    const r = newRoot();
    const before = stateOf(r);
    const env = failingToolsEnv(r, ['depmod'], r.at(`/lib/modules/${V}/modules.dep`));
    const result = await kinstall(addCompat(r), { env });
    expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: depmod failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
    expect(result.stderr).toContain('  depmod: failure injected by the kinstall test fake');
    expect(failingRuns(r)).toEqual([`depmod -a -b ${r.root} ${V}`]);
    expect(readFileSync(r.at(`/lib/modules/${V}/modules.dep`)).equals(Buffer.from(STALE_INDEX['modules.dep']))).toBe(true);
  });

  it('dracut fails after the real depmod ran: the boot dir and lib/modules/KVER are as before', async () => {
    const r = newRoot();
    const before = stateOf(r);
    const args = ['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image];
    const result = await kinstall(args, { env: failingToolsEnv(r, ['dracut']) });
    expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: dracut failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
    expect(failingRuns(r)).toHaveLength(1);
    expect(failingRuns(r)[0]).toMatch(
      new RegExp(
        `^dracut --force --kver ${V.replace(/\./g, '\\.')} --kmoddir ${r.at(`/lib/modules/${V}`)} --no-hostonly .* \\S+/kinstall-initrd\\.img$`,
      ),
    );
  });

  // The index files depmod generated are part of the rollback: old ones restored, new ones deleted.
  it.each([
    ['after an earlier depmod', true],
    ['on a modules tree never indexed', false],
  ])('a preinst hook fails %s: lib/modules/KVER is exactly as before', async (_name, staleIndex) => {
    const r = newRoot({}, staleIndex);
    // Exit 3 only once depmod's index is there, so the message below proves depmod ran first.
    const failing = hook(
      r,
      '/etc/kernel/preinst.d',
      '10-fails',
      `[ -f ${r.at(`/lib/modules/${V}/modules.dep.bin`)} ] || exit 4\nexit 3`,
    );
    const before = stateOf(r);
    const indexBefore = indexFiles(r);
    const result = await kinstall(addCompat(r));
    expectRolledBack(r, result, new RegExp(`^kinstall: EHOOK: hook ${failing} failed with exit code 3; ${ROLLED_BACK}$`), before);
    expect(indexFiles(r)).toEqual(indexBefore);
    expect(indexBefore).toEqual(
      staleIndex
        ? ['modules.alias', 'modules.builtin', 'modules.builtin.modinfo', 'modules.dep', 'modules.order']
        : ['modules.builtin', 'modules.builtin.modinfo', 'modules.order'],
    );
    if (staleIndex)
      expect(readFileSync(r.at(`/lib/modules/${V}/modules.alias`)).equals(Buffer.from(STALE_INDEX['modules.alias']))).toBe(true);
  });

  it('lilo fails: files, links and the boot map as before', async () => {
    const r = newRoot({ lilo: { command: LILO } });
    writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
    const env = { LILO_FAKE_LOG: r.at('/var/fake/lilo.log') };
    const add = (version: string) => [
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      'lilo',
      '--initrd',
      r.at(`/var/fake/initrd-${version}`),
      version,
      kernel.image,
    ];
    await ok(add(V2), env);
    const before = stateOf(r);
    // Runs 1-2 were V2's install; 3 is this install's lilo -t, 4 the real run, 5 the re-run on the restored files.
    const result = await kinstall(add(V), { env: { ...env, LILO_FAKE_FAIL: '4' } });
    expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: lilo failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
    expect(readFileSync(r.at('/var/fake/lilo.log'), 'utf8').trim().split('\n')).toHaveLength(5);
  });

  it.each([
    ['creating the entry', 'dir', '--create', {}],
    ['moving it in BootOrder', 'dir', '--bootorder', { bootOrderFirst: false }],
    ['creating the entry', 'fat', '--create', {}],
    ['moving it in BootOrder', 'fat', '--bootorder', { bootOrderFirst: false }],
  ] as const)(
    'efibootmgr fails %s (ESP: %s): the ESP and the firmware entries as before',
    async (_name, esp, failOn, options) => {
      const r = await efiRoot(options, esp);
      await ok(['add', '--force', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', V2, kernel.image], efiEnv(r));
      const before = stateOf(r);
      const firmware = readFileSync(r.at('/var/fake/efi.json'));
      const result = await kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', V, kernel.image], {
        env: efiEnv(r, failOn),
      });
      expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: efibootmgr failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
      expect(readFileSync(r.at('/var/fake/efi.json')).equals(firmware)).toBe(true);
      expect(efiCalls(r).some((argv) => argv.includes(failOn))).toBe(true);
    },
  );

  it('grub-mkconfig fails: grub.cfg, grub.cfg~ and the kernel files as before', async () => {
    const r = grubRoot();
    await ok(['add', '--force', '--root', r.root, '--layout', 'grub', '--initramfs', 'none', V2, kernel.image]);
    expect(readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8')).toContain(`linux /vmlinuz-${V2}`);
    const before = stateOf(r);
    useMkconfig(r, BROKEN_MKCONFIG);
    const result = await kinstall(['add', '--root', r.root, '--layout', 'grub', '--initramfs', 'none', V, kernel.image], {
      env: { FAILING_TOOL_LOG: CHROOT_LOG },
    });
    // grub-mkconfig runs as `chroot ROOT grub-mkconfig`: the message names the tool, not chroot.
    expectRolledBack(
      r,
      result,
      new RegExp(`^kinstall: ETOOL: grub-mkconfig-broken \\(in chroot ${r.root}\\) failed \\(exit code 1\\); ${ROLLED_BACK}$`),
      before,
    );
    expect(result.stderr).toContain('  grub-mkconfig-broken: failure injected by the kinstall test fake');
    expect(failingRunsInRoot(r)).toEqual(['grub-mkconfig-broken -o /boot/grub/grub.cfg.kinstall-new']);
  });
});

describe('kinstall add: a failing postinst hook', () => {
  it('exit 7 (EPOSTINST); the tree is the complete result of a successful install', async () => {
    const failed = newRoot();
    const reference = newRoot();
    const failing = hook(failed, '/etc/kernel/postinst.d', '10-hook', 'exit 9');
    hook(reference, '/etc/kernel/postinst.d', '10-hook', 'exit 0');
    await ok(addCompat(reference));
    const result = await kinstall(addCompat(failed));
    expectError(
      result,
      7,
      new RegExp(`^kinstall: EPOSTINST: kernel installed, but 1 postinst hook\\(s\\) failed: ${failing} \\(exit 9\\)$`),
    );
    expect(stateOf(failed)).toEqual(stateOf(reference));
    expect(readFileSync(failed.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readFileSync(failed.at(`/boot/vmlinuz-${V}.old`), 'utf8')).toBe(`an older build of ${V}\n`);
    expect(indexFiles(failed)).toContain('modules.dep.bin');
    expect(existsSync(failed.at('/var/lib/kinstall/journal.json'))).toBe(false);
  });
});

describe('kinstall remove: a failing bootloader tool brings the removed kernel back (exit 5)', () => {
  it('lilo fails: the files, the links and the map as before', async () => {
    const r = newRoot({ lilo: { command: LILO } });
    writeFileSync(r.at('/etc/lilo.conf'), LILO_CONF);
    const env = { LILO_FAKE_LOG: r.at('/var/fake/lilo.log') };
    for (const version of [V2, V])
      await ok(
        [
          'add',
          '--force',
          '--root',
          r.root,
          '--layout',
          'lilo',
          '--initrd',
          r.at(`/var/fake/initrd-${version}`),
          version,
          kernel.image,
        ],
        env,
      );
    const before = stateOf(r);
    // Runs 1-4 were the two installs; 5 is remove's lilo -t, 6 the real run, 7 the re-run.
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'lilo', V], { env: { ...env, LILO_FAKE_FAIL: '6' } });
    expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: lilo failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
    expect(readFileSync(r.at('/var/fake/lilo.log'), 'utf8').trim().split('\n')).toHaveLength(7);
  });

  it.each(['dir', 'fat'] as const)(
    'efibootmgr fails to delete the entry (ESP: %s): the ESP files and the firmware entries as before',
    async (esp) => {
      const r = await efiRoot({}, esp);
      for (const version of [V2, V])
        await ok(
          ['add', '--force', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', version, kernel.image],
          efiEnv(r),
        );
      const before = stateOf(r);
      const firmware = readFileSync(r.at('/var/fake/efi.json'));
      const result = await kinstall(['remove', '--root', r.root, '--layout', 'efistub', V], {
        env: efiEnv(r, '--delete-bootnum'),
      });
      expectRolledBack(r, result, new RegExp(`^kinstall: ETOOL: efibootmgr failed \\(exit code 1\\); ${ROLLED_BACK}$`), before);
      expect(readFileSync(r.at('/var/fake/efi.json')).equals(firmware)).toBe(true);
      expect(before.boot[`efi/EFI/Gentoo/vmlinuz-${V}.efi`]).toBeDefined();
    },
  );

  it('grub-mkconfig fails: the kernel files, grub.cfg and grub.cfg~ as before', async () => {
    const r = grubRoot();
    for (const version of [V2, V])
      await ok(['add', '--force', '--root', r.root, '--layout', 'grub', '--initramfs', 'none', version, kernel.image]);
    const before = stateOf(r);
    expect(before.boot[`vmlinuz-${V}`]).toBeDefined();
    useMkconfig(r, BROKEN_MKCONFIG);
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'grub', V], { env: { FAILING_TOOL_LOG: CHROOT_LOG } });
    expectRolledBack(
      r,
      result,
      new RegExp(`^kinstall: ETOOL: grub-mkconfig-broken \\(in chroot ${r.root}\\) failed \\(exit code 1\\); ${ROLLED_BACK}$`),
      before,
    );
    expect(failingRunsInRoot(r)).toEqual(['grub-mkconfig-broken -o /boot/grub/grub.cfg.kinstall-new']);
    // With a working grub-mkconfig the same removal succeeds and grub.cfg no longer names the kernel.
    useMkconfig(r, '/usr/sbin/grub-mkconfig');
    await ok(['remove', '--root', r.root, '--layout', 'grub', V]);
    const cfg = readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8');
    expect(cfg).toContain(`linux /vmlinuz-${V2}`);
    expect(cfg).not.toContain(`vmlinuz-${V} `);
  });
});

describe('kinstall stage after a killed add', () => {
  it('recovers the dead run first, so its journal is never written over and the boot dir comes back', async () => {
    const r = newRoot();
    const before = snapshotTree(r.boot);
    const add = [
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      'compat',
      '--initrd',
      r.at(`/var/fake/initrd-${V2}`),
      V2,
      kernel.image,
    ];
    const killed = await kinstall(add, { env: { KINSTALL_TEST_CRASH_AFTER: 'op:3' } });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(snapshotTree(r.boot)).not.toEqual(before);
    const build = r.at('/var/tmp/build');
    mkdirSync(path.join(build, 'include/config'), { recursive: true });
    mkdirSync(path.join(build, 'arch/x86/boot'), { recursive: true });
    writeFileSync(path.join(build, 'include/config/kernel.release'), `${V}\n`);
    writeFileSync(path.join(build, 'arch/x86/boot/bzImage'), readFileSync(kernel.image));
    const staged = await kinstall(['stage', '--build-dir', build, '--root', r.root]);
    expect(staged.exitCode, staged.stderr).toBe(0);
    expect(staged.stderr).toMatch(/an unfinished kinstall run \(pid \d+, started .*\) was found: rolled back/);
    expect(snapshotTree(r.boot)).toEqual(before);
    expect(readFileSync(r.at(`/lib/modules/${V}/vmlinuz`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(existsSync(r.at('/var/lib/kinstall/journal.json'))).toBe(false);
  });
});

/**
 * A root with an ESP at /boot/efi (a directory, or a mounted FAT image: no hard links, so every
 * backup is a copy), a command line, NAME=Gentoo and a firmware holding Windows.
 */
async function efiRoot(options: Record<string, unknown>, esp: 'dir' | 'fat'): Promise<TestRoot> {
  const r = newRoot(efistubConfig(options));
  if (esp === 'fat') await mountFatEsp(r, '/boot/efi');
  else mkdirSync(r.at('/boot/efi/EFI'), { recursive: true });
  espBasics(r, 'root=/dev/vda2 ro');
  writeFirmware(r);
  return r;
}

/** A root grub-mkconfig runs in (chroot): a shell, test/fakes/grub-mkconfig, and a broken one beside it. */
function grubRoot(): TestRoot {
  const r = newRoot();
  installInRoot(r, { '/usr/sbin/grub-mkconfig': GRUB_MKCONFIG, [BROKEN_MKCONFIG]: FAILING_TOOL });
  mkdirSync(r.at('/boot/grub'), { recursive: true });
  mkdirSync(r.at('/etc/default'), { recursive: true });
  writeFileSync(r.at('/etc/default/grub'), 'GRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Gentoo\nGRUB_CMDLINE_LINUX="console=ttyS0"\n');
  return r;
}

/** Points the root's config key grub.mkconfig at a command inside the root. */
function useMkconfig(r: TestRoot, command: string): void {
  const file = r.at('/etc/kinstall/config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, grub: { mkconfig: command } }, null, 2));
}
