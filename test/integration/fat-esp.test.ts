// The ESP layouts (bls, uki, efistub) on a real FAT filesystem (fusefat), where no hard link can
// be made, so every file the transaction replaces is backed up as a copy (`.part`, then renamed):
// a fault in the middle of the commit (the ESP fills up), SIGKILL at the crash points then
// `kinstall recover`, and hostile inputs. Each leaves what FAT holds (names, contents) as before,
// or as the completed run, and a filesystem fsck.fat finds clean.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { kinstall, kinstallBin } from '../helpers/cli.js';
import { efiEnv, efistubConfig, espBasics, expectError, MACHINE_ID, writeFirmware } from '../helpers/esp-scenarios.js';
import { assertNoHardLinks, type FatEsp, fatSnapshot, mountFatEsp, unmountFatEsps } from '../helpers/fat-esp.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import type { TreeSnapshot } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const MiB = 1024 * 1024;

type LayoutName = 'bls' | 'uki' | 'efistub';
interface LayoutSetup {
  esp: string;
  dirs: string[];
  config: Record<string, unknown>;
  /** The kernel-sized file the layout puts on the ESP (its path on the ESP). */
  image: string;
  /** ESP changes of a reinstall, in order: each is a backup, then an op. */
  changes: number;
}
const LAYOUTS: Record<LayoutName, LayoutSetup> = {
  bls: { esp: '/efi', dirs: ['EFI/systemd', 'loader/entries'], config: {}, image: `${MACHINE_ID}/${V}/linux`, changes: 3 },
  uki: { esp: '/efi', dirs: ['EFI/Linux', 'loader'], config: {}, image: `EFI/Linux/${MACHINE_ID}-${V}.efi`, changes: 1 },
  efistub: { esp: '/boot/efi', dirs: ['EFI'], config: efistubConfig(), image: `EFI/Gentoo/vmlinuz-${V}.efi`, changes: 2 },
};
const LAYOUT_NAMES = Object.keys(LAYOUTS) as LayoutName[];

const newRoot = useScratchRoots({ first: unmountFatEsps });

interface FatRoot {
  r: TestRoot;
  esp: FatEsp;
  layout: LayoutName;
  env: Record<string, string>;
  /** `kinstall add` of V with the initramfs tagged `initrd`. */
  add(initrd: string): string[];
}

/** A small real initramfs (newc cpio) in the root, tagged so two differ. */
function makeInitrd(r: TestRoot, tag: string): string {
  const dir = r.at(`/var/fake/initrd-${tag}.d`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'marker'), `initramfs ${tag}\n`);
  const out = r.at(`/var/fake/initrd-${tag}.cpio`);
  execFileSync('sh', ['-c', 'echo marker | cpio -o -H newc --quiet > "$1"', 'sh', out], { cwd: dir });
  return out;
}

/** A root whose ESP is a mounted FAT image, set up as the layout expects (bootctl's dirs, a firmware). */
async function fatRoot(layout: LayoutName, sizeMiB = 128): Promise<FatRoot> {
  const setup = LAYOUTS[layout];
  const r = newRoot({ config: setup.config });
  const esp = await mountFatEsp(r, setup.esp, setup.dirs, sizeMiB);
  if (layout === 'bls') writeFileSync(path.join(esp.dir, 'loader/loader.conf'), 'timeout 3\n');
  espBasics(r);
  writeFirmware(r);
  for (const tag of ['a', 'b']) makeInitrd(r, tag);
  const env = { ...efiEnv(r), SOURCE_DATE_EPOCH: '1700000000' };
  const add = (initrd: string) => [
    'add',
    '--force',
    '--root',
    r.root,
    '--layout',
    layout,
    '--initrd',
    r.at(`/var/fake/initrd-${initrd}.cpio`),
    V,
    kernel.image,
  ];
  return { r, esp, layout, env, add };
}

/** A FAT root with V installed once (initramfs a): a reinstall replaces files, so it backs them up. */
async function installedFatRoot(layout: LayoutName, sizeMiB?: number): Promise<FatRoot> {
  const root = await fatRoot(layout, sizeMiB);
  const result = await kinstall(root.add('a'), { env: root.env });
  expect(result.exitCode, result.stderr).toBe(0);
  expect(existsSync(path.join(root.esp.dir, LAYOUTS[layout].image)), 'the image is where the scenarios look for it').toBe(true);
  return root;
}

const journal = (f: FatRoot) => f.r.at('/var/lib/kinstall/journal.json');
const sideFiles = (snapshot: TreeSnapshot) => Object.keys(snapshot).filter((name) => name.includes('.kinstall-'));

async function crashAt(f: FatRoot, point: string): Promise<void> {
  const result = await execa('node', [kinstallBin, ...f.add('b')], {
    reject: false,
    stdin: 'ignore',
    env: { ...f.env, KINSTALL_TEST_CRASH_AFTER: point },
  });
  expect(result.signal, `${point}: ${String(result.stderr)}`).toBe('SIGKILL');
  expect(existsSync(journal(f))).toBe(true);
}

async function recover(f: FatRoot): Promise<string> {
  const result = await kinstall(['recover', '--root', f.r.root], { env: f.env });
  expect(result.exitCode, result.stderr).toBe(0);
  expect(existsSync(journal(f))).toBe(false);
  return result.stdout + result.stderr;
}

/** fsck.fat finds the image clean (this unmounts the ESP). */
async function expectCleanFat(f: FatRoot): Promise<void> {
  expect(await f.esp.check()).toMatch(/\d+ files, \d+\/\d+ clusters/);
}

/** Leaves about `freeMiB` free on the ESP: a file kept that big, the rest filled, then the file removed. */
function fillEsp(esp: FatEsp, freeMiB: number): void {
  const hold = path.join(esp.dir, 'hold');
  writeFileSync(hold, Buffer.alloc(freeMiB * MiB));
  const fd = openSync(path.join(esp.dir, 'filler'), 'wx');
  const chunk = Buffer.alloc(MiB, 0x5a);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    // A full fusefat says EPERM, the kernel's vfat ENOSPC.
    if (!['ENOSPC', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    closeSync(fd);
  }
  unlinkSync(hold);
}

describe('the FAT ESP helper', () => {
  it('mounts a FAT image where a hard link fails, and tells a plain directory from it', async () => {
    const f = await fatRoot('bls');
    expect(readFileSync('/proc/self/mounts', 'utf8')).toContain(` ${f.esp.dir} fuse.fusefat `);
    expect(() => assertNoHardLinks(f.esp.dir)).not.toThrow();
    expect(() => assertNoHardLinks(f.r.boot)).toThrow(/is not FAT: a hard link worked/);
    expect(Object.keys(fatSnapshot(f.esp.dir)).sort()).toEqual([
      'EFI',
      'EFI/systemd',
      'loader',
      'loader/entries',
      'loader/loader.conf',
    ]);
    await expectCleanFat(f);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(f.esp.dir);
  });
});

describe.each(LAYOUT_NAMES)('%s on a FAT ESP: SIGKILL during a reinstall, then kinstall recover', (layout) => {
  const setup = LAYOUTS[layout];
  const points = ['journal', ...Array.from({ length: setup.changes }, (_, i) => [`backup:${i + 1}`, `op:${i + 1}`]).flat()];
  for (const point of points) {
    it(`crash at ${point}: what FAT holds is as before`, async () => {
      const f = await installedFatRoot(layout);
      const before = fatSnapshot(f.esp.dir);
      await crashAt(f, point);
      if (point === 'backup:1') {
        // The backup is a copy (FAT has no hard links): a file of its own beside the target.
        // Journal paths are relative to the root.
        const data = JSON.parse(readFileSync(journal(f), 'utf8')) as { entries: Array<{ path: string; backup?: string }> };
        const entry = data.entries.find((e) => path.join(f.r.root, e.path) === path.join(f.esp.dir, setup.image));
        expect(entry?.backup).toBeDefined();
        const backup = path.join(f.r.root, entry?.backup ?? '');
        expect(readFileSync(backup).equals(readFileSync(path.join(f.esp.dir, setup.image)))).toBe(true);
        expect([lstatSync(backup).nlink, lstatSync(path.join(f.esp.dir, setup.image)).nlink]).toEqual([1, 1]);
      }
      expect(await recover(f)).toContain('rolled back');
      expect(fatSnapshot(f.esp.dir)).toEqual(before);
      await expectCleanFat(f);
    });
  }

  it('crash at committed: recovery drops the copies, the new files stay', async () => {
    const f = await installedFatRoot(layout);
    await crashAt(f, 'committed');
    const crashed = fatSnapshot(f.esp.dir);
    expect(sideFiles(crashed).length).toBe(setup.changes);
    expect(await recover(f)).toContain('completed');
    const after = fatSnapshot(f.esp.dir);
    expect(sideFiles(after)).toEqual([]);
    expect(after).toEqual(Object.fromEntries(Object.entries(crashed).filter(([name]) => !name.includes('.kinstall-'))));
    await expectCleanFat(f);
  });
});

describe.each(LAYOUT_NAMES)('%s on a FAT ESP: the ESP fills up in the middle of the commit', (layout) => {
  const setup = LAYOUTS[layout];
  // 20 MiB free: the copy of the old image fits, the new image does not (a hard-linked backup
  // would cost nothing, so this fault needs FAT). 6 MiB: the copy itself fails half-written.
  it.each([
    ['the new image does not fit', 20],
    ['the backup copy does not fit', 6],
  ])('%s: rolled back (exit 5), what FAT holds is as before, no .part left', async (_name, freeMiB) => {
    const f = await installedFatRoot(layout, 64);
    fillEsp(f.esp, freeMiB);
    const before = fatSnapshot(f.esp.dir);
    const firmware = readFileSync(f.r.at('/var/fake/efi.json'));
    const result = await kinstall(f.add('b'), { env: f.env });
    expectError(result, 5, /^kinstall: ESTEP: commit failed: .*; rolled back \d+ change\(s\), nothing was changed$/);
    expect(fatSnapshot(f.esp.dir)).toEqual(before);
    expect(readFileSync(f.r.at('/var/fake/efi.json')).equals(firmware)).toBe(true);
    expect(existsSync(journal(f))).toBe(false);
    await expectCleanFat(f);
  });

  it('the backup copy does not fit and the rollback is killed: the .part is on disk, recover removes it', async () => {
    const f = await installedFatRoot(layout, 64);
    fillEsp(f.esp, 6);
    const before = fatSnapshot(f.esp.dir);
    await crashAt(f, 'rollback:0');
    const target = path.join(f.esp.dir, setup.image);
    const parts = readdirSync(path.dirname(target)).filter((n) => n.startsWith(`.${path.basename(target)}.kinstall-old-`));
    expect(parts).toEqual([expect.stringMatching(/\.part$/)]);
    expect(lstatSync(path.join(path.dirname(target), parts[0] ?? '')).size).toBeLessThan(lstatSync(target).size);
    expect(await recover(f)).toContain('rolled back');
    expect(fatSnapshot(f.esp.dir)).toEqual(before);
    await expectCleanFat(f);
  });
});

describe('efistub on a FAT ESP: efibootmgr fails after the copies were made', () => {
  it('a reinstall with a new command line: the ESP files come back from their copies, the firmware as before (exit 5)', async () => {
    const f = await installedFatRoot('efistub');
    // The entry of the first install no longer matches: it is deleted (and that fails) after the commit.
    writeFileSync(f.r.at('/etc/kernel/cmdline'), 'root=/dev/vda3 ro\n');
    const before = fatSnapshot(f.esp.dir);
    const firmware = readFileSync(f.r.at('/var/fake/efi.json'));
    const result = await kinstall(f.add('b'), { env: { ...f.env, EFIBOOTMGR_FAKE_FAIL: '--delete-bootnum' } });
    expectError(
      result,
      5,
      /^kinstall: ETOOL: efibootmgr failed \(exit code 1\); rolled back \d+ change\(s\), nothing was changed$/,
    );
    expect(result.stderr).toContain(
      `place ${f.r.at(`/lib/modules/${V}/vmlinuz`)} -> ${path.join(f.esp.dir, LAYOUTS.efistub.image)}`,
    );
    expect(fatSnapshot(f.esp.dir)).toEqual(before);
    expect(readFileSync(f.r.at('/var/fake/efi.json')).equals(firmware)).toBe(true);
    await expectCleanFat(f);
  });
});

describe.each(LAYOUT_NAMES)('%s on a FAT ESP: hostile inputs are refused, FAT as before', (layout) => {
  const setup = LAYOUTS[layout];
  it('a directory where the image goes, named in other case (FAT names are case-insensitive): exit 4', async () => {
    const f = await fatRoot(layout);
    const upper = path.join(f.esp.dir, path.dirname(setup.image), path.basename(setup.image).toUpperCase());
    mkdirSync(upper, { recursive: true });
    expect(lstatSync(path.join(f.esp.dir, setup.image)).isDirectory()).toBe(true);
    const before = fatSnapshot(f.esp.dir);
    const result = await kinstall(f.add('a'), { env: f.env });
    expectError(result, 4, /^kinstall: EPREFLIGHT: .* is a directory, where the new file goes/);
    expect(fatSnapshot(f.esp.dir)).toEqual(before);
    await expectCleanFat(f);
  });

  it('random bytes for an image: exit 3, ENOTKERNEL', async () => {
    const f = await installedFatRoot(layout);
    const before = fatSnapshot(f.esp.dir);
    const junk = f.r.at('/var/fake/junk');
    writeFileSync(junk, randomBytes(65536));
    const result = await kinstall(
      ['add', '--root', f.r.root, '--layout', layout, '--initrd', f.r.at('/var/fake/initrd-b.cpio'), V, junk],
      { env: f.env },
    );
    expectError(result, 3, /^kinstall: ENOTKERNEL: /);
    expect(fatSnapshot(f.esp.dir)).toEqual(before);
  });
});

describe('an ESP listed in /etc/fstab and mounted (FAT): the mount check lets the install through', () => {
  it.each(['bls', 'efistub'] as const)('%s installs', async (layout) => {
    const f = await fatRoot(layout);
    writeFileSync(f.r.at('/etc/fstab'), `UUID=ABCD-EF01 ${LAYOUTS[layout].esp} vfat umask=0077 0 2\n`);
    const result = await kinstall(f.add('a'), { env: f.env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(path.join(f.esp.dir, LAYOUTS[layout].image)).equals(readFileSync(kernel.image))).toBe(true);
    await expectCleanFat(f);
  });
});
