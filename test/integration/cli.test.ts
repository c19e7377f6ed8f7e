// The CLIs as users and build systems call them: kinstall inspect, installkernel's positional
// forms (-a/--all, no arguments, a 5th argument), kinstall stage from a make O= tree.
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { installkernel, kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

function put(r: TestRoot, systemPath: string, content: Buffer | string): string {
  mkdirSync(path.dirname(r.at(systemPath)), { recursive: true });
  writeFileSync(r.at(systemPath), content);
  return r.at(systemPath);
}

/** Stages an image into <root>/lib/modules/VERSION as a package or `kinstall stage` leaves it. */
function stageInto(r: TestRoot, version: string, image: Buffer | string = readFileSync(kernel.image)): void {
  put(r, `/lib/modules/${version}/vmlinuz`, image);
}

const vmlinuzIn = (r: TestRoot) =>
  readdirSync(r.boot)
    .filter((n) => n.startsWith('vmlinuz-'))
    .sort();

describe('kinstall inspect', () => {
  it('reads version, arch, EFI stub and size from the real bzImage', async () => {
    const result = await kinstall(['inspect', kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`version: ${V}`);
    expect(V).toMatch(/^6\.1\.0-\d+-cloud-amd64$/);
    expect(result.stdout).toContain('format: bzImage');
    expect(result.stdout).toContain('arch: x86_64');
    expect(result.stdout).toContain('efi-stub: yes');
    expect(result.stdout).toContain(`size: ${lstatSync(kernel.image).size}`);
  });

  it('--json prints every field', async () => {
    const result = await kinstall(['inspect', '--json', kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      path: kernel.image,
      format: 'bzImage',
      arch: 'x86_64',
      version: V,
      efiStub: true,
      size: lstatSync(kernel.image).size,
    });
  });

  it('with --json an error is also a JSON object on stdout: code, exit code, message, details', async () => {
    root = newRoot();
    const result = await kinstall(['add', '--json', '--root', root.root, '--layout', 'compat', V, root.at('/nothere/bzImage')]);
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(/^kinstall: ENOIMAGE: kernel image not found: /m);
    expect(JSON.parse(result.stdout)).toEqual({
      error: { code: 'ENOIMAGE', exitCode: 3, message: `kernel image not found: ${root.at('/nothere/bzImage')}`, details: [] },
    });
  });

  it('recognises a synthetic arm64 Image by its magic and finds its banner', async () => {
    root = newRoot();
    const image = Buffer.alloc(8192);
    image.write('ARM\x64', 0x38, 'latin1');
    image.write('Linux version 6.6.7-arm64 (builder@host) #1 SMP\0', 0x1000, 'latin1');
    const result = await kinstall(['inspect', '--json', put(root, '/Image', image)]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      format: 'arm64-image',
      arch: 'arm64',
      version: '6.6.7-arm64',
      efiStub: false,
    });
  });

  const notKernels: Array<[string, () => Buffer]> = [
    ['random bytes', () => randomBytes(65536)],
    ['an empty file', () => Buffer.alloc(0)],
    ['a truncated bzImage header', () => readFileSync(kernel.image).subarray(0, 0x210)],
    [
      'a bzImage whose version pointer leads nowhere',
      () => Buffer.concat([readFileSync(kernel.image).subarray(0, 0x210).fill(0, 0x20e, 0x210)]),
    ],
  ];
  for (const [name, content] of notKernels) {
    it(`refuses ${name}: exit 3, ENOTKERNEL, one line`, async () => {
      root = newRoot();
      const file = put(root, '/not-a-kernel', content());
      const result = await kinstall(['inspect', file]);
      expect(result.exitCode).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n').filter((l) => l.startsWith('kinstall: '))).toEqual([
        expect.stringMatching(/^kinstall: ENOTKERNEL: /),
      ]);
    });
  }
});

describe('installkernel positionals', () => {
  it('DIR defaults to /boot; a 5th argument (powerpc) is ignored; add options after the positionals', async () => {
    root = newRoot();
    const two = await installkernel([V, kernel.image, '--root', root.root, '--layout', 'compat', '--initramfs', 'none']);
    expect(two.exitCode, two.stderr).toBe(0);
    expect(vmlinuzIn(root)).toEqual([`vmlinuz-${V}`]);
    expect(existsSync(root.at(`/boot/System.map-${V}`))).toBe(true);
    root = newRoot();
    const five = await installkernel([
      V,
      kernel.image,
      kernel.systemMap,
      '/boot',
      'zImage.chrp',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      '--verbose',
    ]);
    expect(five.exitCode, five.stderr).toBe(0);
    expect(readFileSync(root.at(`/boot/System.map-${V}`)).equals(readFileSync(kernel.systemMap))).toBe(true);
  });

  it('--dry-run after the positionals prints the plan and changes nothing; 6 positionals is a usage error', async () => {
    root = newRoot();
    const before = snapshotTree(root.root);
    const dry = await installkernel([
      V,
      kernel.image,
      kernel.systemMap,
      '/boot',
      '--dry-run',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
    ]);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`vmlinuz-${V}`);
    expect(snapshotTree(root.root)).toEqual(before);
    const six = await installkernel([V, kernel.image, kernel.systemMap, '/boot', 'x', 'y', '--root', root.root]);
    expect(six.exitCode).toBe(2);
    expect(six.stderr).toMatch(/^kinstall: EUSAGE: /m);
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('--all installs every staged version with a vmlinuz, continues past a failing one, exits 9', async () => {
    root = newRoot();
    stageInto(root, '6.0.0-broken', 'not a kernel at all\n'.repeat(100));
    stageInto(root, V);
    mkdirSync(root.at('/lib/modules/5.4.0-modules-only/kernel'), { recursive: true });
    const result = await installkernel(['--all', '--root', root.root, '--layout', 'compat', '--initramfs', 'none']);
    expect(result.exitCode, result.stderr).toBe(9);
    expect(result.stderr).toMatch(/^kinstall: ENOTKERNEL: .*6\.0\.0-broken/m);
    expect(result.stderr).toMatch(/^kinstall: EPARTIAL: /m);
    // 6.0.0-broken sorts first: the good one after it was still installed.
    expect(vmlinuzIn(root)).toEqual([`vmlinuz-${V}`]);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
  });

  it('with no arguments under --root installs the newest staged kernel', async () => {
    root = newRoot();
    stageInto(root, V);
    stageInto(root, '5.10.0-old');
    const result = await installkernel(['--root', root.root, '--layout', 'compat', '--initramfs', 'none']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(vmlinuzIn(root)).toEqual([`vmlinuz-${V}`]);
  });
});

/** A kbuild output tree (make O=DIR) holding the real kernel's files. */
function buildTree(r: TestRoot, dir: string): string {
  const build = r.at(dir);
  put(r, `${dir}/include/config/kernel.release`, `${V}\n`);
  put(r, `${dir}/arch/x86/boot/bzImage`, readFileSync(kernel.image));
  copyFileSync(kernel.systemMap, path.join(build, 'System.map'));
  copyFileSync(kernel.config, path.join(build, '.config'));
  return build;
}

describe('kinstall stage', () => {
  it('writes vmlinuz, System.map and config into the neutral location and never into the build dir', async () => {
    root = newRoot();
    const build = buildTree(root, '/var/tmp/linux-build');
    const buildBefore = snapshotTree(build);
    const result = await kinstall(['stage', '--build-dir', build, '--root', root.root]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`staged ${V}`);
    for (const [name, source] of [
      ['vmlinuz', kernel.image],
      ['System.map', kernel.systemMap],
      ['config', kernel.config],
    ] as const) {
      const staged = root.at(`/lib/modules/${V}/${name}`);
      expect(lstatSync(staged).isFile()).toBe(true);
      expect(readFileSync(staged).equals(readFileSync(source))).toBe(true);
    }
    expect(snapshotTree(build)).toEqual(buildBefore);
    expect(readdirSync(root.boot)).toEqual([]);
  });

  for (const style of ['absolute', 'relative'] as const) {
    it(`leaves Gentoo dist-kernel symlinks (${style}) with the same content untouched (stage and installkernel)`, async () => {
      root = newRoot();
      const src = `/usr/src/linux-${V}`;
      const build = buildTree(root, src);
      const links = { vmlinuz: `${src}/arch/x86/boot/bzImage`, 'System.map': `${src}/System.map`, config: `${src}/.config` };
      mkdirSync(root.at(`/lib/modules/${V}`), { recursive: true });
      // Absolute as the brief's dist-kernel ships them (naming the target system's /usr/src), or relative.
      for (const [name, target] of Object.entries(links)) {
        const dir = root.at(`/lib/modules/${V}`);
        symlinkSync(style === 'absolute' ? target : path.relative(dir, root.at(target)), path.join(dir, name));
      }
      const before = snapshotTree(root.at('/lib/modules'));
      const buildBefore = snapshotTree(build);

      const staged = await kinstall(['stage', '--build-dir', build, '--root', root.root]);
      expect(staged.exitCode, staged.stderr).toBe(0);
      expect(staged.stdout).toContain('unchanged: vmlinuz, System.map, config');
      expect(snapshotTree(root.at('/lib/modules'))).toEqual(before);

      // What the dist-kernel's pkg_postinst runs.
      const installed = await installkernel([
        V,
        root.at(links.vmlinuz),
        root.at(links['System.map']),
        '/boot',
        '--verbose',
        '--root',
        root.root,
        '--layout',
        'compat',
        '--initramfs',
        'none',
      ]);
      expect(installed.exitCode, installed.stderr).toBe(0);
      for (const [name, target] of Object.entries(links)) {
        const link = root.at(`/lib/modules/${V}/${name}`);
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        expect(readlinkSync(link)).toBe(style === 'absolute' ? target : path.relative(path.dirname(link), root.at(target)));
      }
      expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
      expect(snapshotTree(build)).toEqual(buildBefore);

      // Later, from the neutral location alone: the links are read through the root, and the
      // initramfs the package ships beside its bzImage (USE=initramfs) is the one installed.
      writeFileSync(root.at(`${src}/arch/x86/boot/initrd`), initramfsFixture("the dist-kernel's prebuilt initramfs\n"));
      const again = await kinstall(['add', '--root', root.root, '--layout', 'compat', V]);
      expect(again.exitCode, again.stderr).toBe(0);
      expect(again.stderr).toContain('initramfs prebuilt');
      expect(readFileSync(root.at(`/boot/initramfs-${V}.img`))).toEqual(
        initramfsFixture("the dist-kernel's prebuilt initramfs\n"),
      );
      expect(readFileSync(root.at(`/boot/System.map-${V}`)).equals(readFileSync(kernel.systemMap))).toBe(true);
      expect(snapshotTree(root.at('/lib/modules'))).toEqual(before);
    });
  }
});
