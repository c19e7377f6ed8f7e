// A kernel built from source (scripts/build-test-kernel.sh, make O=) installed the three ways real
// users do: the kernel's own `make install`, kinstall's stage + add, and Gentoo's dist-kernel call.
// Each ends in a QEMU boot of the self-built kernel with a dracut initramfs. The O= tree is shared
// and read-only: every test checks that nothing was written into it.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { installkernel, installkernelBin, kinstall, type CliResult } from '../helpers/cli.js';
import { modprobeShows, modulesInstall, testKbuild, treeState, writeKbuildConfig } from '../helpers/kbuild.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kbuild = testKbuild();
const V = kbuild.version;
const outBefore = treeState(kbuild.out);
const scratch: string[] = [];
const scratchRoot = useScratchRoots();

afterEach(() => {
  for (const dir of scratch.splice(0)) {
    assertScratch(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});
afterAll(() => {
  // make install, make modules_install, stage, add and remove only ever read the O= tree.
  expect(treeState(kbuild.out)).toEqual(outBefore);
});

function newRoot(): TestRoot {
  const r = scratchRoot();
  writeKbuildConfig(r);
  return r;
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Exactly one coded error line, with this exit code. */
function expectError(result: CliResult, exitCode: number, pattern: RegExp): void {
  expect(result.exitCode, result.stderr).toBe(exitCode);
  const errors = result.stderr.split('\n').filter((line) => /^kinstall: E[A-Z]+: /.test(line));
  expect(errors).toEqual([expect.stringMatching(pattern)]);
}

/** A file of the root, an absolute link (Gentoo's) followed as the target system would. */
const inRoot = (r: TestRoot, file: string) =>
  lstatSync(file).isSymbolicLink() && readlinkSync(file).startsWith('/') ? r.at(readlinkSync(file)) : file;

/** What every flow ends with: the kernel, loop.ko and its index in the neutral location, and a boot. */
async function expectInstalledAndBooting(r: TestRoot): Promise<void> {
  const dir = r.at(`/lib/modules/${V}`);
  expect(readFileSync(r.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kbuild.image))).toBe(true);
  expect(existsSync(r.at(`/boot/initramfs-${V}.img`))).toBe(true);
  expect(readFileSync(inRoot(r, path.join(dir, 'vmlinuz'))).equals(readFileSync(kbuild.image))).toBe(true);
  expect(readFileSync(inRoot(r, path.join(dir, 'System.map'))).equals(readFileSync(kbuild.systemMap))).toBe(true);
  expect(lstatSync(path.join(dir, 'kernel/drivers/block/loop.ko')).isFile()).toBe(true);
  expect(readFileSync(path.join(dir, 'modules.dep'), 'utf8')).toMatch(/^kernel\/drivers\/block\/loop\.ko:$/m);
  expect(modprobeShows(r, V, 'loop').trim()).toBe(`insmod ${path.join(dir, 'kernel/drivers/block/loop.ko')}`);
  const verified = await kinstall(['verify', '--root', r.root, V]);
  expect(verified.exitCode, `${verified.stdout}\n${verified.stderr}`).toBe(0);
  expect(verified.stdout).toContain(`${V}: pass: reached dracut's init in the initramfs`);
}

describe("make install: the kernel's own targets with kinstall as ~/bin/installkernel", () => {
  it('modules_install into the root, then make install; list shows it, remove leaves the build tree alone', async () => {
    const r = newRoot();
    const home = tempDir('kinstall-home-');
    mkdirSync(path.join(home, 'bin'));
    // scripts/install.sh runs ~/bin/installkernel VERSION IMAGE System.map /boot from the O= tree.
    const wrapper = path.join(home, 'bin/installkernel');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${installkernelBin} --root ${r.root} "$@"\n`);
    chmodSync(wrapper, 0o755);

    modulesInstall(kbuild, r.root);
    const made = await execa('make', ['-C', kbuild.out, 'install'], { env: { HOME: home }, reject: false, stdin: 'ignore' });
    expect(made.exitCode, String(made.stderr)).toBe(0);
    expect(String(made.stderr)).toContain(`installed ${V} (compat)`);
    expect(String(made.stderr)).not.toContain('fstatat');
    // kbuild's link to the build tree is kept as modules_install made it.
    expect(readlinkSync(r.at(`/lib/modules/${V}/build`))).toBe(kbuild.out);
    await expectInstalledAndBooting(r);

    const listed = await kinstall(['list', '--root', r.root]);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n').filter((l) => l.startsWith(`${V}\t`))).toEqual([
      expect.stringMatching(new RegExp(`^${escape(V)}\\tcompat\\t`)),
    ]);

    const removed = await kinstall(['remove', '--root', r.root, V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(existsSync(r.at(`/lib/modules/${V}`))).toBe(false);
    expect(readdirSync(r.boot)).toEqual([]);
    // The link was removed, not followed: the build tree is as it was.
    expect(treeState(kbuild.out)).toEqual(outBefore);
  }, 300_000);
});

describe('kinstall stage --build-dir, then kinstall add', () => {
  it('without modules it says that make modules_install or --modules-dir is needed, and add names stage --modules-dir', async () => {
    const r = newRoot();
    const staged = await kinstall(['stage', '--root', r.root, '--build-dir', kbuild.out]);
    expect(staged.exitCode, staged.stderr).toBe(0);
    expect(staged.stderr).toContain(`the build has 3 module(s) (modules.order) but ${r.at(`/lib/modules/${V}`)} holds none`);
    expect(staged.stderr).toContain(`make O=${kbuild.out} modules_install`);
    expect(staged.stderr).toContain('kinstall stage --modules-dir DIR');
    const before = snapshotTree(r.root);
    const added = await kinstall(['add', '--root', r.root, V]);
    expectError(
      added,
      4,
      /^kinstall: EPREFLIGHT: 1 preflight check\(s\) failed: dracut needs the modules of .*kinstall stage --build-dir OUT --modules-dir DIR/,
    );
    expect(snapshotTree(r.root)).toEqual(before);
  }, 120_000);

  it('with --modules-dir from an INSTALL_MOD_PATH tree: staged, added and booted', async () => {
    const r = newRoot();
    const mods = tempDir('kinstall-modpath-');
    modulesInstall(kbuild, mods);
    const staged = await kinstall(['stage', '--root', r.root, '--build-dir', kbuild.out, '--modules-dir', mods]);
    expect(staged.exitCode, staged.stderr).toBe(0);
    expect(staged.stdout).toBe(`staged ${V} in ${r.at(`/lib/modules/${V}`)}`);
    expect(staged.stderr).not.toContain('modules_install');
    expect(readdirSync(r.boot)).toEqual([]);
    const added = await kinstall(['add', '--root', r.root, V]);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(added.stderr).toContain(`installed ${V} (compat)`);
    await expectInstalledAndBooting(r);
  }, 300_000);
});

describe("Gentoo's dist-kernel calls, the kernel tree in the target's /usr/src", () => {
  const src = `/usr/src/linux-${V}`;

  /** A root as a dist-kernel package leaves it: the tree in /usr/src, modules and absolute links in /lib/modules. */
  function gentooRoot(): TestRoot {
    const r = newRoot();
    for (const file of ['arch/x86/boot/bzImage', 'System.map', '.config', 'include/config/kernel.release']) {
      mkdirSync(path.dirname(r.at(`${src}/${file}`)), { recursive: true });
      copyFileSync(path.join(kbuild.out, file), r.at(`${src}/${file}`));
    }
    modulesInstall(kbuild, r.root);
    const dir = r.at(`/lib/modules/${V}`);
    rmSync(path.join(dir, 'build'));
    rmSync(path.join(dir, 'source'));
    symlinkSync(src, path.join(dir, 'build'));
    for (const [name, target] of [
      ['vmlinuz', 'arch/x86/boot/bzImage'],
      ['System.map', 'System.map'],
      ['config', '.config'],
    ] as const) {
      symlinkSync(`${src}/${target}`, path.join(dir, name));
    }
    return r;
  }

  it('installkernel KV /usr/src/linux-KV/…/bzImage /usr/src/linux-KV/System.map /boot --verbose: in-root paths, no depmod errors, boots', async () => {
    const r = gentooRoot();
    const links = snapshotTree(r.at(`/lib/modules/${V}`));
    // modules_install left a current index: --depmod always makes depmod run on these links anyway.
    const args = [
      '--root',
      r.root,
      V,
      `${src}/arch/x86/boot/bzImage`,
      `${src}/System.map`,
      '/boot',
      '--verbose',
      '--depmod',
      'always',
    ];
    const result = await installkernel(args, { env: { ARCH: 'x86' } });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`installed ${V} (compat)`);
    // depmod was given the modules: it never stat()ed the links naming the target's /usr/src on the host.
    expect(result.stderr).toContain(`run: depmod -b ${r.root} ${V} ${r.at(`/lib/modules/${V}/kernel`)}`);
    expect(result.stderr).not.toContain('fstatat');
    for (const name of ['vmlinuz', 'System.map', 'config', 'build'])
      expect(snapshotTree(r.at(`/lib/modules/${V}`))[name]).toBe(links[name]);
    await expectInstalledAndBooting(r);
  }, 300_000);

  it('the reinstall form, installkernel KV IMAGE MAP ${EROOT}/boot --all --verbose, reinstalls every staged kernel', async () => {
    const r = gentooRoot();
    const result = await installkernel(
      ['--root', r.root, V, `${src}/arch/x86/boot/bzImage`, `${src}/System.map`, r.boot, '--all', '--verbose'],
      { env: { ARCH: 'x86' } },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`installed ${V} (compat)`);
    expect(result.stderr).not.toContain('fstatat');
    expect(readdirSync(r.boot).sort()).toEqual([`System.map-${V}`, `config-${V}`, `initramfs-${V}.img`, `vmlinuz-${V}`]);
    expect(readFileSync(r.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kbuild.image))).toBe(true);
  }, 120_000);

  it("DIR given with the root (DIR=${EROOT}/boot) is the target's /boot, not ROOT/ROOT/boot", async () => {
    const r = gentooRoot();
    const result = await installkernel([
      '--root',
      r.root,
      '--dry-run',
      V,
      r.at(`${src}/arch/x86/boot/bzImage`),
      r.at(`${src}/System.map`),
      r.boot,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${r.at(`${src}/arch/x86/boot/bzImage`)} -> ${r.at(`/boot/vmlinuz-${V}`)}`);
    expect(readdirSync(r.boot)).toEqual([]);
  });
});

describe('bad input from the same tree: one coded line, exit 3, nothing changed', () => {
  it('a SYSTEM_MAP that does not exist, with and without --dry-run, says where it looked', async () => {
    const r = newRoot();
    modulesInstall(kbuild, r.root);
    const before = snapshotTree(r.root);
    for (const extra of [[], ['--dry-run']]) {
      const result = await installkernel(['--root', r.root, ...extra, V, kbuild.image, '/nowhere/System.map', '/boot']);
      expectError(result, 3, new RegExp(`^kinstall: ENOSYSTEMMAP: System\\.map not found: /nowhere/System\\.map$`));
      expect(result.stderr).toContain(
        `looked inside --root at ${r.at('/nowhere/System.map')} and on the host at /nowhere/System.map`,
      );
      expect(snapshotTree(r.root)).toEqual(before);
    }
  });

  it("a VERSION that is not the tree's kernel.release", async () => {
    const r = newRoot();
    const before = snapshotTree(r.root);
    const result = await installkernel(['--root', r.root, '6.1.999', kbuild.image, kbuild.systemMap, '/boot']);
    expectError(
      result,
      3,
      new RegExp(`^kinstall: EVERSIONMISMATCH: version 6\\.1\\.999 does not match the image's version ${escape(V)} `),
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('a build tree that was configured but never built', async () => {
    const r = newRoot();
    const unbuilt = tempDir('kinstall-unbuilt-');
    copyFileSync(kbuild.config, path.join(unbuilt, '.config'));
    copyFileSync(path.join(kbuild.out, 'Makefile'), path.join(unbuilt, 'Makefile'));
    symlinkSync(kbuild.source, path.join(unbuilt, 'source'));
    const before = snapshotTree(r.root);
    const result = await kinstall(['stage', '--root', r.root, '--build-dir', unbuilt]);
    expectError(
      result,
      3,
      new RegExp(
        `^kinstall: ENOBUILD: not a kernel build directory: ${escape(unbuilt)} \\(it is configured but was never built .*run make first\\)$`,
      ),
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('the source tree where the O= tree was meant: stage names the fix', async () => {
    const r = newRoot();
    const before = snapshotTree(r.root);
    const result = await kinstall(['stage', '--root', r.root, '--build-dir', kbuild.source]);
    expectError(
      result,
      3,
      new RegExp(
        `^kinstall: ENOBUILD: not a kernel build directory: ${escape(kbuild.source)} \\(it is the kernel source tree; give the make O= output directory instead: kinstall stage --build-dir OUT\\)$`,
      ),
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('an IMAGE found neither inside the root nor on the host names both places', async () => {
    const r = newRoot();
    const before = snapshotTree(r.root);
    const result = await installkernel([
      '--root',
      r.root,
      V,
      `/usr/src/linux-${V}/arch/x86/boot/bzImage`,
      `/usr/src/linux-${V}/System.map`,
      '/boot',
    ]);
    expectError(
      result,
      3,
      new RegExp(`^kinstall: ENOIMAGE: kernel image not found: /usr/src/linux-${escape(V)}/arch/x86/boot/bzImage$`),
    );
    expect(result.stderr).toContain(
      `looked inside --root at ${r.at(`/usr/src/linux-${V}/arch/x86/boot/bzImage`)} and on the host at /usr/src/linux-${V}/arch/x86/boot/bzImage`,
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });
});
