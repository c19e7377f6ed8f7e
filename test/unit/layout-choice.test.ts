// layout=auto: which layout kinstall picks for a given target root (and image), and which layouts
// remove takes a version out of. Tested at the level of inputs and the choice, with the built-in
// registry on real temporary roots, so it holds whatever the layouts' detection looks like inside.
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KinstallError } from '../../src/core/errors.js';
import { chooseLayout, layoutsHolding } from '../../src/core/pipeline/select.js';
import type { KernelImageInfo } from '../../src/core/types.js';
import { testContext } from '../helpers/context.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

const V = '6.6.1-gentoo';
const bzImage = (path: string): KernelImageInfo => ({
  path,
  format: 'bzImage',
  arch: 'x86_64',
  version: V,
  efiStub: true,
  size: 12_000_000,
});
const uki = (path: string): KernelImageInfo => ({ ...bzImage(path), format: 'uki' });

/** A root holding the given files (target paths → content; a path ending in / is a directory). */
function rootWith(files: Record<string, string>): TestRoot {
  const r = newRoot({ config: false });
  for (const [target, content] of Object.entries(files)) {
    if (target.endsWith('/')) mkdirSync(r.at(target), { recursive: true });
    else {
      mkdirSync(r.at(target.replace(/\/[^/]+$/, '')), { recursive: true });
      writeFileSync(r.at(target), content);
    }
  }
  return r;
}

/** The layout `add` would use on this root, for this image, with these settings. */
async function picked(r: TestRoot, image?: KernelImageInfo, layout?: string): Promise<string> {
  const ctx = await testContext(r.root, layout === undefined ? {} : { layout });
  return (await chooseLayout(ctx, image)).name;
}

const GRUB = { '/boot/grub/grub.cfg': '# grub\n' };
const LILO = { '/etc/lilo.conf': 'boot=/dev/vda\n' };
const LOADER = { '/efi/loader/entries/': '', '/efi/loader/loader.conf': 'timeout 3\n' };
const ESP_ONLY = { '/boot/efi/EFI/BOOT/': '' };

describe('layout=auto for add', () => {
  it.each([
    ['nothing bootloader-specific', {}, 'compat'],
    ['a grub.cfg', GRUB, 'grub'],
    ['an /etc/lilo.conf', LILO, 'lilo'],
    ['an ESP with loader/entries and loader.conf', LOADER, 'bls'],
    ['an ESP with loader/entries only', { '/efi/loader/entries/': '' }, 'bls'],
    ['an ESP that holds only EFI/ (efistub is never guessed)', ESP_ONLY, 'compat'],
    ['a grub.cfg and a lilo.conf (lilo is asked first)', { ...GRUB, ...LILO }, 'lilo'],
    ['systemd-boot beside a grub.cfg (bls is asked first)', { ...GRUB, ...LOADER }, 'bls'],
  ])('a root with %s gets %s for a bzImage', async (_name, files, layout) => {
    root = rootWith(files);
    expect(await picked(root, bzImage(root.at('/vmlinuz')))).toBe(layout);
  });

  it('a Unified Kernel Image goes to uki, whatever else the root holds; a bzImage on the same root does not', async () => {
    root = rootWith({ ...GRUB, ...LOADER });
    expect(await picked(root, uki(root.at('/linux.efi')))).toBe('uki');
    expect(await picked(root, bzImage(root.at('/vmlinuz')))).toBe('bls');
  });

  it('a layout set by name wins over what the root holds; systemd-boot is bls', async () => {
    root = rootWith({ ...GRUB, ...LOADER });
    expect(await picked(root, bzImage(root.at('/vmlinuz')), 'compat')).toBe('compat');
    expect(await picked(root, bzImage(root.at('/vmlinuz')), 'systemd-boot')).toBe('bls');
    expect(await picked(root, uki(root.at('/linux.efi')), 'efistub')).toBe('efistub');
  });

  // Settings validation refuses the name before select runs; either way it is this one error.
  it('an unknown layout name is ECONFIG (exit 3) listing the known ones', async () => {
    root = rootWith({});
    const error = await picked(root, undefined, 'grub2').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KinstallError);
    expect((error as KinstallError).code).toBe('ECONFIG');
    expect((error as KinstallError).exitCode).toBe(3);
    expect((error as KinstallError).message).toBe(
      'invalid configuration: unknown layout "grub2" (known: auto, uki, bls, systemd-boot, lilo, grub, compat, efistub)',
    );
  });
});

describe('layout=auto for remove', () => {
  /** The compat files of a version, as add leaves them in /boot. */
  const compatFiles = (version: string) => ({
    [`/boot/vmlinuz-${version}`]: 'kernel\n',
    [`/boot/System.map-${version}`]: 'map\n',
  });
  const holding = async (r: TestRoot, version: string) =>
    (await layoutsHolding(await testContext(r.root), version)).map((l) => l.name);

  it('grub and compat share /boot: the version is removed through grub alone', async () => {
    root = rootWith({ ...GRUB, ...compatFiles(V) });
    expect(await holding(root, V)).toEqual(['grub']);
  });

  it('a version in a BLS entry and in /boot is removed from both', async () => {
    const token = '0123456789abcdef0123456789abcdef';
    root = rootWith({
      ...compatFiles(V),
      '/etc/machine-id': `${token}\n`,
      '/efi/loader/loader.conf': 'timeout 3\n',
      [`/efi/loader/entries/${token}-${V}.conf`]: `title Gentoo\nversion ${V}\nlinux /${token}/${V}/linux\n`,
      [`/efi/${token}/${V}/linux`]: 'kernel\n',
    });
    expect(await holding(root, V)).toEqual(['bls', 'compat']);
  });

  it('a version installed nowhere falls back to what add would pick', async () => {
    root = rootWith({ ...GRUB, ...compatFiles(V) });
    expect(await holding(root, '5.10.0-other')).toEqual(['grub']);
  });
});
