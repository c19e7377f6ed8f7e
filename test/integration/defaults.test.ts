// Behaviours users get without asking for them: the default verb, the modules tree `stage`
// copies, which layout layout=auto picks (and where it looks for grub.cfg), how efistub finds the
// ESP's disk and partition (findmnt, lsblk), and a boot dir other than /boot.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installkernel, kinstall, top, type CliResult } from '../helpers/cli.js';
import { installInRoot } from '../helpers/failing-tools.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const FAKES = path.join(top, 'test/fakes');
const MKCONFIG_LOG = '/var/log/grub-mkconfig.fake.log';
const COMPAT = ['--layout', 'compat', '--initramfs', 'none'];

const newRoot = useScratchRoots();

function put(r: TestRoot, systemPath: string, content: Buffer | string): string {
  mkdirSync(path.dirname(r.at(systemPath)), { recursive: true });
  writeFileSync(r.at(systemPath), content);
  return r.at(systemPath);
}

/** The real image in <root>/lib/modules/VERSION/vmlinuz, as a package leaves it. */
const stageInto = (r: TestRoot, version: string) => put(r, `/lib/modules/${version}/vmlinuz`, readFileSync(kernel.image));

/** A kbuild output tree (make O=DIR) holding the real kernel's files. */
function buildTree(r: TestRoot, dir: string): string {
  put(r, `${dir}/include/config/kernel.release`, `${V}\n`);
  put(r, `${dir}/arch/x86/boot/bzImage`, readFileSync(kernel.image));
  copyFileSync(kernel.systemMap, r.at(`${dir}/System.map`));
  copyFileSync(kernel.config, r.at(`${dir}/.config`));
  return r.at(dir);
}

const vmlinuzIn = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('vmlinuz-'))
    .sort();
const sameFile = (a: string, b: string) => readFileSync(a).equals(readFileSync(b));
/** What an install changes: the boot dir and the neutral location. */
const installed = (r: TestRoot) => ({ boot: snapshotTree(r.boot), modules: snapshotTree(r.at('/lib/modules')) });

function expectOk(result: CliResult): void {
  expect(result.exitCode, result.stderr).toBe(0);
}

/** Exactly one `kinstall: CODE: …` line, matching the pattern, and the exit code. */
function expectError(result: CliResult, exitCode: number, pattern: RegExp): void {
  expect(result.exitCode, result.stderr).toBe(exitCode);
  const errors = result.stderr.split('\n').filter((line) => /^kinstall: E[A-Z]+: /.test(line));
  expect(errors).toEqual([expect.stringMatching(pattern)]);
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the default verb', () => {
  it('with no verb and no version installs the newest staged kernel', async () => {
    const r = newRoot();
    // V from a build tree through `kinstall stage`; an older release staged beside it as a package would.
    expectOk(await kinstall(['stage', '--build-dir', buildTree(r, '/var/tmp/build'), '--root', r.root]));
    stageInto(r, '5.10.0-old');
    const result = await kinstall(['--root', r.root, ...COMPAT]);
    expectOk(result);
    expect(result.stderr).toContain(`installed ${V} (compat)`);
    expect(readdirSync(r.boot).sort()).toEqual([`System.map-${V}`, `config-${V}`, `vmlinuz-${V}`]);
    expect(sameFile(r.at(`/boot/vmlinuz-${V}`), kernel.image)).toBe(true);
    expect(sameFile(r.at(`/boot/System.map-${V}`), kernel.systemMap)).toBe(true);
    expect(sameFile(r.at(`/boot/config-${V}`), kernel.config)).toBe(true);
  });

  it('"newest" is version order, not name order: 6.1.10 over 6.1.9', async () => {
    const r = newRoot();
    // Both hold the real image under another release name, so --force lets either install.
    for (const version of ['6.1.9-gentoo', '6.1.10-gentoo']) stageInto(r, version);
    expectOk(await kinstall(['--force', '--root', r.root, ...COMPAT]));
    expect(vmlinuzIn(r.boot)).toEqual(['vmlinuz-6.1.10-gentoo']);
  });

  it('with nothing staged: exit 3, ENOVERSION naming the modules dir, nothing changed', async () => {
    const r = newRoot();
    mkdirSync(r.at('/lib/modules/6.1.0-modules-only/kernel'), { recursive: true });
    const before = snapshotTree(r.root);
    const result = await kinstall(['--root', r.root, ...COMPAT]);
    expectError(result, 3, new RegExp(`^kinstall: ENOVERSION: .*no kernel is staged in ${escape(r.at('/lib/modules'))}`));
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('VERSION IMAGE with no verb works as `kinstall add VERSION IMAGE`; a third argument is a usage error', async () => {
    const implicit = newRoot();
    const explicit = newRoot();
    expectOk(await kinstall(['--root', implicit.root, ...COMPAT, V, kernel.image]));
    expectOk(await kinstall(['add', '--root', explicit.root, ...COMPAT, V, kernel.image]));
    expect(readdirSync(implicit.boot).sort()).toEqual([`System.map-${V}`, `config-${V}`, `vmlinuz-${V}`]);
    expect(installed(implicit)).toEqual(installed(explicit));
    expect(readFileSync(implicit.at('/var/log/installkernel.log'), 'utf8')).toMatch(
      new RegExp(`\\tkinstall\\t${escape(V)}\\tnotset\\tcompat\\t`),
    );

    const before = snapshotTree(implicit.root);
    const three = await kinstall(['--root', implicit.root, ...COMPAT, V, kernel.image, kernel.systemMap]);
    expectError(three, 2, /^kinstall: EUSAGE: add takes at most VERSION and IMAGE, found 3 arguments$/);
    expect(snapshotTree(implicit.root)).toEqual(before);
  });

  it('VERSION alone with no verb installs that staged version, not the newest', async () => {
    const r = newRoot();
    stageInto(r, V);
    stageInto(r, '9.9.9-newer');
    expectOk(await kinstall(['--root', r.root, ...COMPAT, V]));
    expect(vmlinuzIn(r.boot)).toEqual([`vmlinuz-${V}`]);
  });
});

describe('kinstall stage --modules-dir', () => {
  /** What `make modules_install INSTALL_MOD_PATH=DIR` leaves: DIR/lib/modules/KVER with a build link. */
  function modulesInstall(r: TestRoot, dir: string, buildDir: string): string {
    const tree = r.at(`${dir}/lib/modules/${V}`);
    mkdirSync(path.dirname(tree), { recursive: true });
    execFileSync('cp', ['-al', kernel.modules, tree]);
    symlinkSync(buildDir, path.join(tree, 'build'));
    return r.at(dir);
  }

  it('copies the installed modules tree into <root>/lib/modules/KVER beside the kernel, which then installs', async () => {
    const r = newRoot();
    const build = buildTree(r, '/var/tmp/linux-build');
    const moddir = modulesInstall(r, '/var/tmp/modinst', '/var/tmp/linux-build');
    const sources = { build: snapshotTree(build), modules: snapshotTree(moddir) };
    expect(existsSync(r.at(`/lib/modules/${V}`))).toBe(false);

    const result = await kinstall(['stage', '--build-dir', build, '--modules-dir', moddir, '--root', r.root]);
    expectOk(result);
    expect(result.stdout).toBe(`staged ${V} in ${r.at(`/lib/modules/${V}`)}`);
    const staged = snapshotTree(r.at(`/lib/modules/${V}`));
    const { vmlinuz, 'System.map': systemMap, config, ...modules } = staged;
    // Every module, index file and directory, with its mode and content; the build link as it was made.
    expect(modules).toEqual(snapshotTree(path.join(moddir, `lib/modules/${V}`)));
    expect(modules.build).toBe('link /var/tmp/linux-build');
    expect(Object.keys(modules).filter((k) => k.endsWith('.ko') || k.endsWith('.ko.xz')).length).toBeGreaterThan(100);
    expect([vmlinuz, systemMap, config].every((v) => v?.startsWith('file 644 '))).toBe(true);
    expect(sameFile(r.at(`/lib/modules/${V}/vmlinuz`), kernel.image)).toBe(true);
    // The sources are read, never written.
    expect(snapshotTree(build)).toEqual(sources.build);
    expect(snapshotTree(moddir)).toEqual(sources.modules);

    // The staged kernel with its modules installs (the default verb) and depmod indexes the copied tree.
    expectOk(await kinstall(['--root', r.root, ...COMPAT]));
    expect(sameFile(r.at(`/boot/vmlinuz-${V}`), kernel.image)).toBe(true);
    expect(readFileSync(r.at(`/lib/modules/${V}/modules.dep`), 'utf8')).toMatch(
      /^kernel\/drivers\/block\/virtio_blk\.ko(\.xz)?:/m,
    );
  });

  it('a modules dir with no modules.order: exit 3, ENOBUILD, nothing staged', async () => {
    const r = newRoot();
    const build = buildTree(r, '/var/tmp/linux-build');
    mkdirSync(r.at(`/var/tmp/empty/lib/modules/${V}/kernel`), { recursive: true });
    const before = snapshotTree(r.at('/lib/modules'));
    const result = await kinstall(['stage', '--build-dir', build, '--modules-dir', r.at('/var/tmp/empty'), '--root', r.root]);
    expectError(
      result,
      3,
      new RegExp(`^kinstall: ENOBUILD: .*${escape(r.at('/var/tmp/empty'))}.*no modules\\.order for ${escape(V)}`),
    );
    expect(snapshotTree(r.at('/lib/modules'))).toEqual(before);
  });

  it('a stage that fails after reading --modules-dir leaves the neutral location as it was', async () => {
    const r = newRoot();
    const build = buildTree(r, '/var/tmp/linux-build');
    const moddir = modulesInstall(r, '/var/tmp/modinst', '/var/tmp/linux-build');
    // A directory where the kernel goes: placing vmlinuz fails, the transaction rolls back.
    mkdirSync(r.at(`/lib/modules/${V}/vmlinuz/in-the-way`), { recursive: true });
    const before = snapshotTree(r.at('/lib/modules'));
    const result = await kinstall(['stage', '--build-dir', build, '--modules-dir', moddir, '--root', r.root]);
    expectError(result, 5, /nothing was changed$/);
    // Listed first, so a failure shows a short diff rather than a thousand modules.
    expect(readdirSync(r.at(`/lib/modules/${V}`))).toEqual(['vmlinuz']);
    expect(snapshotTree(r.at('/lib/modules'))).toEqual(before);
  });
});

/** A root grub-mkconfig can run in (chroot): dash as /bin/sh and the recording fake. */
function grubRoot(
  r: TestRoot,
  tools: Record<string, string> = { '/usr/sbin/grub-mkconfig': path.join(FAKES, 'grub-mkconfig') },
): TestRoot {
  installInRoot(r, tools);
  mkdirSync(r.at('/etc/default'), { recursive: true });
  writeFileSync(r.at('/etc/default/grub'), 'GRUB_TIMEOUT=0\nGRUB_DISTRIBUTOR=Gentoo\nGRUB_CMDLINE_LINUX="console=ttyS0"\n');
  return r;
}

const mkconfigRuns = (r: TestRoot) =>
  existsSync(r.at(MKCONFIG_LOG)) ? readFileSync(r.at(MKCONFIG_LOG), 'utf8').trim().split('\n') : [];
const OLD_CFG = '# the grub.cfg from before\n';

describe('layout=auto and grub', () => {
  it('a root with <boot>/grub/grub.cfg is installed with the grub layout, and the log says why', async () => {
    const r = grubRoot(newRoot());
    put(r, '/boot/grub/grub.cfg', OLD_CFG);
    const result = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image]);
    expectOk(result);
    expect(result.stderr).toContain(`layout=auto: chose grub: ${r.at('/boot/grub/grub.cfg')} exists`);
    expect(result.stderr).toContain(`installed ${V} (grub)`);
    expect(mkconfigRuns(r)).toEqual(['-o /boot/grub/grub.cfg.kinstall-new']);
    expect(readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8')).toContain(`\tlinux /vmlinuz-${V} console=ttyS0 \n`);
    expect(readFileSync(r.at('/boot/grub/grub.cfg~'), 'utf8')).toBe(OLD_CFG);
    expect(readdirSync(r.at('/boot/grub')).sort()).toEqual(['grub.cfg', 'grub.cfg~']);
    expect(sameFile(r.at(`/boot/vmlinuz-${V}`), kernel.image)).toBe(true);
  });

  it('loader/entries on an ESP wins over grub.cfg: bls, and grub-mkconfig never runs', async () => {
    const r = grubRoot(newRoot());
    put(r, '/boot/grub/grub.cfg', OLD_CFG);
    mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
    put(r, '/etc/kernel/cmdline', 'root=/dev/vda2 ro\n');
    put(r, '/etc/machine-id', '0123456789abcdef0123456789abcdef\n');
    const result = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image]);
    expectOk(result);
    expect(result.stderr).toContain(`layout=auto: chose bls: ${r.at('/efi/loader/entries')} exists`);
    expect(readdirSync(r.at('/efi/loader/entries'))).toEqual([`0123456789abcdef0123456789abcdef-${V}.conf`]);
    expect(sameFile(r.at(`/efi/0123456789abcdef0123456789abcdef/${V}/linux`), kernel.image)).toBe(true);
    expect(mkconfigRuns(r)).toEqual([]);
    expect(readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8')).toBe(OLD_CFG);
    expect(vmlinuzIn(r.boot)).toEqual([]);
  });

  it('/etc/lilo.conf wins over grub.cfg: lilo runs, grub-mkconfig never does', async () => {
    const r = grubRoot(newRoot({ config: { lilo: { command: path.join(FAKES, 'lilo') } } }));
    put(r, '/boot/grub/grub.cfg', OLD_CFG);
    put(
      r,
      '/etc/lilo.conf',
      'boot=/dev/vda\nmap=/boot/map\nimage=/boot/vmlinuz\n    label=linux\n    read-only\n    root=/dev/vda2\n',
    );
    const liloLog = r.at('/var/log/lilo.fake.log');
    const result = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image], {
      env: { LILO_FAKE_LOG: liloLog },
    });
    expectOk(result);
    expect(result.stderr).toContain(`layout=auto: chose lilo: ${r.at('/etc/lilo.conf')} exists`);
    expect(
      readFileSync(liloLog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]),
    ).toEqual([
      ['-t', '-r', r.root, '-C', '/etc/lilo.conf'],
      ['-r', r.root, '-C', '/etc/lilo.conf'],
    ]);
    expect(lstatSync(r.at('/boot/vmlinuz')).isSymbolicLink()).toBe(true);
    expect(readFileSync(r.at('/boot/map'), 'utf8')).toContain(`image /boot/vmlinuz -> /boot/vmlinuz-${V}`);
    expect(mkconfigRuns(r)).toEqual([]);
    expect(readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8')).toBe(OLD_CFG);
  });

  it('GRUB_CFG names grub.cfg: auto finds it there and grub-mkconfig writes it there; without it, compat', async () => {
    const r = grubRoot(newRoot());
    put(r, '/boot/grub2/grub.cfg', OLD_CFG);
    const before = snapshotTree(r.root);
    const dry = await kinstall(['add', '--dry-run', '--root', r.root, '--initramfs', 'none', V, kernel.image]);
    expectOk(dry);
    expect(dry.stderr).toContain('layout=auto: chose compat: no other layout detected');
    expect(snapshotTree(r.root)).toEqual(before);

    const result = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image], {
      env: { GRUB_CFG: '/boot/grub2/grub.cfg' },
    });
    expectOk(result);
    expect(result.stderr).toContain(`layout=auto: chose grub: ${r.at('/boot/grub2/grub.cfg')} exists`);
    expect(mkconfigRuns(r)).toEqual(['-o /boot/grub2/grub.cfg.kinstall-new']);
    expect(readFileSync(r.at('/boot/grub2/grub.cfg'), 'utf8')).toContain(`linux /vmlinuz-${V} `);
    expect(readFileSync(r.at('/boot/grub2/grub.cfg~'), 'utf8')).toBe(OLD_CFG);
    expect(existsSync(r.at('/boot/grub'))).toBe(false);
  });

  it('the config key grub.cfg names grub.cfg, grub.mkconfig the command; GRUB_CFG wins over the key', async () => {
    // A recording script of its own name, so only the configured command can have run.
    const r = grubRoot(
      newRoot({ config: { grub: { cfg: '/boot/grub2/grub.cfg', mkconfig: '/usr/local/sbin/record-mkconfig' } } }),
      {
        '/usr/local/sbin/record-mkconfig': path.join(FAKES, 'grub-mkconfig'),
      },
    );
    put(r, '/boot/grub2/grub.cfg', OLD_CFG);
    const result = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image]);
    expectOk(result);
    expect(result.stderr).toContain(`layout=auto: chose grub: ${r.at('/boot/grub2/grub.cfg')} exists`);
    expect(mkconfigRuns(r)).toEqual(['-o /boot/grub2/grub.cfg.kinstall-new']);
    expect(readFileSync(r.at('/boot/grub2/grub.cfg'), 'utf8')).toContain(`linux /vmlinuz-${V} `);
    expect(existsSync(r.at('/usr/sbin/grub-mkconfig'))).toBe(false);

    put(r, '/boot/efi-grub/grub.cfg', OLD_CFG);
    const grub2Before = readFileSync(r.at('/boot/grub2/grub.cfg'));
    const env = await kinstall(['add', '--root', r.root, '--initramfs', 'none', V, kernel.image], {
      env: { GRUB_CFG: '/boot/efi-grub/grub.cfg' },
    });
    expectOk(env);
    expect(env.stderr).toContain(`layout=auto: chose grub: ${r.at('/boot/efi-grub/grub.cfg')} exists`);
    expect(mkconfigRuns(r)).toEqual(['-o /boot/grub2/grub.cfg.kinstall-new', '-o /boot/efi-grub/grub.cfg.kinstall-new']);
    expect(readFileSync(r.at('/boot/efi-grub/grub.cfg'), 'utf8')).toContain(`linux /vmlinuz-${V} `);
    expect(readFileSync(r.at('/boot/grub2/grub.cfg')).equals(grub2Before)).toBe(true);
  });
});

describe('efistub finds the ESP disk and partition with findmnt and lsblk', () => {
  const EFIBOOTMGR = path.join(FAKES, 'efibootmgr');

  /** A root with an ESP at /boot/efi, no disk/part in the config, and fakes that know which device it is. */
  function espRoot(partition: string, disk: string, options: Record<string, unknown> = {}) {
    const r = newRoot({ config: { efistub: { efibootmgr: EFIBOOTMGR, efivars: true, ...options } } });
    mkdirSync(r.at('/boot/efi/EFI'), { recursive: true });
    put(r, '/etc/kernel/cmdline', 'root=/dev/vda2 ro\n');
    put(r, '/etc/os-release', 'NAME=Gentoo\nID=gentoo\n');
    // The ESP and the root filesystem as the host sees them; the disk has one more partition.
    put(r, '/var/fake/mounts', `/dev/vda2 / ext4 rw,relatime 0 0\n${partition} ${r.at('/boot/efi')} vfat rw,relatime 0 0\n`);
    const name = path.basename(partition);
    const other = name.replace(/[0-9]+$/, (n) => String(Number(n) + 1));
    put(r, '/var/fake/devices', `vda - disk\nvda2 vda part\n${disk} - disk\n${name} ${disk} part\n${other} ${disk} part\n`);
    const bin = r.at('/var/fake/bin');
    mkdirSync(bin, { recursive: true });
    for (const tool of ['findmnt', 'lsblk']) symlinkSync(path.join(FAKES, tool), path.join(bin, tool));
    const env = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      FINDMNT_FAKE_MOUNTS: r.at('/var/fake/mounts'),
      LSBLK_FAKE_DEVICES: r.at('/var/fake/devices'),
      EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json'),
    };
    const log = (file: string) =>
      existsSync(r.at(file))
        ? readFileSync(r.at(file), 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as string[])
        : [];
    return {
      r,
      env,
      add: () => kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', V, kernel.image], { env }),
      findmnt: () => log('/var/fake/mounts.log'),
      lsblk: () => log('/var/fake/devices.log'),
      efibootmgr: () => log('/var/fake/efi.json.log'),
    };
  }

  const creates = (calls: string[][]) => calls.filter((c) => c[0] === '--create').map((c) => c.slice(0, 5));

  for (const [partition, disk, part] of [
    ['/dev/nvme0n1p1', 'nvme0n1', '1'],
    ['/dev/sda2', 'sda', '2'],
    ['/dev/mmcblk0p12', 'mmcblk0', '12'],
  ] as const) {
    it(`an ESP mounted from ${partition}: efibootmgr --create --disk /dev/${disk} --part ${part}`, async () => {
      const esp = espRoot(partition, disk);
      const result = await esp.add();
      expectOk(result);
      expect(creates(esp.efibootmgr())).toEqual([['--create', '--disk', `/dev/${disk}`, '--part', part]]);
      expect(esp.findmnt()).toContainEqual(['-n', '-o', 'SOURCE', '--mountpoint', esp.r.at('/boot/efi')]);
      expect(esp.lsblk()).toContainEqual(['-n', '-d', '-o', 'PKNAME', partition]);
      const state = JSON.parse(readFileSync(esp.r.at('/var/fake/efi.json'), 'utf8')) as {
        entries: Record<string, { disk: string; part: number; loader: string }>;
      };
      expect(Object.values(state.entries)).toEqual([
        expect.objectContaining({ disk: `/dev/${disk}`, part: Number(part), loader: `\\EFI\\Gentoo\\vmlinuz-${V}.efi` }),
      ]);
      expect(sameFile(esp.r.at(`/boot/efi/EFI/Gentoo/vmlinuz-${V}.efi`), kernel.image)).toBe(true);
    });
  }

  it('efistub.disk alone takes the partition number from the mount', async () => {
    const esp = espRoot('/dev/nvme0n1p3', 'nvme0n1', { disk: '/dev/nvme1n1' });
    expectOk(await esp.add());
    expect(creates(esp.efibootmgr())).toEqual([['--create', '--disk', '/dev/nvme1n1', '--part', '3']]);
  });

  it('disk and part in the config: findmnt and lsblk are never asked', async () => {
    const esp = espRoot('/dev/nvme0n1p1', 'nvme0n1', { disk: '/dev/vdb', part: 4 });
    expectOk(await esp.add());
    expect(creates(esp.efibootmgr())).toEqual([['--create', '--disk', '/dev/vdb', '--part', '4']]);
    expect(esp.findmnt()).toEqual([]);
    expect(esp.lsblk()).toEqual([]);
  });

  it('an ESP that is not a mount point: exit 4 saying to set efistub.disk and efistub.part; firmware and files untouched', async () => {
    const esp = espRoot('/dev/nvme0n1p1', 'nvme0n1');
    // The mount table names another directory: findmnt fails for the ESP, as the real one does.
    put(esp.r, '/var/fake/mounts', `/dev/vda2 / ext4 rw 0 0\n/dev/nvme0n1p1 ${esp.r.at('/efi')} vfat rw 0 0\n`);
    const before = snapshotTree(esp.r.boot);
    const result = await esp.add();
    expectError(result, 4, /^kinstall: EPREFLIGHT: /);
    expect(result.stderr).toContain(
      `cannot tell which disk and partition hold the ESP ${esp.r.at('/boot/efi')}: set efistub.disk and efistub.part in the config file`,
    );
    expect(esp.findmnt()).toContainEqual(['-n', '-o', 'SOURCE', '--mountpoint', esp.r.at('/boot/efi')]);
    expect(esp.lsblk()).toEqual([]);
    expect(esp.efibootmgr()).toEqual([]);
    expect(snapshotTree(esp.r.boot)).toEqual(before);
  });
});

describe('a boot dir other than /boot', () => {
  it('--boot-dir /boot2 puts the compat files in <root>/boot2; list and remove look there too', async () => {
    const r = newRoot();
    const before = snapshotTree(r.root);
    const missing = await kinstall(['add', '--root', r.root, '--boot-dir', '/boot2', ...COMPAT, V, kernel.image]);
    expectError(missing, 4, /^kinstall: EPREFLIGHT: /);
    expect(missing.stderr).toContain(`boot dir ${r.at('/boot2')} does not exist`);
    expect(snapshotTree(r.root)).toEqual(before);

    mkdirSync(r.at('/boot2'));
    const result = await kinstall(['add', '--root', r.root, '--boot-dir', '/boot2', ...COMPAT, V, kernel.image]);
    expectOk(result);
    expect(readdirSync(r.at('/boot2')).sort()).toEqual([`System.map-${V}`, `config-${V}`, `vmlinuz-${V}`]);
    expect(sameFile(r.at(`/boot2/vmlinuz-${V}`), kernel.image)).toBe(true);
    expect(readdirSync(r.boot)).toEqual([]);

    const listed = await kinstall(['list', '--json', '--root', r.root, '--boot-dir', '/boot2', '--layout', 'compat']);
    expectOk(listed);
    expect(
      (JSON.parse(listed.stdout) as Array<{ version: string; files: string[] }>).map((k) => [
        k.version,
        k.files.includes(r.at(`/boot2/vmlinuz-${V}`)),
      ]),
    ).toEqual([[V, true]]);
    const inBoot = await kinstall(['list', '--json', '--root', r.root, '--layout', 'compat']);
    expect(JSON.parse(inBoot.stdout)).toEqual([]);

    expectOk(await kinstall(['remove', '--root', r.root, '--boot-dir', '/boot2', '--layout', 'compat', V]));
    expect(readdirSync(r.at('/boot2'))).toEqual([]);
  });

  it("installkernel's DIR argument is the boot dir", async () => {
    const r = newRoot();
    mkdirSync(r.at('/boot2'));
    expectOk(await installkernel([V, kernel.image, kernel.systemMap, '/boot2', '--root', r.root, ...COMPAT]));
    expect(readdirSync(r.at('/boot2')).sort()).toEqual([`System.map-${V}`, `config-${V}`, `vmlinuz-${V}`]);
    expect(sameFile(r.at(`/boot2/System.map-${V}`), kernel.systemMap)).toBe(true);
    expect(readdirSync(r.boot)).toEqual([]);
  });
});
