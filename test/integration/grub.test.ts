// The grub layout with the real grub-mkconfig from Debian's grub2-common, run by kinstall in a
// chroot of the test root. The root borrows the host's /usr in a private mount namespace, /boot is
// its own (tmpfs) filesystem as on a real machine, and only grub-probe is a stand-in.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { grubCfgVersions, kinstallInNamespace, leakedMounts, prepareGrubRoot } from '../helpers/grub-namespace.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
let root: TestRoot;

/** A root that looks like an installed Debian to grub-mkconfig: its scripts, its defaults, /boot/grub. */
const grubRoot = (): TestRoot =>
  prepareGrubRoot(
    newRoot(),
    'GRUB_DEFAULT=0\nGRUB_TIMEOUT=3\nGRUB_DISTRIBUTOR=Kinstall\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n',
  );

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('grub layout with the real grub-mkconfig', () => {
  it('regenerates grub.cfg with entries for the new kernel and its initramfs; the old one kept as grub.cfg~', async () => {
    root = grubRoot();
    const oldCfg = '# the grub.cfg from before\n';
    writeFileSync(root.at('/boot/grub/grub.cfg'), oldCfg);
    const initrd = root.at('/prebuilt-initrd.img');
    writeFileSync(initrd, execFileSync('sh', ['-c', 'cd / && echo etc | cpio -o -H newc 2>/dev/null']));
    const result = await kinstallInNamespace(root, [
      'add',
      '--root',
      root.root,
      '--layout',
      'grub',
      '--initrd',
      initrd,
      V,
      kernel.image,
    ]);
    expect(result.stderr).toContain(`installed ${V} (grub)`);
    expect(result.exitCode).toBe(0);
    expect(leakedMounts(root)).toEqual([]);

    const cfgPath = root.at('/boot/grub/grub.cfg');
    execFileSync('grub-script-check', [cfgPath]);
    const cfg = readFileSync(cfgPath, 'utf8');
    expect(cfg).toMatch(new RegExp(`menuentry 'Kinstall GNU/Linux, with Linux ${escape(V)}'`));
    expect(cfg).toMatch(new RegExp(`^\\s*linux\\s+/vmlinuz-${escape(V)} root=/dev/vda1 ro console=ttyS0 quiet$`, 'm'));
    expect(cfg).toMatch(new RegExp(`^\\s*initrd\\s+/initramfs-${escape(V)}\\.img$`, 'm'));
    expect(readFileSync(`${cfgPath}~`, 'utf8')).toBe(oldCfg);
    expect(readdirSync(root.at('/boot/grub')).sort()).toEqual(['grub.cfg', 'grub.cfg~']);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(readFileSync(root.at(`/boot/initramfs-${V}.img`)).equals(readFileSync(initrd))).toBe(true);

    // The real grub-mkconfig asked the stand-in about / and /boot; the log proves it ran.
    const probes = readFileSync(root.at('/var/log/grub-probe.fake.log'), 'utf8');
    expect(probes).toContain('--target=device /boot');
    expect(probes).toContain('--target=fs_uuid');
  });

  it('a failing grub.d script: exit 5, the boot dir restored byte for byte', async () => {
    root = grubRoot();
    writeFileSync(root.at('/boot/grub/grub.cfg'), '# the grub.cfg from before\n');
    writeFileSync(root.at(`/boot/vmlinuz-${V}`), 'an older build of the same version\n');
    chmodSync(root.at(`/boot/vmlinuz-${V}`), 0o644);
    writeFileSync(root.at('/etc/grub.d/10_linux'), '#!/bin/sh\necho "10_linux: broken on purpose" >&2\nexit 1\n');
    const before = snapshotTree(root.boot);
    const result = await kinstallInNamespace(root, [
      'add',
      '--root',
      root.root,
      '--layout',
      'grub',
      '--initramfs',
      'none',
      V,
      kernel.image,
    ]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: .*rolled back/m);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(leakedMounts(root)).toEqual([]);
  });

  it('a broken /etc/default/grub: exit 5 naming grub-mkconfig and the syntax error, nothing changed', async () => {
    root = grubRoot();
    writeFileSync(root.at('/etc/default/grub'), 'GRUB_TIMEOUT=3\nif then fi\n');
    const before = snapshotTree(root.boot);
    const result = await kinstallInNamespace(root, [
      'add',
      '--root',
      root.root,
      '--layout',
      'grub',
      '--initramfs',
      'none',
      V,
      kernel.image,
    ]);
    expect(result.exitCode).toBe(5);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: ETOOL: grub-mkconfig \\(in chroot ${escape(root.root)}\\) failed \\(exit code 2\\); rolled back \\d+ change\\(s\\), nothing was changed$`,
        'm',
      ),
    );
    expect(result.stderr).toContain('/etc/default/grub: Syntax error: "then" unexpected');
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(existsSync(root.at(`/boot/vmlinuz-${V}`))).toBe(false);
    expect(leakedMounts(root)).toEqual([]);
  });

  it('a run killed after grub-mkconfig wrote the new grub.cfg: recover puts grub.cfg and every file back byte for byte', async () => {
    root = grubRoot();
    const OLD = '5.10.0-kinstall-old';
    writeFileSync(root.at(`/boot/vmlinuz-${OLD}`), 'an older kernel\n');
    writeFileSync(root.at(`/boot/initramfs-${OLD}.img`), 'its initramfs\n');
    // A hand-edited grub.cfg: grub-mkconfig would never write this, so only the journal can bring it back.
    writeFileSync(root.at('/boot/grub/grub.cfg'), '# the grub.cfg from before\n');
    const initrd = root.at('/prebuilt-initrd.img');
    writeFileSync(initrd, execFileSync('sh', ['-c', 'cd / && echo etc | cpio -o -H newc 2>/dev/null']));
    const before = snapshotTree(root.boot);
    const cfgPath = root.at('/boot/grub/grub.cfg');

    const add = ['add', '--root', root.root, '--layout', 'grub', '--initrd', initrd, V, kernel.image];
    const killed = await kinstallInNamespace(root, add, { KINSTALL_TEST_CRASH_AFTER: 'activated' });
    expect(killed.exitCode, killed.stderr).toBe(128 + 9);
    // grub-mkconfig had run and its grub.cfg was in place when the run died.
    expect(grubCfgVersions(readFileSync(cfgPath, 'utf8'))).toEqual([OLD, V].sort());
    expect(existsSync(root.at('/var/lib/kinstall/journal.json'))).toBe(true);

    // grub.cfg went through the transaction like every other file: recovery restores the old one
    // from the journal (no new grub-mkconfig run, which could fail or differ), and grub-mkconfig's
    // own leftovers are swept.
    const recovered = await kinstallInNamespace(root, ['recover', '--root', root.root]);
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(leakedMounts(root)).toEqual([]);
    expect(snapshotTree(root.boot)).toEqual(before);
    expect(readFileSync(cfgPath, 'utf8')).toBe('# the grub.cfg from before\n');
    expect(existsSync(root.at(`/boot/vmlinuz-${V}`))).toBe(false);
    expect(existsSync(root.at('/var/lib/kinstall/journal.json'))).toBe(false);
    expect(readdirSync(root.at('/boot/grub'))).toEqual(['grub.cfg']);

    // The next install runs grub-mkconfig afresh and lists both kernels.
    const again = await kinstallInNamespace(root, add);
    expect(again.exitCode, again.stderr).toBe(0);
    execFileSync('grub-script-check', [cfgPath]);
    expect(grubCfgVersions(readFileSync(cfgPath, 'utf8'))).toEqual([OLD, V].sort());
  });
});
