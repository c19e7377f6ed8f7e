// Early microcode: the target's /boot/intel-uc.img (or microcode* a hook leaves in the staging
// area) is loaded before the initramfs: its own initrd line first in a BLS entry (a copy in the
// version's directory, removed with it), the first initrd= of an efistub firmware entry (a file
// beside the kernel on the ESP, removed with it), first in the UKI's initrd section.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall, top } from '../helpers/cli.js';
import { kinstallInNamespace, leakedMounts, prepareGrubRoot } from '../helpers/grub-namespace.js';
import { initramfsFixture, microcodeFixture, scriptedInitramfs } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { fastDracutArgs, useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const newRoot = useScratchRoots();

/** An ESP target (/efi) with a prebuilt initramfs to install, and os-release for the UKI. */
function espRoot(layout: string): { r: TestRoot; initrd: string } {
  const r = newRoot();
  mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/install.conf'), `layout=${layout}\n`);
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  const initrd = r.at('/var/tmp/initrd.img');
  mkdirSync(r.at('/var/tmp'), { recursive: true });
  writeFileSync(initrd, initramfsFixture('main-initramfs'));
  return { r, initrd };
}

const EFIBOOTMGR = path.join(top, 'test/fakes/efibootmgr');

const WINDOWS = {
  label: 'Windows Boot Manager',
  active: true,
  disk: '/dev/vda',
  part: 1,
  loader: '\\EFI\\Microsoft\\Boot\\bootmgfw.efi',
  args: '',
};

/** An efistub target: the ESP at /boot/efi, firmware entries (Windows first) in test/fakes/efibootmgr's state file. */
function efistubRoot(options: Record<string, unknown> = {}): { r: TestRoot; initrd: string; env: Record<string, string> } {
  const r = newRoot({ config: { efistub: { efibootmgr: EFIBOOTMGR, efivars: true, disk: '/dev/vda', part: 1, ...options } } });
  for (const dir of ['/boot/efi/EFI', `/lib/modules/${V}/kernel`, '/etc/kernel', '/var/tmp', '/var/fake'])
    mkdirSync(r.at(dir), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  writeFileSync(
    r.at('/var/fake/efi.json'),
    JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: ['0000'], entries: { '0000': WINDOWS } }),
  );
  const initrd = r.at('/var/tmp/initrd.img');
  writeFileSync(initrd, initramfsFixture('main-initramfs'));
  return { r, initrd, env: { EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json') } };
}

/** The argument lists test/fakes/efibootmgr was called with, in order. */
const efibootmgrCalls = (r: TestRoot) =>
  readFileSync(r.at('/var/fake/efi.json.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as string[]);
const efiDir = (r: TestRoot) => r.at('/boot/efi/EFI/Gentoo');

/** A section of a PE file, as objcopy reads it out. */
function sectionOf(r: TestRoot, file: string, name: string): Buffer {
  const out = r.at(`/var/tmp/section${name}.bin`);
  execFileSync('objcopy', ['-O', 'binary', `--only-section=${name}`, file, out]);
  return readFileSync(out);
}

/** Section name → VMA, from objdump -h. */
const sectionVmas = (file: string) =>
  Object.fromEntries(
    [...execFileSync('objdump', ['-h', file], { encoding: 'utf8' }).matchAll(/^\s*\d+\s+(\.\S+)\s+\S+\s+([0-9a-f]+)/gm)].map(
      (m) => [m[1], `0x${BigInt(`0x${m[2]}`).toString(16)}`],
    ),
  );

const entryOf = (r: TestRoot) => readFileSync(r.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`), 'utf8');

describe('early microcode', () => {
  it('bls: /boot/intel-uc.img copied beside the kernel, its initrd line first; removed with the version', async () => {
    const { r, initrd } = espRoot('bls');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const initrdLines = entryOf(r)
      .split('\n')
      .filter((l) => l.startsWith('initrd'));
    expect(initrdLines).toEqual([`initrd /${MACHINE_ID}/${V}/intel-uc.img`, `initrd /${MACHINE_ID}/${V}/initrd`]);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/intel-uc.img`)).equals(microcodeFixture())).toBe(true);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/initrd`)).equals(readFileSync(initrd))).toBe(true);

    const removed = await kinstall(['remove', '--root', r.root, V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(existsSync(r.at(`/efi/${MACHINE_ID}/${V}`))).toBe(false);
    // The target's own image stays where its package put it.
    expect(readFileSync(r.at('/boot/intel-uc.img')).equals(microcodeFixture())).toBe(true);
  });

  it('verify boots every initrd the entry lists, microcode first: the initramfs after it still runs', async () => {
    const { r, initrd } = espRoot('bls');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    // An init that prints and waits: its first line is the verdict's milestone for a plain init.
    const kbuild = execFileSync('bash', [path.join(top, 'scripts/build-test-kernel.sh')], { encoding: 'utf8' }).trim();
    writeFileSync(
      initrd,
      scriptedInitramfs(kbuild, 'kmsg 3 "kinstall-test: init behind the microcode runs"\nwhile :; do sleep 60; done'),
    );
    expect((await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image])).exitCode).toBe(0);
    const result = await kinstall(['verify', '--root', r.root, '--timeout', '60', V]);
    expect(result.stderr).toContain(
      `with ${r.at(`/efi/${MACHINE_ID}/${V}/intel-uc.img`)} + ${r.at(`/efi/${MACHINE_ID}/${V}/initrd`)}`,
    );
    expect(result.stdout).toContain('kinstall-test: init behind the microcode runs');
    expect(result.exitCode, result.stdout).toBe(0);
  }, 120_000);

  it('bls: microcode a preinst hook leaves in the staging area alone is loaded first as well', async () => {
    const { r, initrd } = espRoot('bls');
    writeFileSync(r.at('/var/tmp/amd.img'), microcodeFixture('amd'));
    writeHook(
      r,
      '/etc/kernel/preinst.d',
      '40-microcode.install',
      `cp '${r.at('/var/tmp/amd.img')}' "$INSTALLKERNEL_STAGING_AREA/microcode-amd.img"`,
    );
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const initrdLines = entryOf(r)
      .split('\n')
      .filter((l) => l.startsWith('initrd'));
    expect(initrdLines).toEqual([`initrd /${MACHINE_ID}/${V}/microcode-amd.img`, `initrd /${MACHINE_ID}/${V}/initrd`]);
    expect(readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/microcode-amd.img`)).equals(microcodeFixture('amd'))).toBe(true);
  });

  it('efistub: /boot/intel-uc.img copied beside the kernel on the ESP, the first initrd= of the firmware entry; removed with the kernel', async () => {
    const { r, initrd, env } = efistubRoot();
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const result = await kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initrd', initrd, V, kernel.image], { env });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(path.join(efiDir(r), `microcode-${V}.img`)).equals(microcodeFixture())).toBe(true);
    expect(readFileSync(path.join(efiDir(r), `initramfs-${V}.img`)).equals(readFileSync(initrd))).toBe(true);
    const args = `root=/dev/vda2 ro initrd=\\EFI\\Gentoo\\microcode-${V}.img initrd=\\EFI\\Gentoo\\initramfs-${V}.img`;
    expect(efibootmgrCalls(r)).toContainEqual([
      '--create',
      '--disk',
      '/dev/vda',
      '--part',
      '1',
      '--label',
      `Gentoo ${V}`,
      '--loader',
      `\\EFI\\Gentoo\\vmlinuz-${V}.efi`,
      '--unicode',
      args,
    ]);

    const listed = await kinstall(['list', '--json', '--root', r.root, '--layout', 'efistub'], { env });
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as Array<{ initrds: string[] }>)[0]?.initrds).toEqual([
      path.join(efiDir(r), `microcode-${V}.img`),
      path.join(efiDir(r), `initramfs-${V}.img`),
    ]);

    const removed = await kinstall(['remove', '--root', r.root, '--layout', 'efistub', V], { env });
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(snapshotTree(efiDir(r))).toEqual({});
    expect(efibootmgrCalls(r).at(-1)).toEqual(['--delete-bootnum', '--bootnum', '0001']);
    expect(readFileSync(r.at('/boot/intel-uc.img')).equals(microcodeFixture())).toBe(true);
  });

  it('efistub: intel and amd images become one file, intel first; a reinstall without microcode drops it from the ESP and the entry', async () => {
    const { r, initrd, env } = efistubRoot();
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture('intel'));
    writeFileSync(r.at('/boot/amd-uc.img'), microcodeFixture('amd'));
    const add = (extra: string[] = []) =>
      kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initrd', initrd, ...extra, V, kernel.image], { env });
    const first = await add();
    expect(first.exitCode, first.stderr).toBe(0);
    const microcode = path.join(efiDir(r), `microcode-${V}.img`);
    expect(readFileSync(microcode).equals(Buffer.concat([microcodeFixture('intel'), microcodeFixture('amd')]))).toBe(true);

    rmSync(r.at('/boot/intel-uc.img'));
    rmSync(r.at('/boot/amd-uc.img'));
    const second = await add();
    expect(second.exitCode, second.stderr).toBe(0);
    expect(existsSync(microcode)).toBe(false);
    const state = JSON.parse(readFileSync(r.at('/var/fake/efi.json'), 'utf8')) as {
      entries: Record<string, { label: string; args: string }>;
    };
    expect(
      Object.values(state.entries)
        .filter((e) => e.label !== WINDOWS.label)
        .map((e) => e.args),
    ).toEqual([`root=/dev/vda2 ro initrd=\\EFI\\Gentoo\\initramfs-${V}.img`]);
  });

  it('efistub: efibootmgr failing after the entry was made rolls back the microcode copy with the rest', async () => {
    // Last in BootOrder: the entry is created, then the --bootorder run fails.
    const { r, initrd, env } = efistubRoot({ bootOrderFirst: false });
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const trees = () => ({ boot: snapshotTree(r.boot), modules: snapshotTree(r.at('/lib/modules')) });
    const before = trees();
    const firmware = readFileSync(r.at('/var/fake/efi.json'), 'utf8');
    const result = await kinstall(['add', '--root', r.root, '--layout', 'efistub', '--initrd', initrd, V, kernel.image], {
      env: { ...env, EFIBOOTMGR_FAKE_FAIL: '--bootorder' },
    });
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: efibootmgr failed \(exit code 1\); rolled back/m);
    expect(efibootmgrCalls(r).map((c) => c[0])).toEqual(['-v', '--create', '-v', '--bootorder', '-v', '--delete-bootnum', '-v']);
    expect(trees()).toEqual(before);
    expect(JSON.parse(readFileSync(r.at('/var/fake/efi.json'), 'utf8'))).toEqual(JSON.parse(firmware));
  });

  it('uki (assembled around a given initramfs): the initrd section is the microcode, then the initramfs', async () => {
    const { r, initrd } = espRoot('uki');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const result = await kinstall(['add', '--root', r.root, '--initrd', initrd, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const uki = r.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`);
    const section = r.at('/var/tmp/section.bin');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.initrd', uki, section]);
    expect(readFileSync(section).equals(Buffer.concat([microcodeFixture(), readFileSync(initrd)]))).toBe(true);
  });

  it('uki built by dracut --uefi: its .initrd section is rebuilt as the microcode, then the initramfs dracut made', async () => {
    const r = newRoot({ modules: true, config: false });
    // --reproducible and SOURCE_DATE_EPOCH: two dracut builds make the same initramfs bytes.
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    writeFileSync(
      r.at('/etc/kinstall/config.json'),
      JSON.stringify({ dracut: { args: [...fastDracutArgs(r.at('/etc/dracut-empty.conf.d')), '--reproducible'] } }),
    );
    mkdirSync(r.at('/efi/EFI/Linux'), { recursive: true });
    mkdirSync(r.at('/efi/loader'), { recursive: true });
    mkdirSync(r.at('/etc/kernel'), { recursive: true });
    mkdirSync(r.at('/var/tmp'), { recursive: true });
    writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
    writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
    writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
    const uki = r.at(`/efi/EFI/Linux/${MACHINE_ID}-${V}.efi`);
    const add = () => kinstall(['add', '--root', r.root, '--layout', 'uki', '--initramfs', 'dracut', V, kernel.image], { env });

    const plain = await add();
    expect(plain.exitCode, plain.stderr).toBe(0);
    const dracutInitrd = sectionOf(r, uki, '.initrd');
    const vmas = sectionVmas(uki);

    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const withMicrocode = await add();
    expect(withMicrocode.exitCode, withMicrocode.stderr).toBe(0);
    expect(withMicrocode.stderr).toContain(`putting the early microcode ${r.at('/boot/intel-uc.img')} in front of the initramfs`);
    expect(sectionOf(r, uki, '.initrd').equals(Buffer.concat([microcodeFixture(), dracutInitrd]))).toBe(true);
    expect(sectionOf(r, uki, '.linux').equals(readFileSync(kernel.image))).toBe(true);
    // Every section where dracut put it: the grown .initrd too.
    expect(sectionVmas(uki)).toEqual(vmas);
    expect(vmas).toMatchObject({ '.linux': '0x2000000', '.initrd': '0x3000000' });
    writeFileSync(r.at('/var/tmp/dracut-initrd.img'), dracutInitrd);
    expect(execFileSync('lsinitrd', [r.at('/var/tmp/dracut-initrd.img')], { encoding: 'utf8' })).toContain(
      `usr/lib/modules/${V}/modules.dep`,
    );
  });

  it("grub: the real grub-mkconfig (Debian's 10_linux) loads /boot/intel-uc.img before the initramfs by itself", async () => {
    const r = prepareGrubRoot(newRoot(), 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_CMDLINE_LINUX="console=ttyS0"\n');
    writeFileSync(r.at('/boot/intel-uc.img'), microcodeFixture());
    const initrd = r.at('/prebuilt-initrd.img');
    writeFileSync(initrd, initramfsFixture('main-initramfs'));
    const result = await kinstallInNamespace(r, [
      'add',
      '--root',
      r.root,
      '--layout',
      'grub',
      '--initrd',
      initrd,
      V,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const cfg = readFileSync(r.at('/boot/grub/grub.cfg'), 'utf8');
    const escaped = V.replace(/[.]/g, '\\.');
    expect(cfg).toMatch(new RegExp(`^\\s*initrd\\s+/intel-uc\\.img /initramfs-${escaped}\\.img$`, 'm'));
    expect(leakedMounts(r)).toEqual([]);
  });
});
