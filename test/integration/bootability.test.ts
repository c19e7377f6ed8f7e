// The bootability check on the self-built kernel (make O= tree, 6.1.192): edited copies of its
// .config (no rebuild), a target fstab per root filesystem, real dracut arguments and real
// prebuilt initramfs files made with cpio and the compressors. Each rule fails and passes.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall, top } from '../helpers/cli.js';
import { fastDracutArgs, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const KBUILD = execFileSync('bash', [path.join(top, 'scripts/build-test-kernel.sh')], { encoding: 'utf8' }).trim();
const V = readFileSync(path.join(KBUILD, 'include/config/kernel.release'), 'utf8').trim();
const SRC = `/usr/src/linux-${V}`;
const FAKE_EFIBOOTMGR = path.join(top, 'test/fakes/efibootmgr');

const newRoot = useScratchRoots();
let root: TestRoot;

interface Setup {
  /** Options to set (y, m) or unset (n) in the copy of the kernel's .config. */
  config?: Record<string, 'y' | 'm' | 'n'>;
  /** The target's root line: device and type. */
  fstab?: [string, string];
  /** A modules.order in the neutral location (dracut's preflight wants one; MODULES=y follows). */
  modules?: boolean;
  /** Extra keys for the kinstall config file. */
  settings?: Record<string, unknown>;
  /** No .config beside the image: a bare image. */
  bare?: boolean;
}

/** The kernel as `make install` leaves it in the target's /usr/src: bzImage, System.map, .config edited. */
function setup(options: Setup = {}): TestRoot {
  const r = newRoot({ config: options.settings ?? {} });
  const dir = r.at(SRC);
  mkdirSync(dir, { recursive: true });
  copyFileSync(path.join(KBUILD, 'arch/x86/boot/bzImage'), path.join(dir, 'bzImage'));
  copyFileSync(path.join(KBUILD, 'System.map'), path.join(dir, 'System.map'));
  if (!options.bare) {
    let text = readFileSync(path.join(KBUILD, '.config'), 'utf8');
    for (const [option, value] of Object.entries(options.config ?? {})) {
      text = text.replace(new RegExp(`^(CONFIG_${option}=.*|# CONFIG_${option} is not set)\\n`, 'm'), '');
      text += value === 'n' ? `# CONFIG_${option} is not set\n` : `CONFIG_${option}=${value}\n`;
    }
    writeFileSync(path.join(dir, '.config'), text);
  }
  const [device, type] = options.fstab ?? ['UUID=0f3b2a4e-1111-4c6a-9d55-0123456789ab', 'ext4'];
  writeFileSync(r.at('/etc/fstab'), `# target\n${device} / ${type} defaults 0 1\n`);
  if (options.modules) {
    mkdirSync(r.at(`/lib/modules/${V}`), { recursive: true });
    copyFileSync(path.join(KBUILD, 'modules.order'), r.at(`/lib/modules/${V}/modules.order`));
  }
  return r;
}

const add = (r: TestRoot, args: string[], env: Record<string, string> = {}) =>
  kinstall(['add', '--root', r.root, '--layout', 'compat', ...args, V, r.at(`${SRC}/bzImage`)], { env });

/** A refusal: exit 4, EUNBOOTABLE, every needed option named, nothing changed in the root. */
async function expectRefused(r: TestRoot, args: string[], needs: string[], env: Record<string, string> = {}) {
  const before = snapshotTree(r.root);
  const result = await add(r, args, env);
  expect(result.exitCode, result.stderr).toBe(4);
  expect(result.stderr).toContain(
    `kinstall: EUNBOOTABLE: the config of ${V} cannot boot this target: ${needs.length} kernel option(s) missing`,
  );
  for (const need of needs) expect(result.stderr).toContain(`  needs ${need}`);
  expect(result.stderr.match(/^ {2}needs /gm)).toHaveLength(needs.length);
  expect(snapshotTree(r.root)).toEqual(before);
  return result;
}

async function expectPassed(r: TestRoot, args: string[], env: Record<string, string> = {}) {
  const result = await add(r, ['--dry-run', ...args], env);
  expect(result.exitCode, result.stderr).toBe(0);
  expect(result.stderr).toContain('bootability check passed');
  return result;
}

/** A newc cpio holding one file, optionally compressed by `tool` (argv), as a prebuilt initramfs. */
function initramfs(r: TestRoot, name: string, tool?: string[]): string {
  const work = r.at(`/var/tmp/${name}.d`);
  mkdirSync(work, { recursive: true });
  writeFileSync(path.join(work, 'init'), '#!/bin/sh\n');
  const cpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: work, input: 'init\n' });
  const out = r.at(`/var/tmp/${name}`);
  writeFileSync(out, tool ? execFileSync(tool[0] ?? '', tool.slice(1), { input: cpio }) : cpio);
  return out;
}

describe('bootability check: the root filesystem', () => {
  for (const [type, option] of [
    ['ext4', 'EXT4_FS'],
    ['xfs', 'XFS_FS'],
    ['btrfs', 'BTRFS_FS'],
    ['f2fs', 'F2FS_FS'],
  ]) {
    it(`refuses a ${type} root without CONFIG_${option} and no initramfs; passes with =y`, async () => {
      root = setup({ fstab: ['LABEL=root', type ?? ''] });
      await expectRefused(
        root,
        ['--initramfs', 'none'],
        [`CONFIG_${option}=y for the root filesystem (${type}): without an initramfs it must be built in`],
      );
      root = setup({ fstab: ['LABEL=root', type ?? ''], config: { [option ?? '']: 'y' } });
      await expectPassed(root, ['--initramfs', 'none']);
    });
  }

  it('refuses =m without an initramfs, accepts =m with dracut (it carries the module)', async () => {
    root = setup({ config: { EXT4_FS: 'm' }, modules: true });
    await expectRefused(
      root,
      ['--initramfs', 'none'],
      ['CONFIG_EXT4_FS=y for the root filesystem (ext4): without an initramfs it must be built in'],
    );
    await expectPassed(root, ['--initramfs', 'dracut']);
  });

  it('takes ext3 through the ext4 driver and ext2 through EXT4_USE_FOR_EXT2', async () => {
    root = setup({ fstab: ['LABEL=root', 'ext2'], config: { EXT4_FS: 'y' } });
    await expectRefused(
      root,
      ['--initramfs', 'none'],
      [
        'CONFIG_EXT2_FS=y or CONFIG_EXT4_FS=y and CONFIG_EXT4_USE_FOR_EXT2=y for the root filesystem (ext2): without an initramfs it must be built in',
      ],
    );
    root = setup({ fstab: ['LABEL=root', 'ext2'], config: { EXT4_FS: 'y', EXT4_USE_FOR_EXT2: 'y' } });
    await expectPassed(root, ['--initramfs', 'none']);
  });

  it('warns for =m with a prebuilt initramfs: whether it carries the module cannot be known', async () => {
    root = setup({ config: { EXT4_FS: 'm' } });
    const result = await expectPassed(root, ['--initrd', initramfs(root, 'initrd.img', ['gzip', '-9'])]);
    expect(result.stderr).toContain(
      'bootability check: the root filesystem (ext4) is a module (=m): cannot know whether the prebuilt initramfs carries it',
    );
  });
});

describe('bootability check: the root device', () => {
  it('names the driver an fstab device needs (/dev/vda → VIRTIO_BLK, /dev/nvme → BLK_DEV_NVME)', async () => {
    root = setup({ fstab: ['/dev/vda2', 'ext4'], config: { EXT4_FS: 'y' } });
    await expectRefused(
      root,
      ['--initramfs', 'none'],
      ['CONFIG_VIRTIO_BLK=y for the root device /dev/vda2: without an initramfs it must be built in'],
    );
    root = setup({ fstab: ['/dev/vda2', 'ext4'], config: { EXT4_FS: 'y', VIRTIO_BLK: 'y' } });
    await expectPassed(root, ['--initramfs', 'none']);
    root = setup({ fstab: ['/dev/nvme0n1p2', 'ext4'], config: { EXT4_FS: 'y' } });
    await expectRefused(
      root,
      ['--initramfs', 'none'],
      ['CONFIG_BLK_DEV_NVME=y for the root device /dev/nvme0n1p2: without an initramfs it must be built in'],
    );
  });

  it('an encrypted root (crypttab) needs device mapper and dm-crypt; UUID= says nothing', async () => {
    root = setup({ fstab: ['/dev/mapper/root', 'ext4'], config: { EXT4_FS: 'y' }, modules: true });
    writeFileSync(root.at('/etc/crypttab'), 'root UUID=1234 none luks\n');
    await expectRefused(
      root,
      ['--initramfs', 'dracut'],
      [
        'CONFIG_BLK_DEV_DM=y (or =m, loaded by the dracut initramfs) for the encrypted root device /dev/mapper/root',
        'CONFIG_DM_CRYPT=y (or =m, loaded by the dracut initramfs) for the encrypted root device /dev/mapper/root',
      ],
    );
    root = setup({
      fstab: ['/dev/mapper/root', 'ext4'],
      config: { EXT4_FS: 'y', BLK_DEV_DM: 'm', DM_CRYPT: 'm' },
      modules: true,
    });
    writeFileSync(root.at('/etc/crypttab'), 'root UUID=1234 none luks\n');
    await expectPassed(root, ['--initramfs', 'dracut']);
  });
});

describe('bootability check: the initramfs', () => {
  const dracutWith = (r: TestRoot, extra: string[]) => {
    const args = [...fastDracutArgs(r.at('/etc/dracut-empty.conf.d')), ...extra];
    writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ dracut: { args } }));
  };

  it('needs BLK_DEV_INITRD for any initramfs', async () => {
    root = setup({ config: { EXT4_FS: 'y', BLK_DEV_INITRD: 'n' }, modules: true });
    await expectRefused(root, ['--initramfs', 'dracut'], ['CONFIG_BLK_DEV_INITRD=y for loading the dracut initramfs (found n)']);
    await expectPassed(root, ['--initramfs', 'none']);
  });

  it("needs the RD_ option of dracut's compressor (--compress in its arguments)", async () => {
    root = setup({ config: { EXT4_FS: 'y', RD_XZ: 'n' }, modules: true });
    dracutWith(root, ['--compress', 'xz']);
    await expectRefused(root, ['--initramfs', 'dracut'], ['CONFIG_RD_XZ=y for unpacking the dracut initramfs (xz) (found n)']);
    dracutWith(root, ['--compress', 'gzip']);
    await expectPassed(root, ['--initramfs', 'dracut']);
  });

  it("takes compress= from dracut's config file as the user's choice; without one, kinstall's never lacks its RD_ option", async () => {
    root = setup({ config: { EXT4_FS: 'y', RD_GZIP: 'n', RD_LZ4: 'n' }, modules: true });
    await expectPassed(root, ['--initramfs', 'dracut']);
    writeFileSync(root.at('/etc/dracut-empty.conf.d/10-gzip.conf'), 'compress="gzip"\n');
    await expectRefused(
      root,
      ['--initramfs', 'dracut'],
      ['CONFIG_RD_GZIP=y for unpacking the dracut initramfs (gzip) (found n)'],
    );
  });

  it("reads a prebuilt image's magic, each part of an early cpio + compressed one", async () => {
    root = setup({ config: { EXT4_FS: 'y', RD_ZSTD: 'n' } });
    const early = initramfs(root, 'early.cpio');
    const main = initramfs(root, 'main.zst', ['zstd', '-q', '-c']);
    await expectRefused(
      root,
      ['--initrd', early, '--initrd', main],
      ['CONFIG_RD_ZSTD=y for unpacking the prebuilt initramfs (zstd) (found n)'],
    );
    await expectPassed(root, ['--initrd', early, '--initrd', initramfs(root, 'main.gz', ['gzip', '-c'])]);
    await expectPassed(root, ['--initrd', early]);
  });

  it('refuses a truncated or corrupt prebuilt initramfs in preflight (EPREFLIGHT, exit 4), nothing changed', async () => {
    root = setup({ config: { EXT4_FS: 'y' } });
    const whole = readFileSync(initramfs(root, 'whole.gz', ['gzip', '-c']));
    const cut = root.at('/var/tmp/cut.gz');
    writeFileSync(cut, whole.subarray(0, whole.length - 12));
    const text = root.at('/var/tmp/text.img');
    writeFileSync(text, 'not an initramfs\n');
    const cpio = readFileSync(initramfs(root, 'short.cpio'));
    const short = root.at('/var/tmp/short-cut.cpio');
    writeFileSync(short, cpio.subarray(0, 200));
    for (const [file, why] of [
      [cut, 'its gzip stream at byte 0 does not decompress (gzip -t:'],
      [text, 'byte 0 starts neither a cpio archive nor a compressed one the kernel knows (0x6e6f7420)'],
      [short, 'the cpio archive at byte 0 ends inside'],
    ] as const) {
      const before = snapshotTree(root.root);
      const result = await add(root, ['--initrd', file]);
      expect(result.exitCode, result.stderr).toBe(4);
      expect(result.stderr).toContain(
        `kinstall: EPREFLIGHT: 1 preflight check(s) failed: initramfs ${file} is truncated or corrupt: ${why}`,
      );
      expect(snapshotTree(root.root)).toEqual(before);
    }
  });

  it("needs the options systemd's README lists when dracut's initramfs runs systemd", async () => {
    root = setup({ config: { EXT4_FS: 'y', CGROUPS: 'n', FHANDLE: 'n' }, modules: true });
    // Without -m base, dracut takes its default modules: systemd among them.
    writeFileSync(
      root.at('/etc/kinstall/config.json'),
      JSON.stringify({ dracut: { args: ['--conf', '/dev/null', '--confdir', root.at('/etc/dracut-empty.conf.d')] } }),
    );
    await expectRefused(
      root,
      ['--initramfs', 'dracut'],
      [
        'CONFIG_CGROUPS=y for systemd in the dracut initramfs (found n)',
        'CONFIG_FHANDLE=y for systemd in the dracut initramfs (found n)',
      ],
    );
    dracutWith(root, ['--omit', 'systemd']);
    await expectPassed(root, ['--initramfs', 'dracut']);
  });

  it('dracut needs DEVTMPFS; a kernel with modules needs MODULES', async () => {
    root = setup({ config: { EXT4_FS: 'y', DEVTMPFS: 'n', MODULES: 'n' }, modules: true });
    await expectRefused(
      root,
      ['--initramfs', 'dracut'],
      [
        'CONFIG_DEVTMPFS=y for the dracut initramfs (found n)',
        `CONFIG_MODULES=y for the modules in ${root.at(`/lib/modules/${V}`)} (found n)`,
      ],
    );
    root = setup({ config: { EXT4_FS: 'y', DEVTMPFS: 'n', MODULES: 'n' } });
    await expectPassed(root, ['--initramfs', 'none']);
  });
});

describe('bootability check: the layout, --force, --dry-run', () => {
  function efiSetup(config: Record<string, 'y' | 'm' | 'n'>): TestRoot {
    const r = setup({
      config: { EXT4_FS: 'y', ...config },
      settings: { efistub: { efibootmgr: FAKE_EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1 } },
    });
    mkdirSync(r.at('/boot/efi/EFI'), { recursive: true });
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    mkdirSync(r.at('/var/fake'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/cmdline'), 'root=LABEL=root ro\n');
    writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
    writeFileSync(r.at('/var/fake/efi.json'), JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: [], entries: {} }));
    return r;
  }
  const efistub = (r: TestRoot, args: string[]) =>
    kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', ...args, V, r.at(`${SRC}/bzImage`)], {
      env: { EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json') },
    });

  it('efistub needs EFI_STUB and EFI, declared by the layout', async () => {
    root = efiSetup({ EFI_STUB: 'n', EFI: 'n' });
    const before = snapshotTree(root.root);
    const refused = await efistub(root, []);
    expect(refused.exitCode, refused.stderr).toBe(4);
    expect(refused.stderr).toContain('EUNBOOTABLE');
    expect(refused.stderr).toContain('  needs CONFIG_EFI=y for the efistub layout (found n)');
    expect(refused.stderr).toContain('  needs CONFIG_EFI_STUB=y for the efistub layout (found n)');
    expect(snapshotTree(root.root)).toEqual(before);
    root = efiSetup({});
    const passed = await efistub(root, ['--dry-run']);
    expect(passed.exitCode, passed.stderr).toBe(0);
    expect(passed.stderr).toContain('the efistub layout');
  });

  it('--force installs anyway with a warning per option; so does bootabilityCheck = "warn"', async () => {
    root = setup({ fstab: ['/dev/vda2', 'xfs'] });
    const forced = await add(root, ['--initramfs', 'none', '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(
      'bootability check: the kernel may not boot: needs CONFIG_XFS_FS=y for the root filesystem (xfs)',
    );
    expect(forced.stderr).toContain(
      'bootability check: the kernel may not boot: needs CONFIG_VIRTIO_BLK=y for the root device /dev/vda2',
    );
    expect(forced.stderr).toContain(
      `bootability check failed for ${V} (${root.at(`${SRC}/.config`)}); installing anyway (--force)`,
    );
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(path.join(KBUILD, 'arch/x86/boot/bzImage')))).toBe(
      true,
    );
    root = setup({ fstab: ['LABEL=root', 'xfs'], settings: { bootabilityCheck: 'warn' } });
    const warned = await add(root, ['--initramfs', 'none', '--dry-run']);
    expect(warned.exitCode, warned.stderr).toBe(0);
    expect(warned.stderr).toContain('installing anyway (bootabilityCheck = "warn")');
  });

  it('--dry-run lists the check and what it covered; a refusal under --dry-run is the same exit 4', async () => {
    root = setup({ fstab: ['/dev/vda2', 'ext4'], config: { EXT4_FS: 'y', VIRTIO_BLK: 'y' } });
    const listed = await expectPassed(root, ['--initramfs', 'none']);
    expect(listed.stderr).toContain(
      `bootability check passed (${root.at(`${SRC}/.config`)}): the root filesystem (ext4), the root device /dev/vda2, no initramfs, the compat layout`,
    );
    root = setup({ fstab: ['/dev/vda2', 'ext4'] });
    await expectRefused(
      root,
      ['--dry-run', '--initramfs', 'none'],
      [
        'CONFIG_EXT4_FS=y for the root filesystem (ext4): without an initramfs it must be built in',
        'CONFIG_VIRTIO_BLK=y for the root device /dev/vda2: without an initramfs it must be built in',
      ],
    );
  });

  it('a bare image without a config: one warning, installed', async () => {
    root = setup({ bare: true });
    const result = await add(root, ['--initramfs', 'none']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr.match(/bootability/g)).toHaveLength(1);
    expect(result.stderr).toContain(`bootability check skipped: no kernel config found for ${V} (a bare image)`);
  });

  it('reads include/config/auto.conf of a build tree without .config', async () => {
    root = setup({ bare: true });
    const tree = root.at(`${SRC}-tree`);
    mkdirSync(path.join(tree, 'arch/x86/boot'), { recursive: true });
    mkdirSync(path.join(tree, 'include/config'), { recursive: true });
    copyFileSync(path.join(KBUILD, 'arch/x86/boot/bzImage'), path.join(tree, 'arch/x86/boot/bzImage'));
    copyFileSync(path.join(KBUILD, 'System.map'), path.join(tree, 'System.map'));
    copyFileSync(path.join(KBUILD, 'include/config/auto.conf'), path.join(tree, 'include/config/auto.conf'));
    const result = await kinstall([
      'add',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      '--dry-run',
      V,
      path.join(tree, 'arch/x86/boot/bzImage'),
    ]);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(`config: ${path.join(tree, 'include/config/auto.conf')}`);
    expect(result.stderr).toContain('  needs CONFIG_EXT4_FS=y for the root filesystem (ext4)');
  });
});
