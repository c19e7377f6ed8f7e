// The uki layout under a temporary --root: a Unified Kernel Image built by the real dracut from the
// real kernel, checked with objdump and kinstall inspect; prebuilt UKIs, boot counting, remove, refusals.
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { fastDracutArgs, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = 'fedcba9876543210fedcba9876543210';
const CMDLINE = 'root=/dev/vda2 ro quiet';
const OS_RELEASE = 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n';
// Same initramfs bytes on every build, so two builds differ only in the PE header's time stamp.
const env = { SOURCE_DATE_EPOCH: '1700000000' };
const newRoot = useScratchRoots();
let root: TestRoot;

function ukiRoot(options: { esp?: boolean; cmdline?: boolean } = {}): TestRoot {
  const r = newRoot({ modules: true, config: false });
  const confDir = r.at('/etc/dracut-empty.conf.d');
  writeFileSync(
    r.at('/etc/kinstall/config.json'),
    JSON.stringify({ dracut: { args: [...fastDracutArgs(confDir), '--reproducible'] } }),
  );
  if (options.esp !== false) {
    mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
    mkdirSync(r.at('/efi/loader'), { recursive: true });
  }
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  if (options.cmdline !== false) writeFileSync(r.at('/etc/kernel/cmdline'), `${CMDLINE}\n`);
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), OS_RELEASE);
  return r;
}

/**
 * Points the dracut plugin at a wrapper that logs each run's arguments to a file in the root and
 * then runs the real dracut, so a test can count dracut runs. Returns the runs so far, one a line.
 */
function countDracutRuns(r: TestRoot): () => string[] {
  const runs = r.at('/dracut-runs.log');
  const wrapper = r.at('/usr/local/bin/dracut-counted');
  mkdirSync(path.dirname(wrapper), { recursive: true });
  writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> '${runs}'\nexec dracut "$@"\n`, { mode: 0o755 });
  const configFile = r.at('/etc/kinstall/config.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { dracut: Record<string, unknown> };
  writeFileSync(configFile, JSON.stringify({ ...config, dracut: { ...config.dracut, command: wrapper } }));
  return () => (existsSync(runs) ? readFileSync(runs, 'utf8').split('\n').filter(Boolean) : []);
}

const add = (r: TestRoot, ...args: string[]) => kinstall(['add', '--root', r.root, '--initramfs', 'none', ...args], { env });

/** Section name → VMA, from objdump -h. */
function sections(file: string): Record<string, string> {
  const out = execFileSync('objdump', ['-h', file], { encoding: 'utf8' });
  const found: Record<string, string> = {};
  for (const match of out.matchAll(/^\s+\d+\s+(\.\S+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm))
    found[match[1] ?? ''] = `0x${(match[2] ?? '').replace(/^0+/, '')}`;
  return found;
}

function section(file: string, name: string): Buffer {
  const out = path.join(path.dirname(file), `.section${name}`);
  execFileSync('objcopy', ['-O', 'binary', `--only-section=${name}`, file, out]);
  try {
    return readFileSync(out);
  } finally {
    execFileSync('rm', ['-f', out]);
  }
}

/** A snapshot where a UKI counts by its sections, not its PE time stamp. */
function ukiTree(dir: string): Record<string, string> {
  const tree = snapshotTree(dir);
  for (const name of Object.keys(tree).filter((n) => n.endsWith('.efi'))) {
    const file = path.join(dir, name);
    const parts = ['.linux', '.initrd', '.cmdline'].map(
      (s) => `${s}=${createHash('sha256').update(section(file, s)).digest('hex')}`,
    );
    tree[name] = `${tree[name]?.split(' ').slice(0, 2).join(' ')} ${parts.join(' ')}`;
  }
  return tree;
}

describe('uki layout', () => {
  it('builds a UKI with dracut: .linux is the kernel, .cmdline the command line, .initrd a real initramfs; again is the same; remove restores the tree', async () => {
    root = ukiRoot();
    const esp = root.at('/efi');
    const before = snapshotTree(esp);
    const result = await add(root, '--layout', 'uki', V, kernel.image);
    expect(result.exitCode, result.stderr).toBe(0);
    const name = `${MACHINE_ID}-${V}.efi`;
    expect(Object.keys(snapshotTree(esp)).sort()).toEqual([...Object.keys(before), `EFI/Linux/${name}`].sort());
    const uki = root.at(`/efi/EFI/Linux/${name}`);
    expect(sections(uki)).toMatchObject({
      '.osrel': '0x20000',
      '.cmdline': '0x30000',
      '.linux': '0x2000000',
      '.initrd': '0x3000000',
    });
    expect(section(uki, '.linux').equals(readFileSync(kernel.image))).toBe(true);
    expect(section(uki, '.cmdline').toString('latin1').replace(/\0+$/, '').trim()).toBe(CMDLINE);
    writeFileSync(root.at('/initrd-from-uki.img'), section(uki, '.initrd'));
    const listing = execFileSync('lsinitrd', [root.at('/initrd-from-uki.img')], { encoding: 'utf8' });
    expect(listing).toContain(`usr/lib/modules/${V}/modules.dep`);
    const inspected = await kinstall(['inspect', '--json', uki]);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ format: 'uki', efiStub: true });

    const installed = ukiTree(esp);
    const again = await add(root, '--layout', 'uki', V);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(ukiTree(esp)).toEqual(installed);

    const listed = await kinstall(['list', '--json', '--root', root.root, '--layout', 'uki']);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ version: V, layout: 'uki', files: [uki] }]);
    const removed = await kinstall(['remove', '--root', root.root, '--layout', 'uki', V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(snapshotTree(esp)).toEqual(before);
  });

  it('a normal install (initramfs dracut) runs dracut once, for the UKI, and installs no separate initramfs', async () => {
    root = ukiRoot();
    const dracutRuns = countDracutRuns(root);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'uki', '--initramfs', 'dracut', V, kernel.image], {
      env,
    });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`not generating an initramfs for ${V}: layout uki builds its own into its image`);
    expect(dracutRuns()).toHaveLength(1);
    expect(dracutRuns()[0]).toContain('--uefi');
    expect(readdirSync(root.at('/efi/EFI/Linux'))).toEqual([`${MACHINE_ID}-${V}.efi`]);
    const uki = root.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`);
    writeFileSync(root.at('/initrd-from-uki.img'), section(uki, '.initrd'));
    expect(execFileSync('lsinitrd', [root.at('/initrd-from-uki.img')], { encoding: 'utf8' })).toContain(
      `usr/lib/modules/${V}/modules.dep`,
    );
  });

  it('assembles the UKI with objcopy around an --initrd file or a neighbour initrd, byte for byte, without dracut', async () => {
    root = ukiRoot();
    const dracutRuns = countDracutRuns(root);
    // An odd size, so any padding objcopy added to the section would show.
    const given = root.at('/tmp/pre.img');
    mkdirSync(path.dirname(given), { recursive: true });
    const stream = Buffer.concat([initramfsFixture('early'), gzipSync(randomBytes(300_001))]);
    writeFileSync(given, stream.length % 2 === 1 ? stream : Buffer.concat([stream, Buffer.alloc(1)]));

    rmSync(root.at('/etc/os-release'));
    const before = snapshotTree(root.root);
    const noOsRelease = await kinstall(['add', '--root', root.root, '--layout', 'uki', '--initrd', given, V, kernel.image], {
      env,
    });
    expect(noOsRelease.exitCode).toBe(4);
    expect(noOsRelease.stderr).toContain(`no os-release in ${root.at('/etc/os-release')} or ${root.at('/usr/lib/os-release')}`);
    expect(snapshotTree(root.root)).toEqual(before);
    writeFileSync(root.at('/etc/os-release'), OS_RELEASE);

    const result = await kinstall(['add', '--root', root.root, '--layout', 'uki', '--initrd', given, V, kernel.image], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain('assembling the UKI with objcopy around the initramfs');
    expect(result.stderr).not.toContain('goes unused');
    expect(dracutRuns()).toEqual([]);
    const uki = root.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`);
    expect(sections(uki)).toMatchObject({
      '.osrel': '0x20000',
      '.cmdline': '0x30000',
      '.linux': '0x2000000',
      '.initrd': '0x3000000',
    });
    expect(section(uki, '.initrd').equals(readFileSync(given))).toBe(true);
    expect(section(uki, '.linux').equals(readFileSync(kernel.image))).toBe(true);
    expect(section(uki, '.cmdline').equals(Buffer.from(`${CMDLINE}\0`))).toBe(true);
    expect(section(uki, '.osrel').toString('utf8')).toBe(OS_RELEASE);
    const inspected = await kinstall(['inspect', '--json', uki]);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ format: 'uki', efiStub: true });

    // Gentoo's dist-kernel leaves an `initrd` beside its image: that one goes into the UKI.
    const distDir = root.at('/usr/src/dist');
    mkdirSync(distDir, { recursive: true });
    copyFileSync(kernel.image, path.join(distDir, 'vmlinuz'));
    writeFileSync(path.join(distDir, 'initrd'), Buffer.concat([initramfsFixture('dist-kernel'), gzipSync(randomBytes(200_003))]));
    const neighbour = await kinstall(['add', '--root', root.root, '--layout', 'uki', V, path.join(distDir, 'vmlinuz')], { env });
    expect(neighbour.exitCode, neighbour.stderr).toBe(0);
    expect(section(uki, '.initrd').equals(readFileSync(path.join(distDir, 'initrd')))).toBe(true);
    expect(dracutRuns()).toEqual([]);
  });

  it('layout=auto takes a prebuilt UKI as it is, named by the entry token and +N from /etc/kernel/tries; a reinstall leaves one image', async () => {
    root = ukiRoot();
    const built = await add(root, '--layout', 'uki', V, kernel.image);
    expect(built.exitCode, built.stderr).toBe(0);
    const prebuilt = root.at('/prebuilt.efi');
    copyFileSync(root.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`), prebuilt);
    expect((await kinstall(['remove', '--keep-modules', '--root', root.root, '--layout', 'uki', V])).exitCode).toBe(0);

    writeFileSync(root.at('/etc/kernel/entry-token'), 'gentoo\n');
    writeFileSync(root.at('/etc/kernel/tries'), '3\n');
    const result = await add(root, V, prebuilt);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`layout=auto: chose uki: ${prebuilt} is a Unified Kernel Image`);
    expect(readdirSync(root.at('/efi/EFI/Linux'))).toEqual([`gentoo-${V}+3.efi`]);
    expect(readFileSync(root.at(`/efi/EFI/Linux/gentoo-${V}+3.efi`)).equals(readFileSync(prebuilt))).toBe(true);

    writeFileSync(root.at('/etc/kernel/tries'), '5\n');
    const again = await add(root, V, prebuilt);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(readdirSync(root.at('/efi/EFI/Linux'))).toEqual([`gentoo-${V}+5.efi`]);
  });

  it('refuses a kernel image over 16 MiB with the reason, nothing changed', async () => {
    root = ukiRoot();
    const big = root.at('/big-bzImage');
    copyFileSync(kernel.image, big);
    truncateSync(big, 17 * 1024 * 1024);
    const before = snapshotTree(root.root);
    const result = await add(root, '--layout', 'uki', V, big);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: EPREFLIGHT: .*the kernel image is 17\.0 MiB, over the 16 MiB a dracut 059 UKI has room for \(it places the kernel at 0x2000000 and the initrd at 0x3000000\)/m,
    );
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('no ESP: exit 4 naming the places tried; no command line: exit 4 naming /etc/kernel/cmdline', async () => {
    root = ukiRoot({ esp: false });
    const before = snapshotTree(root.root);
    const noEsp = await add(root, '--layout', 'uki', V, kernel.image);
    expect(noEsp.exitCode).toBe(4);
    expect(noEsp.stderr).toContain(`no boot root found (tried ${root.at('/efi')}, ${root.at('/boot/efi')}, ${root.at('/boot')})`);
    expect(snapshotTree(root.root)).toEqual(before);

    root = ukiRoot({ cmdline: false });
    const beforeNoCmdline = snapshotTree(root.root);
    const noCmdline = await add(root, '--layout', 'uki', V, kernel.image);
    expect(noCmdline.exitCode).toBe(4);
    expect(noCmdline.stderr).toMatch(
      new RegExp(
        `^kinstall: EPREFLIGHT: .*no kernel command line to embed in the UKI: create ${root.at('/etc/kernel/cmdline')}`,
        'm',
      ),
    );
    expect(snapshotTree(root.root)).toEqual(beforeNoCmdline);
  });

  it('a uki_generator kinstall lacks, with no hook named after it, is refused in preflight (EGENERATOR)', async () => {
    root = ukiRoot();
    writeFileSync(root.at('/etc/kernel/install.conf'), 'uki_generator=ukify\n');
    const before = snapshotTree(root.root);
    const result = await add(root, '--layout', 'uki', V, kernel.image);
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      /^kinstall: EGENERATOR: uki_generator=ukify: kinstall has no such generator and no hook named after it would make the UKI/m,
    );
    expect(result.stderr).toContain('or set uki_generator to one of: dracut');
    expect(snapshotTree(root.root)).toEqual(before);
  });
});
