// Hostile and broken inputs: each gets its exit code, a one-line coded message, and a root left
// exactly as it was (the boot dir, the neutral location, the ESP, and any directory outside the
// root a symlink leads to).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installkernel, kinstall, type CliResult } from '../helpers/cli.js';
import { espBasics } from '../helpers/esp-scenarios.js';
import { testKernel } from '../helpers/kernel.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
let root: TestRoot;
let mounted: string | undefined;
/** Directories outside the root that a case's symlinks lead to: watched, then removed. */
let outsideDirs: string[] = [];
const newRoot = useScratchRoots({
  first: () => {
    if (mounted) execFileSync('umount', [mounted]);
    mounted = undefined;
  },
});
afterEach(() => {
  for (const dir of outsideDirs) {
    assertScratch(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  outsideDirs = [];
});

/** A fresh directory outside the root (a sibling temp dir), for a symlink to lead to. */
function outside(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-outside-'));
  outsideDirs.push(dir);
  return dir;
}

interface Case {
  name: string;
  exit: number;
  code: string;
  /** Prepares the root; returns the command line (kinstall unless it starts with installkernel). */
  setup: (r: TestRoot) => string[];
  message?: RegExp;
  /** The ESP, as the target names it, when the case has one: its tree must stay as it was. */
  esp?: string;
  /** Asserts on the result beyond the exit code, message and unchanged state. */
  check?: (r: TestRoot, result: CliResult) => void;
}

const add = (r: TestRoot, ...rest: string[]) => ['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', ...rest];
const file = (r: TestRoot, name: string, content: Buffer | string) => {
  const p = r.at(`/tmp/${name}`);
  mkdirSync(r.at('/tmp'), { recursive: true });
  writeFileSync(p, content);
  return p;
};

/** An ESP mount point left unmounted that still holds what bootctl put there (on the root fs). */
function unmountedEsp(r: TestRoot, esp: string): void {
  espBasics(r);
  mkdirSync(r.at(`${esp}/EFI/systemd`), { recursive: true });
  mkdirSync(r.at(`${esp}/loader/entries`), { recursive: true });
  writeFileSync(r.at(`${esp}/loader/loader.conf`), 'timeout 3\n');
  writeFileSync(r.at('/etc/fstab'), `UUID=1234 / ext4 defaults 0 1\nUUID=ABCD-EF01 ${esp} vfat umask=0077 0 2\n`);
}

const efistub = (r: TestRoot, ...rest: string[]) => [
  'add',
  '--root',
  r.root,
  '--layout',
  'efistub',
  '--initramfs',
  'none',
  ...rest,
  V,
  kernel.image,
];

/** An arm64 Image header (magic at 0x38) with a version banner: what `inspect` reads of one. */
function arm64Image(): Buffer {
  const image = Buffer.alloc(8192);
  image.write('ARM\x64', 0x38, 'latin1');
  image.write(`Linux version ${V} (gcc) #1 SMP PREEMPT\0`, 4096, 'latin1');
  return image;
}

const cases: Case[] = [
  { name: 'missing image', exit: 3, code: 'ENOIMAGE', setup: (r) => add(r, V, r.at('/nothere/bzImage')) },
  { name: 'empty image', exit: 3, code: 'ENOTKERNEL', setup: (r) => add(r, V, file(r, 'empty', '')), message: /empty/ },
  {
    name: 'truncated bzImage',
    exit: 3,
    code: 'ENOTKERNEL',
    setup: (r) => add(r, V, file(r, 'trunc', readFileSync(kernel.image).subarray(0, 0x300))),
  },
  { name: 'random bytes', exit: 3, code: 'ENOTKERNEL', setup: (r) => add(r, V, file(r, 'random', randomBytes(65536))) },
  {
    name: 'an x86 ELF vmlinux where a bzImage is expected',
    exit: 3,
    code: 'ENOTKERNEL',
    message: /x86 ELF vmlinux cannot be booted/,
    setup: (r) => {
      const elf = Buffer.alloc(4096);
      elf.write('\x7fELF', 0, 'latin1');
      elf.writeUInt16LE(0x3e, 18);
      elf.write(`Linux version ${V} (gcc) #1 SMP\0`, 1024, 'latin1');
      return add(r, V, file(r, 'vmlinux', elf));
    },
  },
  {
    name: 'an arm64 Image for an x86_64 root',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /the image is an arm64 kernel, but the target system's programs are x86_64/,
    setup: (r) => {
      mkdirSync(r.at('/bin'), { recursive: true });
      copyFileSync('/bin/dash', r.at('/bin/sh'));
      return add(r, V, file(r, 'Image', arm64Image()));
    },
  },
  {
    name: 'an arm64 Image with the lilo layout',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /the lilo layout boots x86\/x86_64 kernels only; this image is arm64/,
    setup: (r) => ['add', '--root', r.root, '--layout', 'lilo', '--initramfs', 'none', V, file(r, 'Image', arm64Image())],
  },
  { name: 'version mismatch', exit: 3, code: 'EVERSIONMISMATCH', setup: (r) => add(r, '6.6.6-other', kernel.image) },
  { name: 'version ../../etc', exit: 3, code: 'EBADVERSION', setup: (r) => add(r, '../../etc', kernel.image) },
  { name: 'version with a newline', exit: 3, code: 'EBADVERSION', setup: (r) => add(r, `${V}\nx`, kernel.image) },
  { name: 'version of 65 bytes', exit: 3, code: 'EBADVERSION', setup: (r) => add(r, `6.1.0-${'x'.repeat(59)}`, kernel.image) },
  {
    name: 'unknown layout',
    exit: 3,
    code: 'ECONFIG',
    setup: (r) => ['add', '--root', r.root, '--layout', 'bogus', V, kernel.image],
    message: /unknown layout "bogus"/,
  },
  // A generator kinstall lacks may be a Gentoo plugin's (ugrd): refused only when no hook is named after it.
  {
    name: 'unknown generator',
    exit: 4,
    code: 'EGENERATOR',
    setup: (r) => ['add', '--root', r.root, '--initramfs', 'mkinitcpio', V, kernel.image],
    message: /initrd_generator=mkinitcpio: kinstall has no such generator and no hook named after it/,
  },
  {
    name: 'malformed install.conf',
    exit: 3,
    code: 'ECONFIG',
    message: /install\.conf:2: expected KEY=VALUE/,
    setup: (r) => {
      mkdirSync(r.at('/etc/kernel'), { recursive: true });
      writeFileSync(r.at('/etc/kernel/install.conf'), 'layout=compat\nthis is not a setting\n');
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'malformed config file',
    exit: 3,
    code: 'ECONFIG',
    setup: (r) => {
      writeFileSync(r.at('/etc/kinstall/config.json'), '{ "layout": "compat", ');
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'config with unknown keys',
    exit: 3,
    code: 'ECONFIG',
    message: /unknown key "bootloader"/,
    setup: (r) => {
      writeFileSync(r.at('/etc/kinstall/config.json'), JSON.stringify({ bootloader: 'grub' }));
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'boot dir a symlink to elsewhere',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /outside/,
    setup: (r) => {
      execFileSync('rmdir', [r.boot]);
      symlinkSync(outside(), r.boot);
      return add(r, V, kernel.image);
    },
    check: () => expect(readdirSync(outsideDirs[0] ?? '')).toEqual([]),
  },
  {
    name: '--esp /efi a symlink to a directory outside the root',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /ESP .*\/efi leads to .*kinstall-outside-.*, outside/,
    setup: (r) => {
      espBasics(r);
      const elsewhere = outside();
      mkdirSync(path.join(elsewhere, 'loader/entries'), { recursive: true });
      symlinkSync(elsewhere, r.at('/efi'));
      return ['add', '--root', r.root, '--layout', 'bls', '--esp', '/efi', '--initramfs', 'none', V, kernel.image];
    },
  },
  {
    name: 'lib/modules a symlink to a directory outside the root',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /modules dir .*\/lib\/modules leads to .*kinstall-outside-.*, outside/,
    setup: (r) => {
      const elsewhere = outside();
      rmSync(elsewhere, { recursive: true });
      renameSync(r.at('/lib/modules'), elsewhere);
      symlinkSync(elsewhere, r.at('/lib/modules'));
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'bls: the ESP /efi in fstab but not mounted',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /boot root .*\/efi is listed in \/etc\/fstab but not mounted \(run: mount \/efi\)/,
    esp: '/efi',
    setup: (r) => {
      unmountedEsp(r, '/efi');
      return ['add', '--root', r.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image];
    },
  },
  {
    name: 'bls: the ESP /efi in fstab but not mounted, /boot holding loader/',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /boot root .*\/efi is listed in \/etc\/fstab but not mounted/,
    esp: '/boot',
    setup: (r) => {
      unmountedEsp(r, '/boot');
      mkdirSync(r.at('/efi'));
      writeFileSync(r.at('/etc/fstab'), 'UUID=ABCD-EF01 /efi vfat umask=0077 0 2\n');
      return ['add', '--root', r.root, '--layout', 'bls', '--initramfs', 'none', V, kernel.image];
    },
  },
  {
    name: 'efistub: the ESP /boot/efi in fstab but not mounted',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /ESP .*\/boot\/efi is listed in \/etc\/fstab but not mounted \(run: mount \/boot\/efi\)/,
    esp: '/boot/efi',
    setup: (r) => {
      unmountedEsp(r, '/boot/efi');
      return efistub(r);
    },
  },
  {
    name: 'efistub: --esp /efi in fstab but not mounted',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /ESP .*\/efi is listed in \/etc\/fstab but not mounted \(run: mount \/efi\)/,
    esp: '/efi',
    setup: (r) => {
      unmountedEsp(r, '/efi');
      return efistub(r, '--esp', '/efi');
    },
  },
  {
    name: 'vmlinuz-KVER pre-existing as a directory',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /is a directory/,
    setup: (r) => {
      mkdirSync(r.at(`/boot/vmlinuz-${V}`));
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'vmlinuz-KVER a directory, with a preinst hook and an initramfs to make',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /vmlinuz-\S+ is a directory, where the new file goes/,
    setup: (r) => {
      mkdirSync(r.at(`/boot/vmlinuz-${V}`));
      // The hook would leave a file outside the root: the check must come before it (and dracut).
      mkdirSync(r.at('/etc/kinstall/hooks.d'), { recursive: true });
      writeFileSync(r.at('/etc/kinstall/hooks.d/50-marker'), `#!/bin/sh\ntouch ${outside()}/hook-ran\n`, { mode: 0o755 });
      // --verbose logs every step as it starts, so the steps that never ran can be told apart.
      return ['add', '--verbose', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image];
    },
    check: (_r, result) => {
      expect(result.stderr).toContain('step preflight: start');
      expect(result.stderr).not.toMatch(/generating initramfs|step (stage|preinst|initramfs): start/);
    },
  },
  {
    name: 'modules dir missing for dracut',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /dracut needs the modules/,
    setup: (r) => ['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image],
  },
  { name: 'staged kernel missing', exit: 3, code: 'ENOSTAGED', setup: (r) => add(r, V) },
  {
    name: 'prebuilt initrd missing',
    exit: 3,
    code: 'ENOINITRD',
    setup: (r) => ['add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/nothere.img'), V, kernel.image],
  },
  {
    name: 'boot dir in fstab but not mounted',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /listed in \/etc\/fstab but not mounted/,
    setup: (r) => {
      writeFileSync(r.at('/etc/fstab'), 'UUID=1234 /boot ext4 defaults 0 2\n');
      return add(r, V, kernel.image);
    },
  },
  {
    name: 'read-only boot dir',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /not writable/,
    setup: (r) => {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', r.boot]);
      mounted = r.boot;
      return add(r, V, kernel.image);
    },
  },
  { name: 'unknown option', exit: 2, code: 'EUSAGE', setup: (r) => [...add(r, V, kernel.image), '--frobnicate'] },
  { name: '--keep that is not a number', exit: 2, code: 'EUSAGE', setup: (r) => [...add(r, V, kernel.image), '--keep', 'all'] },
  { name: 'installkernel with one argument', exit: 2, code: 'EUSAGE', setup: (r) => ['installkernel', V, '--root', r.root] },
  {
    name: 'inspect of a text file',
    exit: 3,
    code: 'ENOTKERNEL',
    setup: (r) => ['inspect', file(r, 'notes.txt', 'just some text\n'.repeat(100))],
  },
];

const snapshotIfThere = (dir: string) => (existsSync(dir) ? snapshotTree(dir) : null);

/** What the guarantee covers: the boot dir, the neutral location, the ESP, directories outside. */
function state(r: TestRoot, c: Case) {
  return {
    boot: snapshotTree(r.boot),
    modules: snapshotIfThere(r.at(`/lib/modules/${V}`)),
    esp: c.esp ? snapshotIfThere(r.at(c.esp)) : null,
    outside: outsideDirs.map((dir) => snapshotTree(dir)),
  };
}

async function runCase(args: string[]): Promise<CliResult> {
  return args[0] === 'installkernel' ? installkernel(args.slice(1)) : kinstall(args);
}

describe('hostile and broken inputs', () => {
  for (const c of cases) {
    it(`${c.name}: exit ${c.exit}, ${c.code}, nothing changed`, async () => {
      root = newRoot({ modules: c.code === 'EPREFLIGHT' && c.name.includes('dracut') ? false : true });
      const args = c.setup(root);
      const before = state(root, c);
      const result = await runCase(args);
      const lines = result.stderr.split('\n').filter((l) => l.startsWith('kinstall: E'));
      expect(lines, result.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^kinstall: ${c.code}: \\S`));
      // The message, or with several problems one of the detail lines below it.
      if (c.message) expect(result.stderr.slice(result.stderr.indexOf(lines[0] ?? ''))).toMatch(c.message);
      expect(result.exitCode).toBe(c.exit);
      expect(state(root, c)).toEqual(before);
      c.check?.(root, result);
    });
  }
});
