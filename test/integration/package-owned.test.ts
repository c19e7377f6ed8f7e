// remove (and prune) never delete what a package manager owns: Gentoo's /var/db/pkg/*/*/CONTENTS and
// dpkg's /var/lib/dpkg/info/*.list, read under --root. The boot entries go, the owned files stay,
// and the log says which package holds them. A path the database lists but that is gone holds nothing.
import { existsSync, mkdirSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseContents, parseDpkgList } from '../../src/core/system/package-owned.js';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

const newRoot = useScratchRoots();

/** A root with the test kernel installed by compat (no initramfs), modules and neutral files in /lib/modules/V. */
async function installedRoot(): Promise<TestRoot> {
  const r = newRoot({ modules: true });
  const added = await kinstall(['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image]);
  expect(added.exitCode, added.stderr).toBe(0);
  return r;
}

function writeDb(r: TestRoot, file: string, text: string): void {
  mkdirSync(path.dirname(r.at(file)), { recursive: true });
  writeFileSync(r.at(file), text);
}

describe('package databases: the line formats', () => {
  it('CONTENTS: obj (a path with spaces), sym, dir, dev and fif give their paths; anything else is skipped', () => {
    const text = [
      `dir /lib/modules/${V}`,
      `obj /lib/modules/${V}/vmlinuz ${MD5} 1700000000`,
      `obj /usr/share/doc/a file with spaces.txt ${MD5} 1700000001`,
      `sym /lib/modules/${V}/build -> /usr/src/linux-${V} 1700000002`,
      'dev /dev/null-ish',
      'fif /run/a-fifo',
      'garbage line',
      '',
    ].join('\n');
    expect(parseContents(text)).toEqual([
      `/lib/modules/${V}`,
      `/lib/modules/${V}/vmlinuz`,
      '/usr/share/doc/a file with spaces.txt',
      `/lib/modules/${V}/build`,
      '/dev/null-ish',
      '/run/a-fifo',
    ]);
  });

  it('a dpkg .list: one path a line, without "/."', () => {
    expect(parseDpkgList(`/.\n/boot\n/boot/vmlinuz-${V}\n/usr/lib/modules/${V}\n`)).toEqual([
      '/boot',
      `/boot/vmlinuz-${V}`,
      `/usr/lib/modules/${V}`,
    ]);
  });
});

describe('remove leaves what a package manager owns', () => {
  it('Gentoo: /lib/modules/V listed in CONTENTS stays, the boot files go, and the log names the package', async () => {
    const r = await installedRoot();
    writeDb(
      r,
      `/var/db/pkg/sys-kernel/gentoo-kernel-bin-${V}/CONTENTS`,
      [
        'dir /lib',
        'dir /lib/modules',
        `dir /lib/modules/${V}`,
        `obj /lib/modules/${V}/vmlinuz ${MD5} 1700000000`,
        `obj /lib/modules/${V}/System.map ${MD5} 1700000000`,
        `obj /lib/modules/${V}/config ${MD5} 1700000000`,
        '',
      ].join('\n'),
    );
    writeDb(r, '/var/db/pkg/app-misc/unrelated-1.0/CONTENTS', `obj /usr/bin/unrelated ${MD5} 1700000000\n`);
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readdirSync(r.boot).filter((n) => n.includes(V))).toEqual([]);
    for (const name of ['vmlinuz', 'System.map', 'config', 'modules.dep'])
      expect(existsSync(r.at(`/lib/modules/${V}/${name}`)), name).toBe(true);
    expect(result.stderr).toContain(
      `leaving /lib/modules/${V}: 4 path(s) there belong to sys-kernel/gentoo-kernel-bin-${V} (portage); removing the package deletes them`,
    );
    expect(result.stderr).not.toContain('unrelated');
  });

  it('Debian, merged /usr: the .list names /usr/lib/modules/V and /boot/vmlinuz-V; both stay, the rest of the boot files go', async () => {
    const r = await installedRoot();
    mkdirSync(r.at('/usr'), { recursive: true });
    renameSync(r.at('/lib'), r.at('/usr/lib'));
    symlinkSync('usr/lib', r.at('/lib'));
    writeDb(
      r,
      `/var/lib/dpkg/info/linux-image-${V}.list`,
      `/.\n/boot\n/boot/vmlinuz-${V}\n/usr/lib/modules/${V}\n/usr/lib/modules/${V}/kernel\n`,
    );
    const dry = await kinstall(['remove', '--dry-run', '--root', r.root, '--layout', 'compat', V]);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).not.toContain(`vmlinuz-${V}`);
    expect(dry.stdout).toContain(`System.map-${V}`);
    expect(dry.stderr).not.toContain('then delete');
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readdirSync(r.boot).filter((n) => n.includes(V))).toEqual([`vmlinuz-${V}`]);
    expect(existsSync(r.at(`/usr/lib/modules/${V}/kernel`))).toBe(true);
    expect(result.stderr).toContain(`leaving /boot/vmlinuz-${V}: 1 path(s) there belong to linux-image-${V} (dpkg)`);
    expect(result.stderr).toMatch(
      new RegExp(
        `leaving /lib/modules/${V.replace(/\./g, '\\.')}: [0-9]+ path\\(s\\) there belong to linux-image-${V.replace(/\./g, '\\.')} \\(dpkg\\)`,
      ),
    );
  });

  it('a package whose files are already gone (portage postrm) holds nothing: the leftover tree is deleted', async () => {
    const r = await installedRoot();
    writeDb(r, `/var/db/pkg/sys-kernel/custom-kernel-bin-1/CONTENTS`, `obj /lib/modules/${V}/kernel/gone.ko ${MD5} 1700000000\n`);
    const result = await kinstall(['remove', '--root', r.root, '--layout', 'compat', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(existsSync(r.at(`/lib/modules/${V}`))).toBe(false);
    expect(result.stderr).not.toContain('leaving');
  });

  it('prune goes through the same rule: the pruned kernel leaves its owned modules', async () => {
    const r = await installedRoot();
    const other = '5.10.0-old';
    const added = await kinstall([
      'add',
      '--force',
      '--root',
      r.root,
      '--layout',
      'compat',
      '--initramfs',
      'none',
      other,
      kernel.image,
    ]);
    expect(added.exitCode, added.stderr).toBe(0);
    writeDb(
      r,
      `/var/db/pkg/sys-kernel/gentoo-kernel-${other}/CONTENTS`,
      `dir /lib/modules/${other}\nobj /lib/modules/${other}/vmlinuz ${MD5} 1700000000\n`,
    );
    const before = snapshotTree(r.at(`/lib/modules/${other}`));
    const result = await kinstall(['prune', '--keep', '1', '--root', r.root, '--layout', 'compat']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`removed ${other}`);
    expect(existsSync(r.at(`/boot/vmlinuz-${other}`))).toBe(false);
    expect(snapshotTree(r.at(`/lib/modules/${other}`))).toEqual(before);
  });
});
