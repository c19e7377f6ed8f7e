// What kinstall prints, line for line, where it used to repeat or contradict itself: the EPREFLIGHT
// summary, the prefixes of hook and dracut lines, the --dry-run plan of add and remove, bls's
// missing loader.conf, efistub without EFI variables.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kinstall, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** A root where bls finds its boot root at /efi (entries directory, no loader.conf) and a machine id. */
function blsRoot(cmdline: boolean): TestRoot {
  const r = newRoot({ modules: true });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
  if (cmdline) writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda ro\n');
  return r;
}

describe('EPREFLIGHT says each problem once', () => {
  it('several problems: the summary points at the list, each problem one detail line', async () => {
    root = newRoot({ modules: true });
    const r = root;
    const result = await kinstall(['add', '--root', r.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode).toBe(4);
    expect(lines(result.stderr)).toEqual([
      `kinstall: installing ${V} (bzImage, x86_64) with layout bls, initramfs none`,
      'kinstall: EPREFLIGHT: 3 preflight check(s) failed: each is listed below',
      `  no boot root found (tried ${r.at('/efi')}, ${r.at('/boot/efi')}, ${r.at('/boot')}): mount the ESP or XBOOTLDR partition there, or pass --esp DIR`,
      `  no entry token: create ${r.at('/etc/kernel/entry-token')} or ${r.at('/etc/machine-id')}, or set ID in os-release`,
      `  no kernel command line for the boot entry: create ${r.at('/etc/kernel/cmdline')} (for example "root=UUID=... ro") or pass --cmdline`,
    ]);
  });

  it('one problem: in the one-line message only', async () => {
    root = blsRoot(true);
    const r = root;
    const result = await kinstall([
      'add',
      '--root',
      r.root,
      '--layout',
      'bls',
      '--initramfs',
      'none',
      '--esp',
      '/nonexistent',
      V,
      kernel.image,
    ]);
    expect(result.exitCode).toBe(4);
    expect(lines(result.stderr)).toEqual([
      `kinstall: installing ${V} (bzImage, x86_64) with layout bls, initramfs none`,
      `kinstall: EPREFLIGHT: 1 preflight check(s) failed: no boot root found (tried --esp/BOOT_ROOT ${r.at('/nonexistent')}): mount the ESP or XBOOTLDR partition there, or pass --esp DIR`,
    ]);
  });
});

describe('command output is prefixed once', () => {
  it("a hook's own 'NAME:' prefix and dracut's 'dracut:' are not repeated", async () => {
    root = newRoot({ modules: true });
    const result = await kinstall([
      'add',
      '--verbose',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'dracut',
      V,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    const err = lines(result.stderr);
    expect(err).toContain(`kinstall:   50-dkms: dkms is not installed in ${root.root}: nothing to rebuild`);
    expect(err).toContainEqual(
      expect.stringMatching(/^kinstall: {3}dracut: \*\*\* Creating initramfs image file '.*' done \*\*\*$/),
    );
    expect(err.filter((l) => /(\S+): \1:/.test(l))).toEqual([]);
  }, 120_000);
});

describe('--dry-run prints its plan once, whole', () => {
  it('add: the plan on stdout, no plan lines in the log', async () => {
    root = newRoot({ modules: true });
    const result = await kinstall([
      'add',
      '--dry-run',
      '--root',
      root.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      V,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(lines(result.stdout)).toEqual([
      `plan for ${V} (layout compat, initramfs none):`,
      `  place ${kernel.image} -> ${root.at(`/boot/vmlinuz-${V}`)}`,
      `  place ${kernel.systemMap} -> ${root.at(`/boot/System.map-${V}`)}`,
      `  place ${kernel.config} -> ${root.at(`/boot/config-${V}`)}`,
      // Then the hooks that would run, in order (docs/hooks.md): here only kinstall's own.
      'hooks, in order:',
      `  preinst kinstall ${path.join(top, 'hooks.d/50-dkms')}: run`,
      // 50-dkms names preinst as its only phase (its kinstall-phases line): listed, not started.
      `  postinst kinstall ${path.join(top, 'hooks.d/50-dkms')}: skip: it acts only in preinst (its kinstall-phases line)`,
    ]);
    expect(lines(result.stderr).filter((l) => / place | remove /.test(l))).toEqual([]);
  });

  it('remove: every file and the modules tree it announces, on stdout only', async () => {
    root = newRoot({ modules: true });
    const r = root;
    expect(
      (await kinstall(['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image])).exitCode,
    ).toBe(0);
    const result = await kinstall(['remove', '--dry-run', '--root', r.root, V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(lines(result.stdout)).toEqual([
      `would remove ${r.at(`/boot/vmlinuz-${V}`)}`,
      `would remove ${r.at(`/boot/System.map-${V}`)}`,
      `would remove ${r.at(`/boot/config-${V}`)}`,
      `would remove ${r.at(`/lib/modules/${V}`)}/ (the whole tree)`,
    ]);
    expect(lines(result.stderr).filter((l) => / remove |then delete/.test(l))).toEqual([]);
    // --keep-modules keeps the tree, and the list says so by leaving it out.
    const kept = await kinstall(['remove', '--dry-run', '--keep-modules', '--root', r.root, V]);
    expect(lines(kept.stdout)).not.toContain(`would remove ${r.at(`/lib/modules/${V}`)}/ (the whole tree)`);
    expect(lines(kept.stdout)).toHaveLength(3);
  });
});

describe('layout messages do not promise what does not happen', () => {
  it('bls without loader.conf: no "entry is written" warning when preflight fails', async () => {
    root = blsRoot(false);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode).toBe(4);
    expect(lines(result.stderr)).toEqual([
      `kinstall: installing ${V} (bzImage, x86_64) with layout bls, initramfs none`,
      `kinstall: EPREFLIGHT: 1 preflight check(s) failed: no kernel command line for the boot entry: create ${root.at('/etc/kernel/cmdline')} (for example "root=UUID=... ro") or pass --cmdline`,
    ]);
  });

  it('bls without loader.conf: the warning when the install goes on (dry run: would be written)', async () => {
    root = blsRoot(true);
    const result = await kinstall([
      'add',
      '--dry-run',
      '--root',
      root.root,
      '--layout',
      'bls',
      '--initramfs',
      'none',
      V,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(lines(result.stderr)).toContain(
      `kinstall: warn: ${root.at('/efi/loader/loader.conf')} is missing: systemd-boot seems not installed; the entry would be written, but nothing boots it until you run bootctl install`,
    );
  });

  it('efistub without EFI variables: the plan says the command is printed, the warnings say why once, no nested parentheses', async () => {
    root = newRoot({ modules: true, config: { efistub: { disk: '/dev/vda', part: 1 } } });
    mkdirSync(root.at('/boot/efi/EFI'), { recursive: true });
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
    writeFileSync(root.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
    const result = await kinstall(['add', '--root', root.root, '--layout', 'efistub', '--initramfs', 'none', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    const loader = `\\EFI\\Gentoo\\vmlinuz-${V}.efi`;
    const err = lines(result.stderr);
    expect(err).toContain(
      `kinstall: then print, not run, the efibootmgr command that creates the firmware entry for ${loader} (EFI variables are not available)`,
    );
    expect(err).toContain(
      `kinstall: warn: EFI variables are not available (installing under --root ${root.root}; set efistub.efivars to true to write this machine's firmware entries): the files are installed, but no firmware boot entry was created`,
    );
    expect(err).toContain(
      `kinstall: warn: to create it later, run: efibootmgr --create --disk /dev/vda --part 1 --label 'Gentoo ${V}' --loader '${loader}' --unicode 'root=/dev/vda2 ro'`,
    );
    expect(err.filter((l) => l.includes('then create the firmware entry') || /\([^)]*\(/.test(l))).toEqual([]);
  });
});
