// layout=auto: a layout that claims the image, else the first one in use, else the declared fallback.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KinstallError, type Context, type KernelImageInfo, type Layout } from '../../src/core/plugin-api.js';
import { chooseLayout } from '../../src/core/pipeline/select.js';
import { testContext } from '../helpers/context.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

function put(r: TestRoot, systemPath: string, text = ''): void {
  mkdirSync(path.dirname(r.at(systemPath)), { recursive: true });
  writeFileSync(r.at(systemPath), text);
}

const image = (format: KernelImageInfo['format']): KernelImageInfo => ({
  path: '/tmp/kernel',
  format,
  arch: 'x86_64',
  efiStub: true,
  size: 1,
});

async function autoContext(files: string[]): Promise<Context> {
  root = newRoot({ config: false });
  for (const file of files) put(root, file, file.endsWith('entry-token') ? 'gentoo\n' : '');
  return testContext(root.root, { layout: 'auto' });
}

const chosen = async (files: string[], kernel?: KernelImageInfo) => (await chooseLayout(await autoContext(files), kernel)).name;

describe('layout=auto with the built-in layouts', () => {
  it('nothing in use: the fallback, compat', async () => {
    expect(await chosen([], image('bzImage'))).toBe('compat');
    expect(await chosen([])).toBe('compat');
  });

  it('the first layout in use, in registry order (bls, lilo, grub)', async () => {
    expect(await chosen(['/boot/grub/grub.cfg'], image('bzImage'))).toBe('grub');
    expect(await chosen(['/etc/lilo.conf'], image('bzImage'))).toBe('lilo');
    expect(await chosen(['/etc/lilo.conf', '/boot/grub/grub.cfg'], image('bzImage'))).toBe('lilo');
    expect(await chosen(['/efi/loader/loader.conf', '/boot/grub/grub.cfg'], image('bzImage'))).toBe('bls');
  });

  it('a UKI is claimed by uki even where grub is in use', async () => {
    expect(await chosen(['/boot/grub/grub.cfg'], image('uki'))).toBe('uki');
  });

  it('UKIs in EFI/Linux put uki in use for list and remove, but a plain kernel is not installed as a UKI', async () => {
    const files = ['/etc/kernel/entry-token', '/efi/EFI/Linux/gentoo-6.1.0.efi'];
    expect(await chosen(files)).toBe('uki');
    expect(await chosen(files, image('bzImage'))).toBe('compat');
  });
});

/** A layout that only answers the auto questions; choosing one never plans anything. */
function stub(name: string, members: Partial<Layout> = {}): Layout {
  const never = () => Promise.reject(new Error(`${name} was asked to plan or list`));
  return { name, plan: never, planRemove: never, list: never, ...members };
}

const yes = (reason: string) => () => Promise.resolve(reason);
const no = () => Promise.resolve(undefined);

async function chooseAmong(layouts: Layout[], kernel?: KernelImageInfo): Promise<string> {
  const ctx = await autoContext([]);
  return (await chooseLayout({ ...ctx, registry: { layouts, generators: [] } }, kernel)).name;
}

describe('layout=auto, the rule itself', () => {
  it('the fallback is the layout that declares it, not the first one without inUse', async () => {
    expect(await chooseAmong([stub('plain'), stub('unused', { inUse: no }), stub('fb', { fallback: true }), stub('later')])).toBe(
      'fb',
    );
  });

  it('a layout in use wins over the fallback, wherever the fallback stands', async () => {
    expect(
      await chooseAmong([stub('fb', { fallback: true }), stub('used', { inUse: yes('its config exists') })], image('bzImage')),
    ).toBe('used');
  });

  it('for an install, a layout with claimsImage is taken only for an image it claims, whatever inUse says', async () => {
    const claimer = stub('claimer', {
      claimsImage: (_ctx, i) => Promise.resolve(i.format === 'uki' ? 'a UKI' : undefined),
      inUse: yes('in use'),
    });
    const layouts = [claimer, stub('fb', { fallback: true })];
    expect(await chooseAmong(layouts, image('uki'))).toBe('claimer');
    expect(await chooseAmong(layouts, image('bzImage'))).toBe('fb');
    // Without an image (list, remove) being in use is what counts.
    expect(await chooseAmong(layouts)).toBe('claimer');
  });

  it('nothing in use and no fallback declared: ECONFIG', async () => {
    const error = await chooseAmong([stub('a'), stub('b', { inUse: no })]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(KinstallError);
    expect((error as KinstallError).code).toBe('ECONFIG');
  });
});
