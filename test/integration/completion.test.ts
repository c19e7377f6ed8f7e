// The bash completion (completion/kinstall.bash), sourced in bash and called as readline would:
// COMP_WORDS and COMP_CWORD set, the function run, COMPREPLY read back. Versions for remove and
// verify come from the real `kinstall list` on the --root of the command line.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kinstall, kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { assertScratch, useScratchRoots, type TestRoot } from '../helpers/root.js';

const script = path.join(top, 'completion/kinstall.bash');
const V = testKernel().version;

const bin = mkdtempSync(path.join(os.tmpdir(), 'kinstall-bin-'));
symlinkSync(kinstallBin, path.join(bin, 'kinstall'));
afterAll(() => {
  assertScratch(bin);
  rmSync(bin, { recursive: true, force: true });
});

const newRoot = useScratchRoots();

/** COMPREPLY for a command line whose last word is the one being completed. */
async function complete(words: string[], options: { withKinstall?: boolean } = {}): Promise<string[]> {
  const fn = words[0] === 'installkernel' ? '_kinstall_installkernel' : '_kinstall';
  const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
  const program = `source '${script}'\nCOMP_WORDS=(${quoted})\nCOMP_CWORD=${words.length - 1}\n${fn}\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`;
  const PATH = options.withKinstall === false ? '/usr/sbin:/usr/bin:/sbin:/bin' : `${bin}:${process.env.PATH ?? ''}`;
  const result = await execa('bash', ['--norc', '-c', program], { env: { PATH }, reject: false });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout.split('\n').filter(Boolean).sort();
}

async function rootWithKernel(): Promise<TestRoot> {
  const r = newRoot();
  const added = await kinstall(['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', V, testKernel().image]);
  expect(added.exitCode, added.stderr).toBe(0);
  return r;
}

describe('bash completion', () => {
  it('commands, and commands by prefix', async () => {
    expect(await complete(['kinstall', ''])).toEqual([
      'add',
      'confirm',
      'help',
      'inspect',
      'list',
      'prune',
      'recover',
      'remove',
      'stage',
      'status',
      'verify',
    ]);
    expect(await complete(['kinstall', 're'])).toEqual(['recover', 'remove']);
    expect(await complete(['kinstall', 'help', 'v'])).toEqual(['verify']);
  });

  it("options, with each command's own", async () => {
    expect(await complete(['kinstall', 'remove', '--ke'])).toEqual(['--keep', '--keep-modules']);
    expect(await complete(['kinstall', 'add', '--ke'])).toEqual(['--keep']);
    expect(await complete(['kinstall', 'verify', '--ti'])).toEqual(['--timeout']);
    expect(await complete(['kinstall', 'add', '--tr'])).toEqual(['--try']);
    expect(await complete(['kinstall', 'list', '--tr'])).toEqual([]);
    expect(await complete(['kinstall', 'stage', '--b'])).toEqual(['--boot-dir', '--build-dir']);
    expect(await complete(['installkernel', '--a'])).toEqual(['--all']);
    expect(await complete(['installkernel', '--all', '--jo'])).toEqual(['--jobs']);
    expect(await complete(['installkernel', '--jobs', ''])).toEqual([]);
  });

  it('layouts and generators, after "--layout", "--layout=" as readline splits it, and "--layout=b" unsplit', async () => {
    expect(await complete(['kinstall', '--layout', ''])).toEqual([
      'auto',
      'bls',
      'compat',
      'efistub',
      'grub',
      'lilo',
      'systemd-boot',
      'uki',
    ]);
    expect(await complete(['kinstall', 'add', '--layout', '=', 'e'])).toEqual(['efistub']);
    expect(await complete(['kinstall', '--layout=b'])).toEqual(['bls']);
    expect(await complete(['kinstall', '--initramfs', ''])).toEqual(['auto', 'dracut', 'none']);
    expect(await complete(['installkernel', '--layout', 'gr'])).toEqual(['grub']);
  });

  it('--root completes directories', async () => {
    const r = newRoot();
    expect(await complete(['kinstall', '--root', `${r.root}/bo`])).toEqual([`${r.root}/boot`]);
  });

  it('remove and verify: the versions kinstall lists on the --root given; with no kinstall on PATH, the neutral location', async () => {
    const r = await rootWithKernel();
    // Tells the two sources apart: V is installed but no longer staged, 9.9.9 staged only.
    rmSync(r.at(`/lib/modules/${V}/vmlinuz`));
    mkdirSync(r.at('/lib/modules/9.9.9-staged-only'), { recursive: true });
    writeFileSync(r.at('/lib/modules/9.9.9-staged-only/vmlinuz'), '');
    expect(await complete(['kinstall', 'remove', '--root', r.root, ''])).toEqual([V]);
    expect(await complete(['kinstall', '--root', '=', r.root, 'verify', V.slice(0, 3)])).toEqual([V]);
    expect(await complete(['kinstall', 'confirm', '--root', r.root, ''])).toEqual([V]);
    expect(await complete(['kinstall', 'remove', '--root', r.root, V, ''])).toEqual([]);
    expect(await complete(['kinstall', 'remove', '--root', r.root, ''], { withKinstall: false })).toEqual(['9.9.9-staged-only']);
  });

  it('add and installkernel: the versions staged in <root>/lib/modules (those with a vmlinuz)', async () => {
    const r = await rootWithKernel();
    mkdirSync(r.at('/lib/modules/9.9.9-no-image'), { recursive: true });
    expect(await complete(['kinstall', 'add', '--root', r.root, ''])).toEqual([V]);
    expect(await complete(['installkernel', '--root', r.root, ''])).toEqual([V]);
  });
});
