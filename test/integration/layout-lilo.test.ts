// kinstall add/remove with the lilo layout under a temporary root: compat files, the version-less
// links, and test/fakes/lilo (run as `lilo -r ROOT`) writing a map that records what it booted.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { kinstall, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';
import { initramfsFixture } from '../helpers/initramfs.js';

const kernel = testKernel();
const V = kernel.version;
const V2 = `${V}-second`;
const FAKE = path.join(top, 'test/fakes/lilo');
const LILO_CONF = `boot=/dev/vda
map=/boot/map
image=/boot/vmlinuz
    label=linux
    initrd=/boot/initramfs.img
    read-only
    root=/dev/vda2
image=/boot/vmlinuz.old
    label=linux.old
    initrd=/boot/initramfs.img.old
    optional
    read-only
    root=/dev/vda2
`;

const newRoot = useScratchRoots();
let root: TestRoot;

/** A root whose config points lilo at the fake; conf null leaves /etc/lilo.conf out. */
function liloRoot(conf: string | null = LILO_CONF): TestRoot {
  const r = newRoot({ modules: true, config: { lilo: { command: FAKE } } });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  if (conf !== null) writeFileSync(r.at('/etc/lilo.conf'), conf);
  for (const v of [V, V2]) writeFileSync(r.at(`/var/fake/initrd-${v}`), initramfsFixture(`prebuilt initramfs for ${v}\n`));
  return r;
}

const env = (r: TestRoot, extra: Record<string, string> = {}) => ({ LILO_FAKE_LOG: r.at('/var/fake/lilo.log'), ...extra });
const calls = (r: TestRoot) =>
  readFileSync(r.at('/var/fake/lilo.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as string[]);
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const addPrebuilt = (r: TestRoot, version: string, extraEnv: Record<string, string> = {}) =>
  kinstall(['add', '--force', '--root', r.root, '--initrd', r.at(`/var/fake/initrd-${version}`), version, kernel.image], {
    env: env(r, extraEnv),
  });

describe('lilo layout', () => {
  it('is chosen by auto, installs compat files, the links and a real dracut initramfs, then runs lilo -t and lilo -r ROOT', async () => {
    root = liloRoot();
    const result = await kinstall(['add', '--root', root.root, '--initramfs', 'dracut', V, kernel.image], { env: env(root) });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`layout=auto: chose lilo: ${root.at('/etc/lilo.conf')} exists`);
    const tree = snapshotTree(root.boot);
    expect(Object.keys(tree).sort()).toEqual(
      [`System.map-${V}`, `config-${V}`, 'initramfs-' + V + '.img', 'initramfs.img', 'map', `vmlinuz-${V}`, 'vmlinuz'].sort(),
    );
    expect(tree.vmlinuz).toBe(`link vmlinuz-${V}`);
    expect(tree['initramfs.img']).toBe(`link initramfs-${V}.img`);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
    expect(execFileSync('lsinitrd', [root.at(`/boot/initramfs-${V}.img`)], { encoding: 'utf8' })).toContain(
      `usr/lib/modules/${V}/kernel/drivers/block/virtio_blk.ko`,
    );
    expect(calls(root)).toEqual([
      ['-t', '-r', root.root, '-C', '/etc/lilo.conf'],
      ['-r', root.root, '-C', '/etc/lilo.conf'],
    ]);
    expect(readFileSync(root.at('/boot/map'), 'utf8')).toBe(
      [
        'label linux',
        `  image /boot/vmlinuz -> /boot/vmlinuz-${V} ${sha(kernel.image)}`,
        `  initrd /boot/initramfs.img -> /boot/initramfs-${V}.img ${sha(root.at(`/boot/initramfs-${V}.img`))}`,
        '',
      ].join('\n'),
    );
  });

  it('keeps vmlinuz on the newest install and vmlinuz.old on the one before; removing the newest restores the tree', async () => {
    root = liloRoot();
    expect((await addPrebuilt(root, V)).exitCode).toBe(0);
    const afterFirst = snapshotTree(root.boot);
    const second = await addPrebuilt(root, V2);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(readlinkSync(root.at('/boot/vmlinuz'))).toBe(`vmlinuz-${V2}`);
    expect(readlinkSync(root.at('/boot/vmlinuz.old'))).toBe(`vmlinuz-${V}`);
    expect(readlinkSync(root.at('/boot/initramfs.img'))).toBe(`initramfs-${V2}.img`);
    expect(readlinkSync(root.at('/boot/initramfs.img.old'))).toBe(`initramfs-${V}.img`);
    expect(readFileSync(root.at(`/boot/initramfs-${V2}.img`))).toEqual(initramfsFixture(`prebuilt initramfs for ${V2}\n`));
    const map = readFileSync(root.at('/boot/map'), 'utf8');
    expect(map).toContain(`label linux\n  image /boot/vmlinuz -> /boot/vmlinuz-${V2} `);
    expect(map).toContain(`label linux.old\n  image /boot/vmlinuz.old -> /boot/vmlinuz-${V} `);
    const removed = await kinstall(['remove', '--root', root.root, V2], { env: env(root) });
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(snapshotTree(root.boot)).toEqual(afterFirst);
    expect(calls(root).at(-1)).toEqual(['-r', root.root, '-C', '/etc/lilo.conf']);
  });

  // Invocations 1-2 were the first install; 3 is the second install's -t run, 4 its real run.
  it.each([
    ['the real run', '4', [['-t'], [], []]],
    ['the -t run', '3', [['-t'], []]],
  ])(
    'a failing lilo (%s) rolls the files and links back and runs lilo again on the restored state',
    async (_name, failing, runs) => {
      root = liloRoot();
      expect((await addPrebuilt(root, V)).exitCode).toBe(0);
      const before = snapshotTree(root.boot);
      const result = await addPrebuilt(root, V2, { LILO_FAKE_FAIL: failing });
      expect(result.exitCode).toBe(5);
      expect(result.stderr).toMatch(
        /^kinstall: ETOOL: lilo failed \(exit code 1\); rolled back \d+ change\(s\), nothing was changed$/m,
      );
      expect(result.stderr).toContain('running');
      expect(snapshotTree(root.boot)).toEqual(before);
      expect(calls(root).slice(2)).toEqual(
        runs.map((extra) => [...extra, '-r', (root as TestRoot).root, '-C', '/etc/lilo.conf']),
      );
    },
  );

  it('a missing lilo.conf is a preflight error (exit 4) showing an example section', async () => {
    root = liloRoot(null);
    const before = snapshotTree(root.root);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'lilo', '--initramfs', 'none', V, kernel.image], {
      env: env(root),
    });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: EPREFLIGHT: 1 preflight check\\(s\\) failed: ${root.at('/etc/lilo.conf')} does not exist: .* \\(example below\\)$`,
        'm',
      ),
    );
    expect(result.stderr).toContain(
      '    for example:\n      boot=/dev/sda\n      prompt\n      timeout=50\n      default=linux\n      image=/boot/vmlinuz\n          label=linux\n          initrd=/boot/initramfs.img\n',
    );
    expect(result.stderr).toContain('      image=/boot/vmlinuz.old\n');
    expect(snapshotTree(root.root)).toEqual(before);
    // The example, pasted as it is shown, is a lilo.conf that works.
    const example = (result.stderr.split('    for example:\n')[1] ?? '').split(/\n(?! {6})/)[0] ?? '';
    writeFileSync(root.at('/etc/lilo.conf'), example.replace(/^ {6}/gm, ''));
    const retry = await addPrebuilt(root, V);
    expect(retry.exitCode, retry.stderr).toBe(0);
  });

  it('a lilo.conf that does not boot /boot/vmlinuz is a preflight error with the example', async () => {
    root = liloRoot('boot=/dev/vda\nimage=/boot/bzImage\n  label=linux\n');
    const before = snapshotTree(root.root);
    const result = await kinstall(['add', '--root', root.root, '--initramfs', 'none', V, kernel.image], { env: env(root) });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toContain(`${root.at('/etc/lilo.conf')} has no image=/boot/vmlinuz`);
    expect(result.stderr).toContain('      image=/boot/vmlinuz\n');
    expect(snapshotTree(root.root)).toEqual(before);
  });

  it('removing the only kernel lilo can boot is refused', async () => {
    root = liloRoot();
    expect((await addPrebuilt(root, V)).exitCode).toBe(0);
    const before = snapshotTree(root.root);
    const result = await kinstall(['remove', '--root', root.root, V], { env: env(root) });
    expect(result.exitCode).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EPREFLIGHT: .*refusing to remove .*lilo would have nothing to boot/m);
    expect(snapshotTree(root.root)).toEqual(before);
  });
});

describe('test/fakes/lilo rejects what lilo rejects', () => {
  it('a missing image=, a missing config, and running without a log', async () => {
    root = liloRoot();
    const run = (args: string[], e: Record<string, string> = env(root as TestRoot)) =>
      execa(FAKE, args, { env: e, reject: false });
    const missingImage = await run(['-r', root.root]);
    expect(missingImage.exitCode).toBe(1);
    expect(missingImage.stderr).toBe('Fatal: open /boot/vmlinuz: No such file or directory');
    rmSync(root.at('/etc/lilo.conf'));
    expect((await run(['-t', '-r', root.root])).stderr).toBe('Fatal: open /etc/lilo.conf: No such file or directory');
    expect((await run(['-x'])).exitCode).toBe(1);
    expect((await run(['-t'], { LILO_FAKE_LOG: '' })).exitCode).toBe(2);
  });
});
