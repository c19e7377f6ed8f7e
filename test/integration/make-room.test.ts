// --make-room on a small ESP (a tmpfs of a few MiB in a private mount namespace) holding three
// older kernels: without it the error says how many bytes are missing and what --make-room would
// remove; with it the oldest kernels go in the install's transaction, and a failure after that
// puts them back too.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { kinstall, kinstallBin, top, type CliResult } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
/** Older kernels, oldest first; each is an efistub image the size of the test kernel. */
const OLD = ['5.10.0-1-old', '5.10.0-2-old', '5.10.0-3-old'];
/**
 * Holds the three old kernels (3 × 13.5 MiB) and 2.4 MiB more: the new kernel (13.5 MiB plus the
 * 4 MiB margin) fits only once the two oldest are gone; the newest old one is never removed.
 */
const ESP_SIZE = '43m';

const newRoot = useScratchRoots();

/** A root whose ESP (/boot/efi) will hold the old kernels, each with a modules dir in the neutral location. */
function crowdedRoot(): TestRoot {
  const r = newRoot({
    config: { efistub: { efibootmgr: path.join(top, 'test/fakes/efibootmgr'), efivars: true, disk: '/dev/vda', part: 1 } },
  });
  mkdirSync(r.at('/boot/efi/EFI/Gentoo'), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro\n');
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
  writeFileSync(r.at('/var/fake/efi.json'), JSON.stringify({ bootCurrent: '0000', timeout: 1, bootOrder: [], entries: {} }));
  for (const version of OLD) {
    copyFileSync(kernel.image, r.at(`/boot/efi/EFI/Gentoo/vmlinuz-${version}.efi`));
    mkdirSync(r.at(`/lib/modules/${version}`));
    copyFileSync(kernel.config, r.at(`/lib/modules/${version}/config`));
  }
  return r;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * kinstall add (efistub, no initramfs) with the ESP on a tmpfs of ESP_SIZE, in a private mount
 * namespace: what the ESP held goes in first, and what it holds at the end comes back out.
 */
async function addOnSmallEsp(r: TestRoot, extra: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const esp = quote(r.at('/boot/efi'));
  const stash = quote(r.at('/esp-stash'));
  const args = ['add', '--root', r.root, '--layout', 'efistub', '--initramfs', 'none', ...extra, V, kernel.image];
  const script = [
    'set -e',
    `mkdir ${stash} && cp -a ${esp}/. ${stash}/`,
    `mount -t tmpfs -o size=${ESP_SIZE},mode=0755 tmpfs ${esp}`,
    `cp -a ${stash}/. ${esp}/ && rm -rf ${stash} && mkdir ${stash}`,
    'set +e',
    `node ${quote(kinstallBin)} ${args.map(quote).join(' ')}`,
    'status=$?',
    'set -e',
    `cp -a ${esp}/. ${stash}/`,
    `umount ${esp}`,
    `rm -rf ${esp} && mv ${stash} ${esp}`,
    'exit $status',
  ].join('\n');
  const result = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    reject: false,
    stdin: 'ignore',
    env: { EFIBOOTMGR_FAKE_STATE: r.at('/var/fake/efi.json'), ...env },
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const espFiles = (r: TestRoot) => Object.keys(snapshotTree(r.at('/boot/efi/EFI/Gentoo'))).sort();

describe('a full ESP', () => {
  it('without --make-room: refused in preflight, naming the bytes missing and the kernels --make-room would remove', async () => {
    const root = crowdedRoot();
    const before = snapshotTree(root.at('/boot/efi'));
    const result = await addOnSmallEsp(root, []);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(
      new RegExp(
        `^kinstall: EPREFLIGHT: 1 preflight check\\(s\\) failed: .*/boot/efi/EFI/Gentoo has [0-9.]+ MiB free but the install needs [0-9.]+ MiB \\(\\d+ bytes missing\\); kinstall add --make-room would remove ${OLD[0]}, ${OLD[1]} \\(oldest first\\)`,
        'm',
      ),
    );
    expect(snapshotTree(root.at('/boot/efi'))).toEqual(before);
    for (const version of OLD) expect(existsSync(root.at(`/lib/modules/${version}/config`))).toBe(true);
  });

  it('with --make-room: the two oldest kernels go, the newest old one stays, the new kernel is installed', async () => {
    const root = crowdedRoot();
    const result = await addOnSmallEsp(root, ['--make-room', '--json', '--verbose']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      new RegExp(`making room \\(\\d+ bytes on .*/boot/efi/EFI/Gentoo missing\\): removing ${OLD[0]}, ${OLD[1]}, oldest first`),
    );
    expect((JSON.parse(result.stdout) as { madeRoom: string[] }).madeRoom).toEqual([OLD[0], OLD[1]]);
    expect(espFiles(root)).toEqual([`vmlinuz-${OLD[2]}.efi`, `vmlinuz-${V}.efi`]);
    expect(readFileSync(root.at(`/boot/efi/EFI/Gentoo/vmlinuz-${V}.efi`)).equals(readFileSync(kernel.image))).toBe(true);
    // The removals are whole removals: their neutral location too, and their history lines.
    expect(existsSync(root.at(`/lib/modules/${OLD[0]}`))).toBe(false);
    expect(existsSync(root.at(`/lib/modules/${OLD[1]}`))).toBe(false);
    expect(existsSync(root.at(`/lib/modules/${OLD[2]}/config`))).toBe(true);
    const history = readFileSync(root.at('/var/lib/kinstall/history.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; version: string });
    expect(history.map((h) => `${h.action} ${h.version}`)).toEqual([`remove ${OLD[0]}`, `remove ${OLD[1]}`, `install ${V}`]);
    expect(existsSync(root.at('/var/lib/kinstall/journal.json'))).toBe(false);
  });

  it('a failure after making room (the firmware refuses the new entry) puts the removed kernels back too', async () => {
    const root = crowdedRoot();
    const before = snapshotTree(root.at('/boot/efi'));
    const modulesBefore = OLD.map((v) => snapshotTree(root.at(`/lib/modules/${v}`) ?? ''));
    const result = await addOnSmallEsp(root, ['--make-room'], { EFIBOOTMGR_FAKE_FAIL: '--create' });
    expect(result.exitCode, result.stderr).toBe(5);
    expect(result.stderr).toMatch(/removing 5\.10\.0-1-old, 5\.10\.0-2-old, oldest first/);
    expect(result.stderr).toMatch(/^kinstall: ETOOL: efibootmgr failed .*rolled back \d+ change\(s\), nothing was changed$/m);
    expect(snapshotTree(root.at('/boot/efi'))).toEqual(before);
    expect(OLD.map((v) => snapshotTree(root.at(`/lib/modules/${v}`) ?? ''))).toEqual(modulesBefore);
    expect(existsSync(root.at('/var/lib/kinstall/journal.json'))).toBe(false);
    expect(readdirSync(root.at('/var/lib/kinstall/spill'))).toEqual([]);
  });

  it('a crash after making room: recovery copies the removed kernels back from the spill dir', async () => {
    const root = crowdedRoot();
    const before = snapshotTree(root.at('/boot/efi'));
    const crashed = await addOnSmallEsp(root, ['--make-room'], { KINSTALL_TEST_CRASH_AFTER: 'step:activate' });
    expect(crashed.exitCode, crashed.stderr).toBe(137);
    // The ESP as the crash left it: the two oldest gone (their bytes in the spill dir), the new kernel placed.
    expect(espFiles(root)).toEqual([`vmlinuz-${OLD[2]}.efi`, `vmlinuz-${V}.efi`]);
    expect(readdirSync(root.at('/var/lib/kinstall/spill'))).toHaveLength(2);
    const recovered = await kinstall(['recover', '--root', root.root], {
      env: { EFIBOOTMGR_FAKE_STATE: root.at('/var/fake/efi.json') },
    });
    expect(recovered.exitCode, recovered.stderr).toBe(0);
    expect(snapshotTree(root.at('/boot/efi'))).toEqual(before);
    expect(readdirSync(root.at('/var/lib/kinstall/spill'))).toEqual([]);
  });
});
