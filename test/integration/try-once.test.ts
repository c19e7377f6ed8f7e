// Try-once installs (`add --try`), `kinstall confirm` and `kinstall status` on the bls and uki
// layouts (boot counting in the file names), compat's refusal, the tryOnce setting and the confirm
// units, under a temporary --root with the real kernel. Boots across reboots: test/boot/try-once*.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { installkernel, kinstall, kinstallBin, top } from '../helpers/cli.js';
import { initramfsFixture } from '../helpers/initramfs.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
/** The old kernel is the real version; the trial one the same image installed as a newer version. */
const OLD = kernel.version;
const NEW = '6.1.99-trial';
const TOKEN = '0123456789abcdef0123456789abcdef';
const newRoot = useScratchRoots();

/** A root with the prebuilt initramfs every install here uses (no dracut: the trial is the subject). */
function plainRoot(config: Record<string, unknown> = {}): TestRoot {
  const r = newRoot({ config });
  mkdirSync(r.at('/var/fake'), { recursive: true });
  writeFileSync(r.at('/var/fake/initrd'), initramfsFixture('try-once'));
  return r;
}

function espRoot(config: Record<string, unknown> = {}): TestRoot {
  const r = plainRoot(config);
  mkdirSync(r.at('/efi/EFI/systemd'), { recursive: true });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  writeFileSync(r.at('/efi/loader/loader.conf'), 'timeout 3\n');
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
  writeFileSync(r.at('/etc/machine-id'), `${TOKEN}\n`);
  writeFileSync(r.at('/etc/os-release'), 'NAME=Gentoo\nID=gentoo\nPRETTY_NAME="Gentoo Linux"\n');
  return r;
}

const add = (r: TestRoot, version: string, ...extra: string[]) =>
  kinstall(['add', '--root', r.root, '--force', '--initrd', r.at('/var/fake/initrd'), ...extra, version, kernel.image]);
const entries = (r: TestRoot) => readdirSync(r.at('/efi/loader/entries')).sort();
/** File names in readdir's sorted order, as `entries` lists them. */
const names = (...list: string[]) => list.sort();
const record = (r: TestRoot) => JSON.parse(readFileSync(r.at('/var/lib/kinstall/trial.json'), 'utf8')) as Record<string, unknown>;

interface Status {
  version: string;
  layout: string;
  default: boolean;
  trial: string | null;
  state: string;
}
async function status(r: TestRoot, ...extra: string[]): Promise<{ kernels: Status[]; stderr: string }> {
  const result = await kinstall(['status', '--json', '--verbose', '--root', r.root, ...extra]);
  expect(result.exitCode, result.stderr).toBe(0);
  return { kernels: JSON.parse(result.stdout) as Status[], stderr: result.stderr };
}
const stateOf = (kernels: Status[], version: string) => kernels.find((k) => k.version === version);

/** What systemd-boot does when it starts a counted entry: one try spent. */
function startCounted(r: TestRoot, dir: string, version: string, ext: string): void {
  renameSync(r.at(`${dir}/${TOKEN}-${version}+1${ext}`), r.at(`${dir}/${TOKEN}-${version}+0-1${ext}`));
}

describe('add --try on bls: boot counting with one try', () => {
  it('the trial entry is +1, the old one stays the default; status and list show it; the record names both', async () => {
    const r = espRoot();
    expect((await add(r, OLD, '--layout', 'bls')).exitCode).toBe(0);
    const trial = await add(r, NEW, '--layout', 'bls', '--try');
    expect(trial.exitCode, trial.stderr).toBe(0);
    expect(trial.stderr).toContain(`as a trial (${OLD} stays the default until kinstall confirm)`);
    expect(trial.stderr).toContain('no confirm unit is enabled');
    expect(entries(r)).toEqual(names(`${TOKEN}-${NEW}+1.conf`, `${TOKEN}-${OLD}.conf`));
    expect(record(r)).toMatchObject({ version: NEW, layout: 'bls', previous: OLD });
    const { kernels } = await status(r);
    expect(stateOf(kernels, NEW)).toMatchObject({ trial: 'pending', default: false, state: 'trial pending' });
    expect(stateOf(kernels, OLD)).toMatchObject({ trial: null, default: true, state: 'default' });
    const list = await kinstall(['list', '--root', r.root]);
    expect(list.stdout).toMatch(new RegExp(`^${NEW}\\tbls\\t\\d+\\ttrial-pending\\t`, 'm'));
    expect(list.stdout).toMatch(new RegExp(`^${OLD.replace(/\./g, '\\.')}\\tbls\\t\\d+\\tdefault\\t`, 'm'));
    const history = readFileSync(r.at('/var/lib/kinstall/history.jsonl'), 'utf8').trim().split('\n');
    expect(JSON.parse(history.at(-1) ?? '{}')).toMatchObject({ action: 'install', version: NEW, trial: { previous: OLD } });
  });

  it('a spent try is a failed trial: warned once, by the first command; confirm VERSION blesses it; a second confirm does nothing', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    await add(r, NEW, '--layout', 'bls', '--try');
    startCounted(r, '/efi/loader/entries', NEW, '.conf');
    const first = await status(r);
    expect(stateOf(first.kernels, NEW)).toMatchObject({ trial: 'failed', state: 'trial failed (fell back)' });
    expect(first.stderr).toContain(`the trial of ${NEW} failed: it did not reach kinstall confirm, and ${OLD} boots instead`);
    expect(first.stderr).toContain(`${NEW} stays installed but is not the default`);
    const second = await status(r);
    expect(stateOf(second.kernels, NEW)?.trial).toBe('failed');
    expect(second.stderr).not.toContain('the trial of');

    const noVersion = await kinstall(['confirm', '--root', r.root]);
    expect(noVersion.exitCode).toBe(2);
    expect(noVersion.stderr).toContain('confirm needs the VERSION that booted');

    const before = readFileSync(r.at(`/efi/loader/entries/${TOKEN}-${NEW}+0-1.conf`), 'utf8');
    const confirmed = await kinstall(['confirm', '--root', r.root, NEW]);
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    expect(confirmed.stdout).toBe(`confirmed ${NEW} (bls)`);
    expect(entries(r)).toEqual(names(`${TOKEN}-${NEW}.conf`, `${TOKEN}-${OLD}.conf`));
    expect(readFileSync(r.at(`/efi/loader/entries/${TOKEN}-${NEW}.conf`), 'utf8')).toBe(before);
    const after = await status(r);
    expect(stateOf(after.kernels, NEW)).toMatchObject({ trial: 'confirmed', default: true, state: 'confirmed, default' });
    expect(stateOf(after.kernels, OLD)).toMatchObject({ default: false, state: 'installed' });
    expect(record(r)).toMatchObject({ version: NEW, confirmed: expect.any(String) });

    const again = await kinstall(['confirm', '--root', r.root, NEW]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe(`${NEW}: not on trial; nothing to confirm`);
    const unknown = await kinstall(['confirm', '--root', r.root, '9.9.9']);
    expect(unknown.exitCode).toBe(0);
    expect(unknown.stdout).toBe('9.9.9: not installed in any layout kinstall manages; nothing to confirm');
    const history = readFileSync(r.at('/var/lib/kinstall/history.jsonl'), 'utf8').trim().split('\n');
    expect(history.filter((l) => l.includes('"action":"confirm"'))).toHaveLength(1);
  });

  it('removing the trial kernel removes its record; removing another kernel keeps it', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    await add(r, '6.1.50-other', '--layout', 'bls');
    await add(r, NEW, '--layout', 'bls', '--try');
    expect((await kinstall(['remove', '--root', r.root, '6.1.50-other'])).exitCode).toBe(0);
    expect(record(r)).toMatchObject({ version: NEW });
    const removed = await kinstall(['remove', '--root', r.root, NEW]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(existsSync(r.at('/var/lib/kinstall/trial.json'))).toBe(false);
    expect(entries(r)).toEqual(names(`${TOKEN}-${OLD}.conf`));
  });

  it('after a fallback, add (like list and status) warns once before it installs', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    await add(r, NEW, '--layout', 'bls', '--try');
    startCounted(r, '/efi/loader/entries', NEW, '.conf');
    const next = await add(r, '6.1.100-next', '--layout', 'bls');
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toContain(`the trial of ${NEW} failed`);
    const after = await add(r, '6.1.101-next', '--layout', 'bls');
    expect(after.stderr).not.toContain('the trial of');
  });

  it('coexists with /etc/kernel/tries: plain installs count its tries, a trial one; confirm blesses either', async () => {
    const r = espRoot();
    writeFileSync(r.at('/etc/kernel/tries'), '3\n');
    await add(r, OLD, '--layout', 'bls');
    expect(entries(r)).toEqual(names(`${TOKEN}-${OLD}+3.conf`));
    await add(r, NEW, '--layout', 'bls', '--try');
    expect(entries(r)).toEqual(names(`${TOKEN}-${NEW}+1.conf`, `${TOKEN}-${OLD}+3.conf`));
    const blessed = await kinstall(['confirm', '--root', r.root, OLD]);
    expect(blessed.exitCode, blessed.stderr).toBe(0);
    expect(entries(r)).toEqual(names(`${TOKEN}-${NEW}+1.conf`, `${TOKEN}-${OLD}.conf`));
  });

  it('a trial below the default version is refused (systemd-boot would never start it), nothing changed', async () => {
    const r = espRoot();
    await add(r, NEW, '--layout', 'bls');
    const before = snapshotTree(r.root);
    const older = await add(r, OLD, '--layout', 'bls', '--try');
    expect(older.exitCode).toBe(4);
    expect(older.stderr).toContain(`${OLD} sorts below the default ${NEW}: systemd-boot starts the newest entry`);
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('the first kernel, with nothing to fall back to, is installed as the default, not as a trial', async () => {
    const r = espRoot();
    const result = await add(r, OLD, '--layout', 'bls', '--try');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`${OLD} is installed as the default, not as a trial (nothing to fall back to)`);
    expect(entries(r)).toEqual(names(`${TOKEN}-${OLD}.conf`));
    expect(existsSync(r.at('/var/lib/kinstall/trial.json'))).toBe(false);
  });

  it('a failed trial install rolls back the record with the entry; dry run writes nothing', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    const before = snapshotTree(r.root);
    const dry = await add(r, NEW, '--layout', 'bls', '--try', '--dry-run');
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`write ${r.at(`/efi/loader/entries/${TOKEN}-${NEW}+1.conf`)}`);
    expect(snapshotTree(r.root)).toEqual(before);
  });
});

describe('add --try on uki: boot counting in the image name', () => {
  it('EFI/Linux/TOKEN-NEW+1.efi beside the default; confirm renames it byte for byte', async () => {
    const r = espRoot();
    expect((await add(r, OLD, '--layout', 'uki')).exitCode).toBe(0);
    const trial = await add(r, NEW, '--layout', 'uki', '--try');
    expect(trial.exitCode, trial.stderr).toBe(0);
    const linux = () => readdirSync(r.at('/efi/EFI/Linux')).sort();
    expect(linux()).toEqual(names(`${TOKEN}-${NEW}+1.efi`, `${TOKEN}-${OLD}.efi`));
    expect(stateOf((await status(r)).kernels, NEW)?.trial).toBe('pending');
    startCounted(r, '/efi/EFI/Linux', NEW, '.efi');
    const image = readFileSync(r.at(`/efi/EFI/Linux/${TOKEN}-${NEW}+0-1.efi`));
    expect(stateOf((await status(r)).kernels, NEW)?.trial).toBe('failed');
    expect((await kinstall(['confirm', '--root', r.root, NEW])).exitCode).toBe(0);
    expect(linux()).toEqual(names(`${TOKEN}-${NEW}.efi`, `${TOKEN}-${OLD}.efi`));
    expect(readFileSync(r.at(`/efi/EFI/Linux/${TOKEN}-${NEW}.efi`)).equals(image)).toBe(true);
    expect(stateOf((await status(r)).kernels, NEW)).toMatchObject({ trial: 'confirmed', default: true });
  });
});

describe('compat and the tryOnce setting', () => {
  it('compat refuses --try with its reason (ENOTRIAL, exit 4), nothing changed', async () => {
    const r = plainRoot();
    await add(r, OLD, '--layout', 'compat');
    const before = snapshotTree(r.root);
    const result = await add(r, NEW, '--layout', 'compat', '--try');
    expect(result.exitCode).toBe(4);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(
      /^kinstall: ENOTRIAL: cannot install as a trial \(--try\) with layout compat: there is no boot loader to steer/,
    );
    expect(snapshotTree(r.root)).toEqual(before);
  });

  it('with a confirm unit enabled a plain add is a trial (no warning); tryOnce false turns it off; compat just installs', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    mkdirSync(r.at('/etc/systemd/system/basic.target.wants'), { recursive: true });
    symlinkSync(
      '/usr/lib/systemd/system/kinstall-confirm.service',
      r.at('/etc/systemd/system/basic.target.wants/kinstall-confirm.service'),
    );
    const trial = await add(r, NEW, '--layout', 'bls');
    expect(trial.exitCode, trial.stderr).toBe(0);
    expect(trial.stderr).not.toContain('no confirm unit');
    expect(entries(r)).toContain(`${TOKEN}-${NEW}+1.conf`);

    const off = espRoot({ tryOnce: false });
    await add(off, OLD, '--layout', 'bls');
    mkdirSync(off.at('/etc/runlevels/default'), { recursive: true });
    symlinkSync('/etc/init.d/kinstall-confirm', off.at('/etc/runlevels/default/kinstall-confirm'));
    expect((await add(off, NEW, '--layout', 'bls')).exitCode).toBe(0);
    expect(entries(off)).toContain(`${TOKEN}-${NEW}.conf`);

    const compat = plainRoot();
    mkdirSync(compat.at('/etc/runlevels/default'), { recursive: true });
    symlinkSync('/etc/init.d/kinstall-confirm', compat.at('/etc/runlevels/default/kinstall-confirm'));
    await add(compat, OLD, '--layout', 'compat');
    const plain = await add(compat, NEW, '--layout', 'compat');
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(existsSync(compat.at('/var/lib/kinstall/trial.json'))).toBe(false);
  });

  it('installkernel honours KINSTALL_TRY_ONCE; a bad value is a config error', async () => {
    const r = espRoot();
    await add(r, OLD, '--layout', 'bls');
    const image = r.at('/var/fake/vmlinuz');
    writeFileSync(image, readFileSync(kernel.image));
    const env = { KINSTALL_TRY_ONCE: '1', INSTALLKERNEL_LAYOUT: 'bls' };
    const run = await installkernel(['--root', r.root, '--force', '--initrd', r.at('/var/fake/initrd'), NEW, image], { env });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(entries(r)).toContain(`${TOKEN}-${NEW}+1.conf`);
    const bad = await kinstall(['status', '--root', r.root], { env: { KINSTALL_TRY_ONCE: 'maybe' } });
    expect(bad.exitCode).toBe(3);
    expect(bad.stderr).toContain('tryOnce must be true or false');
  });

  it('--try is an option of add only', async () => {
    const r = newRoot();
    const result = await kinstall(['list', '--try', '--root', r.root]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--try is not an option of kinstall list');
  });
});

describe('the confirm units', () => {
  const units = path.join(top, 'units');
  const scratch = useScratchRoots({ after: 'all' });

  it('systemd-analyze verifies the service: kinstall confirm after boot-complete.target, as systemd-bless-boot', async () => {
    const dir = scratch({ config: false }).at('/units');
    mkdirSync(dir);
    const text = readFileSync(path.join(units, 'kinstall-confirm.service'), 'utf8');
    expect(text).toMatch(/^Requires=boot-complete\.target$/m);
    expect(text).toMatch(/^After=local-fs\.target boot-complete\.target$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/kinstall confirm$/m);
    // The real binary stands in for /usr/bin/kinstall, which this machine does not have installed.
    writeFileSync(path.join(dir, 'kinstall-confirm.service'), text.replace('/usr/bin/kinstall', kinstallBin));
    const verified = await execa('systemd-analyze', ['verify', '--man=no', path.join(dir, 'kinstall-confirm.service')], {
      reject: false,
    });
    expect(verified.exitCode, verified.stderr).toBe(0);
    expect(verified.stderr).toBe('');
    // A unit that breaks the rules (no ExecStart for a oneshot) is refused by the same check.
    writeFileSync(path.join(dir, 'broken.service'), text.replace(/^ExecStart=.*$/m, ''));
    const broken = await execa('systemd-analyze', ['verify', '--man=no', path.join(dir, 'broken.service')], { reject: false });
    expect(broken.exitCode).not.toBe(0);
  });

  it('the OpenRC script is POSIX sh (shellcheck) and its start runs kinstall confirm, its status its own', async () => {
    const script = path.join(units, 'kinstall-confirm.openrc');
    const lint = await execa('shellcheck', ['--shell=sh', '--exclude=SC2034', script], { reject: false });
    expect(lint.exitCode, lint.stdout).toBe(0);
    const r = scratch({ config: false });
    const fake = r.at('/kinstall');
    writeFileSync(fake, `#!/bin/sh\necho "$@" > ${r.at('/argv')}\nexit 3\n`, { mode: 0o755 });
    // openrc-run's functions, as stand-ins: ebegin prints, eend returns the status it is given.
    const run = await execa(
      'sh',
      ['-c', `ebegin() { echo "* $*"; }; eend() { return "$1"; }; . "$0"; command=${fake}; start`, script],
      { reject: false },
    );
    expect(run.stdout).toBe('* Confirming the running kernel (kinstall)');
    expect(run.exitCode).toBe(3);
    expect(readFileSync(r.at('/argv'), 'utf8')).toBe('confirm\n');
  });
});
