// Which BLS entry or UKI `kinstall list` marks as systemd-boot's default.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { markBootDefault } from '../../plugins/shared/boot-default.js';
import type { InstalledKernel } from '../../src/core/types.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

const kernels = (): InstalledKernel[] =>
  ['6.1.9-gentoo', '6.1.10-gentoo', '6.0.2-gentoo'].map((version) => ({
    version,
    layout: 'bls',
    files: [],
    image: `/efi/gentoo/${version}/linux`,
    initrds: [],
    entry: `/efi/loader/entries/gentoo-${version}.conf`,
    size: 0,
  }));
const id = (k: InstalledKernel) => path.basename(k.entry ?? '');

async function defaultOf(loaderConf?: string): Promise<string[]> {
  root = newRoot({ config: false });
  const esp = root.at('/efi');
  mkdirSync(path.join(esp, 'loader'), { recursive: true });
  if (loaderConf !== undefined) writeFileSync(path.join(esp, 'loader', 'loader.conf'), loaderConf);
  const list = kernels();
  await markBootDefault(esp, list, id);
  return list.filter((k) => k.isDefault).map((k) => k.version);
}

describe('systemd-boot default entry', () => {
  it('without loader.conf or a default: the highest version (by version order, not text)', async () => {
    expect(await defaultOf()).toEqual(['6.1.10-gentoo']);
    expect(await defaultOf('timeout 3\n')).toEqual(['6.1.10-gentoo']);
    expect(await defaultOf('default @saved\n')).toEqual(['6.1.10-gentoo']);
  });

  it('a default glob picks the highest matching entry, an exact name that one, a foreign one none of ours', async () => {
    expect(await defaultOf('timeout 3\ndefault gentoo-6.1.9*\n')).toEqual(['6.1.9-gentoo']);
    expect(await defaultOf('default gentoo-6.0.?-gentoo.conf\n')).toEqual(['6.0.2-gentoo']);
    expect(await defaultOf('default windows.conf\n')).toEqual([]);
  });
});
