// The Gentoo ebuilds without portage: bash -n and shellcheck on each, then their phases run by
// test/helpers/ebuild-runner.sh (stand-ins for portage's helpers doing the real file operations),
// the image merged into a scratch root as portage would (test/helpers/portage-merge.ts), and
// pkg_postinst / pkg_prerm / pkg_postrm run there with the real kinstall (dist/) on the self-built
// kernel: installed, removed after an unmerge, kept through a same-version replacement.
import { execa } from 'execa';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { kinstall, kinstallBin, top } from '../helpers/cli.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { dropEntry, mergeImage, settleEntry, unmergeFiles, type InstalledPackage } from '../helpers/portage-merge.js';

const runner = path.join(top, 'test/helpers/ebuild-runner.sh');
const gentoo = path.join(top, 'packaging/gentoo');
const kinstallEbuilds = ['kinstall-9999.ebuild', 'kinstall-0.1.0.ebuild'].map((f) => path.join(gentoo, 'sys-kernel/kinstall', f));
const kernelEbuild = path.join(gentoo, 'sys-kernel/custom-kernel-bin/custom-kernel-bin-6.1.192.ebuild');
const KV = '6.1.192';
const kernelPkg: InstalledPackage = { category: 'sys-kernel', entry: `custom-kernel-bin-${KV}` };

const scratch: string[] = [];
const newRoot = useScratchRoots();
afterEach(() => {
  for (const dir of scratch.splice(0)) {
    assertScratch(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** A PATH with `kinstall` (the built dist/) first, as sys-kernel/kinstall installs it. */
const kinstallOnPath = mkdtempSync(path.join(os.tmpdir(), 'kinstall-bin-'));
symlinkSync(kinstallBin, path.join(kinstallOnPath, 'kinstall'));
const PATH = `${kinstallOnPath}:${process.env.PATH ?? ''}`;
afterAll(() => {
  assertScratch(kinstallOnPath);
  rmSync(kinstallOnPath, { recursive: true, force: true });
});

interface Build {
  workdir: string;
  t: string;
  image: string;
  envfile: string;
}

function newBuild(): Build {
  const dir = tempDir('ebuild-');
  const b = {
    workdir: path.join(dir, 'work'),
    t: path.join(dir, 'temp'),
    image: path.join(dir, 'image'),
    envfile: path.join(dir, 'environment'),
  };
  for (const d of [b.workdir, b.t, b.image]) mkdirSync(d);
  return b;
}

async function runEbuild(b: Build, args: string[], env: Record<string, string> = {}) {
  const result = await execa('bash', [runner, ...args], {
    env: { ...process.env, WORKDIR: b.workdir, T: b.t, D: b.image, USE: '', ...env },
    reject: false,
    stdin: 'ignore',
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

async function ok(b: Build, args: string[], env: Record<string, string> = {}) {
  const result = await runEbuild(b, args, env);
  expect(result.exitCode, `${args.join(' ')}\n${result.stderr}`).toBe(0);
  expect(result.stderr).not.toContain('ebuild-runner: no stand-in');
  return result;
}

/** Anything at the path, a dangling symlink included. */
const present = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

const staticFiles = [...kinstallEbuilds, kernelEbuild];

describe('ebuilds: syntax and shellcheck', () => {
  // Ebuild globals (EAPI, DESCRIPTION, SLOT, IUSE, *DEPEND …) are read by portage, not by the
  // file itself: SC2034 ("appears unused") is the one check that cannot apply to an ebuild.
  it.each(staticFiles.map((f) => [path.relative(top, f), f]))(
    '%s: bash -n and shellcheck -s bash -e SC2034 pass',
    async (_name, file) => {
      expect((await execa('bash', ['-n', file], { reject: false })).exitCode).toBe(0);
      const checked = await execa('shellcheck', ['-s', 'bash', '-e', 'SC2034', file], { reject: false });
      expect(checked.exitCode, checked.stdout).toBe(0);
    },
  );

  it('the live and the release ebuild are the same text (only PV tells them apart)', () => {
    const [live, release] = kinstallEbuilds.map((f) => readFileSync(f, 'utf8'));
    expect(release).toBe(live);
  });

  it('the runner, the distfile script and the completion pass shellcheck too', async () => {
    const files = ['test/helpers/ebuild-runner.sh', 'packaging/gentoo/make-distfile.sh', 'completion/kinstall.bash'].map((f) =>
      path.join(top, f),
    );
    const checked = await execa('shellcheck', ['-s', 'bash', ...files], { reject: false });
    expect(checked.exitCode, checked.stdout).toBe(0);
  });
});

describe('the phase runner', () => {
  it('stops on a helper it has no stand-in for, on an unknown eclass and on die, with the reason', async () => {
    const b = newBuild();
    const dir = path.join(tempDir('overlay-'), 'app-misc/probe');
    mkdirSync(dir, { recursive: true });
    const write = (body: string) => {
      const file = path.join(dir, 'probe-1.ebuild');
      writeFileSync(file, `EAPI=8\nIUSE=""\n${body}\n`);
      return file;
    };
    const unknown = await runEbuild(b, [
      'build',
      write('src_install() { insinto /x; dounknownhelper foo; }'),
      b.envfile,
      'src_install',
    ]);
    expect(unknown.exitCode).toBe(127);
    expect(unknown.stderr).toContain("no stand-in for 'dounknownhelper'");
    const eclass = await runEbuild(b, ['build', write('inherit cmake'), b.envfile, 'src_install']);
    expect(eclass.exitCode).toBe(1);
    expect(eclass.stderr).toContain('inherit cmake: the runner has no stand-in for this eclass');
    const died = await runEbuild(b, ['build', write('src_install() { false || die "it broke"; }'), b.envfile, 'src_install']);
    expect(died.exitCode).toBe(1);
    expect(died.stderr).toContain('die: it broke');
    const host = await runEbuild(b, ['pkg', b.envfile, 'pkg_postinst'], { ROOT: '/' });
    expect(host.exitCode).toBe(1);
    expect(host.stderr).toContain('never /');
  });
});

describe('sys-kernel/kinstall', () => {
  it('the release distfile (make-distfile.sh) installs dist, node_modules, hooks.d, man page, completion and /sbin/installkernel; the merged kinstall runs', async () => {
    const b = newBuild();
    const made = await execa('bash', [path.join(gentoo, 'make-distfile.sh'), b.t], {
      env: { ...process.env, NPM_CONFIG_PREFER_OFFLINE: 'true' },
      reject: false,
    });
    expect(made.exitCode, made.stderr).toBe(0);
    await execa('tar', ['-xzf', made.stdout.trim().split('\n').pop() ?? '', '-C', b.workdir]);
    await ok(b, ['build', kinstallEbuilds[1] ?? '', b.envfile, 'src_compile', 'src_install']);

    const img = (p: string) => path.join(b.image, p);
    const lib = 'usr/lib/kinstall';
    expect(JSON.parse(readFileSync(img(`${lib}/package.json`), 'utf8')).version).toBe('0.1.0');
    for (const p of [
      `${lib}/dist/src/cli/kinstall.js`,
      `${lib}/node_modules/winston/package.json`,
      'usr/share/man/man8/kinstall.8',
      'usr/share/doc/kinstall-0.1.0/README.md',
    ]) {
      expect(existsSync(img(p)), p).toBe(true);
    }
    expect(existsSync(img(`${lib}/node_modules/typescript`))).toBe(false);
    expect(lstatSync(img(`${lib}/hooks.d/50-dkms`)).mode & 0o777).toBe(0o755);
    expect(lstatSync(img(`${lib}/dist/src/cli/installkernel.js`)).mode & 0o777).toBe(0o755);
    expect(readlinkSync(img('usr/bin/kinstall'))).toBe('../lib/kinstall/dist/src/cli/kinstall.js');
    expect(readlinkSync(img('sbin/installkernel'))).toBe('/usr/lib/kinstall/dist/src/cli/installkernel.js');
    expect(readFileSync(img('usr/share/bash-completion/completions/kinstall'), 'utf8')).toContain(
      'complete -F _kinstall kinstall',
    );
    expect(readlinkSync(img('usr/share/bash-completion/completions/installkernel'))).toBe('kinstall');
    expect(readFileSync(img('usr/lib/systemd/system/kinstall-confirm.service'), 'utf8')).toContain(
      'ExecStart=/usr/bin/kinstall confirm',
    );
    expect(lstatSync(img('etc/init.d/kinstall-confirm')).mode & 0o777).toBe(0o755);
    expect(readFileSync(img('etc/init.d/kinstall-confirm'), 'utf8').split('\n')[0]).toBe('#!/sbin/openrc-run');

    const r = newRoot();
    mergeImage(b.image, r.root, { category: 'sys-kernel', entry: 'kinstall-0.1.0' }, b.envfile);
    const version = await execa(r.at('/usr/bin/kinstall'), ['--version'], { reject: false });
    expect(version.stdout).toBe('kinstall 0.1.0');
    const listed = await execa(r.at('/usr/bin/kinstall'), ['list', '--root', r.root], { reject: false });
    expect(listed.exitCode, listed.stderr).toBe(0);
    const postinst = await ok(b, ['pkg', b.envfile, 'pkg_postinst'], { ROOT: r.root, USE: 'dracut' });
    expect(postinst.stderr).toContain(
      `elog: Choose the layout and how many kernels stay bootable in ${r.root}/etc/kinstall/config.json,`,
    );
    expect(postinst.stderr).not.toContain('Without USE=dracut');
  });

  it('the live ebuild installs the same tree from a built checkout', async () => {
    const b = newBuild();
    const s = path.join(b.workdir, 'kinstall-9999');
    mkdirSync(s);
    for (const item of ['dist', 'hooks.d', 'man', 'completion', 'units', 'README.md', 'package.json'])
      cpSync(path.join(top, item), path.join(s, item), { recursive: true });
    // node_modules as src_compile leaves it (npm prune --omit=dev); a stand-in with one package is enough here.
    cpSync(path.join(top, 'node_modules/winston'), path.join(s, 'node_modules/winston'), { recursive: true });
    await ok(b, ['build', kinstallEbuilds[0] ?? '', b.envfile, 'src_install']);
    expect(readlinkSync(path.join(b.image, 'sbin/installkernel'))).toBe('/usr/lib/kinstall/dist/src/cli/installkernel.js');
    expect(existsSync(path.join(b.image, 'usr/share/doc/kinstall-9999/README.md'))).toBe(true);
  });
});

describe('sys-kernel/custom-kernel-bin with kinstall', () => {
  /** src_install of the kernel package from the self-built kernel's make O= tree (src_compile's result). */
  async function buildKernelPackage(): Promise<Build> {
    const b = newBuild();
    const kbuild = (await execa('bash', [path.join(top, 'scripts/build-test-kernel.sh')])).stdout.trim();
    // A copy: modules_install may write into the tree, and the cache stays untouched.
    await execa('cp', ['-a', kbuild, path.join(b.workdir, 'build')]);
    await ok(b, ['build', kernelEbuild, b.envfile, 'src_install']);
    return b;
  }

  const pkgPhase = (b: Build, r: TestRoot, phase: string, env: Record<string, string> = {}) =>
    ok(b, ['pkg', b.envfile, phase], { ROOT: r.root, PATH, ...env });

  async function listed(r: TestRoot): Promise<string[]> {
    const result = await kinstall(['list', '--root', r.root]);
    expect(result.exitCode, result.stderr).toBe(0);
    return result.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0] ?? '');
  }

  it('install, then unmerge: the image is layout-free, pkg_postinst installs it, pkg_prerm/pkg_postrm remove every trace', async () => {
    const b = await buildKernelPackage();
    const img = (p: string) => path.join(b.image, p);
    expect(readdirSync(b.image)).toEqual(['lib']);
    const modules = `lib/modules/${KV}`;
    for (const p of ['vmlinuz', 'System.map', 'config', 'kernel/drivers/block/loop.ko', 'modules.order'])
      expect(existsSync(img(`${modules}/${p}`)), p).toBe(true);
    for (const p of ['build', 'source', 'modules.dep']) expect(present(img(`${modules}/${p}`)), p).toBe(false);
    expect(readFileSync(b.envfile, 'utf8')).toContain(`KV_FULL="${KV}"`);

    const r = newRoot();
    mergeImage(b.image, r.root, kernelPkg, b.envfile);
    const postinst = await pkgPhase(b, r, 'pkg_postinst', { USE: 'initramfs' });
    expect(postinst.stderr).toContain('eend: 0');
    const kernel = readFileSync(img(`${modules}/vmlinuz`));
    expect(readFileSync(r.at(`/boot/vmlinuz-${KV}`)).equals(kernel)).toBe(true);
    expect(existsSync(r.at(`/boot/initramfs-${KV}.img`))).toBe(true);
    expect(existsSync(r.at(`/lib/modules/${KV}/modules.dep`))).toBe(true);
    expect(await listed(r)).toEqual([KV]);

    // emerge --unmerge: pkg_prerm, the files, pkg_postrm, the database entry.
    const prerm = await pkgPhase(b, r, 'pkg_prerm');
    expect(prerm.stderr).toContain(`leaving /lib/modules/${KV}:`);
    expect(prerm.stderr).toContain(`belong to sys-kernel/custom-kernel-bin-${KV} (portage)`);
    expect(readdirSync(r.boot).filter((n) => n.includes(KV))).toEqual([]);
    expect(existsSync(r.at(`/lib/modules/${KV}/vmlinuz`))).toBe(true);
    unmergeFiles(r.root, kernelPkg);
    expect(readdirSync(r.at(`/lib/modules/${KV}`)).every((n) => n.startsWith('modules.'))).toBe(true);
    await pkgPhase(b, r, 'pkg_postrm');
    dropEntry(r.root, kernelPkg);
    expect(existsSync(r.at(`/lib/modules/${KV}`))).toBe(false);
    expect(await listed(r)).toEqual([]);
  });

  // Portage since 2.1.5: new pkg_preinst, merge, old pkg_prerm, unmerge, old pkg_postrm, new
  // pkg_postinst. Before: the new pkg_postinst ran right after the merge. Both must keep the kernel.
  it.each([
    ['portage >= 2.1.5', false],
    ['the old order (new pkg_postinst first)', true],
  ])('a same-version rebuild keeps the kernel installed at every step (%s)', async (_order, postinstFirst) => {
    const old = await buildKernelPackage();
    const r = newRoot();
    mergeImage(old.image, r.root, kernelPkg, old.envfile);
    await pkgPhase(old, r, 'pkg_postinst');
    const installed = readFileSync(r.at(`/boot/vmlinuz-${KV}`));

    const rebuilt = await buildKernelPackage();
    const merging: InstalledPackage = { category: 'sys-kernel', entry: `-MERGING-custom-kernel-bin-${KV}` };
    mergeImage(rebuilt.image, r.root, merging, rebuilt.envfile);
    const stillInstalled = async (step: string) => {
      expect(existsSync(r.at(`/boot/vmlinuz-${KV}`)), step).toBe(true);
      expect(existsSync(r.at(`/lib/modules/${KV}/vmlinuz`)), step).toBe(true);
      expect(await listed(r), step).toEqual([KV]);
    };
    if (postinstFirst) await pkgPhase(rebuilt, r, 'pkg_postinst', { REPLACING_VERSIONS: KV });
    const prerm = await pkgPhase(old, r, 'pkg_prerm', { REPLACED_BY_VERSION: KV });
    expect(prerm.stderr).not.toContain('kinstall remove');
    await stillInstalled('after the old pkg_prerm');
    unmergeFiles(r.root, kernelPkg);
    const postrm = await pkgPhase(old, r, 'pkg_postrm', { REPLACED_BY_VERSION: KV });
    expect(postrm.stderr).not.toContain('kinstall remove');
    await stillInstalled('after the old pkg_postrm');
    dropEntry(r.root, kernelPkg);
    settleEntry(r.root, merging, kernelPkg.entry);
    if (!postinstFirst) await pkgPhase(rebuilt, r, 'pkg_postinst', { REPLACING_VERSIONS: KV });
    await stillInstalled('after the new pkg_postinst');
    expect(readFileSync(r.at(`/boot/vmlinuz-${KV}`)).equals(installed)).toBe(true);
  });

  it('pkg_prerm of a kernel that "keep" already pruned does nothing and fails nothing', async () => {
    const b = await buildKernelPackage();
    const r = newRoot();
    mergeImage(b.image, r.root, kernelPkg, b.envfile);
    await pkgPhase(b, r, 'pkg_postinst');
    expect((await kinstall(['remove', '--root', r.root, KV])).exitCode).toBe(0);
    const prerm = await pkgPhase(b, r, 'pkg_prerm');
    expect(prerm.stderr).not.toContain('ebegin');
    expect(prerm.stderr).not.toContain('ewarn');
  });
});
