// Hostile and broken inputs: each gets its exit code, a one-line coded message, and a root left
// exactly as it was (the boot dir and the neutral location).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { installkernel, kinstall, type CliResult } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { makeRoot, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
let root: TestRoot | undefined;
let mounted: string | undefined;
afterEach(() => {
  if (mounted) execFileSync('umount', [mounted]);
  mounted = undefined;
  root?.cleanup();
  root = undefined;
});

interface Case {
  name: string;
  exit: number;
  code: string;
  /** Prepares the root; returns the command line (kinstall unless it starts with installkernel). */
  setup: (r: TestRoot) => string[];
  message?: RegExp;
}

const add = (r: TestRoot, ...rest: string[]) => ['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', ...rest];
const file = (r: TestRoot, name: string, content: Buffer | string) => {
  const p = r.at(`/tmp/${name}`);
  mkdirSync(r.at('/tmp'), { recursive: true });
  writeFileSync(p, content);
  return p;
};

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
  { name: 'truncated bzImage', exit: 3, code: 'ENOTKERNEL', setup: (r) => add(r, V, file(r, 'trunc', readFileSync(kernel.image).subarray(0, 0x300))) },
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
  { name: 'unknown layout', exit: 3, code: 'ECONFIG', setup: (r) => ['add', '--root', r.root, '--layout', 'bogus', V, kernel.image], message: /unknown layout "bogus"/ },
  { name: 'unknown generator', exit: 3, code: 'ECONFIG', setup: (r) => ['add', '--root', r.root, '--initramfs', 'mkinitcpio', V, kernel.image], message: /unknown initramfs generator "mkinitcpio"/ },
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
      symlinkSync('/boot', r.boot);
      return add(r, V, kernel.image);
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
    name: 'modules dir missing for dracut',
    exit: 4,
    code: 'EPREFLIGHT',
    message: /dracut needs the modules/,
    setup: (r) => ['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut', V, kernel.image],
  },
  { name: 'staged kernel missing', exit: 3, code: 'ENOSTAGED', setup: (r) => add(r, V) },
  { name: 'prebuilt initrd missing', exit: 3, code: 'ENOINITRD', setup: (r) => ['add', '--root', r.root, '--layout', 'compat', '--initrd', r.at('/nothere.img'), V, kernel.image] },
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
  { name: 'inspect of a text file', exit: 3, code: 'ENOTKERNEL', setup: (r) => ['inspect', file(r, 'notes.txt', 'just some text\n'.repeat(100))] },
];

/** What the guarantee covers: the boot dir, and the staged kernel files in the neutral location. */
function state(r: TestRoot) {
  const staged = ['vmlinuz', 'System.map', 'config'].map((n) => existsSync(r.at(`/lib/modules/${V}/${n}`)));
  return { boot: snapshotTree(r.boot), staged };
}

async function runCase(args: string[]): Promise<CliResult> {
  return args[0] === 'installkernel' ? installkernel(args.slice(1)) : kinstall(args);
}

describe('hostile and broken inputs', () => {
  for (const c of cases) {
    it(`${c.name}: exit ${c.exit}, ${c.code}, nothing changed`, async () => {
      root = makeRoot({ modules: c.code === 'EPREFLIGHT' && c.name.includes('dracut') ? false : true });
      const args = c.setup(root);
      const before = state(root);
      const result = await runCase(args);
      const lines = result.stderr.split('\n').filter((l) => l.startsWith('kinstall: E'));
      expect(lines, result.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^kinstall: ${c.code}: \\S`));
      if (c.message) expect(lines[0]).toMatch(c.message);
      expect(result.exitCode).toBe(c.exit);
      expect(state(root)).toEqual(before);
    });
  }
});
