// systemd's kernel-install plugin protocol, against systemd 252's own plugins on this machine
// (50-depmod, 85-initrd, 90-loaderentry, linked into the test root, never copied): what a plugin
// is called with and the entries it writes, compared with `kernel-install` itself on the same
// inputs; the redundant-step policy; plugin outputs in the staging area; /etc masking; exit 77.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { kinstall } from '../helpers/cli.js';
import { failingRuns, failingToolsEnv } from '../helpers/failing-tools.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const MACHINE_ID = '0123456789abcdef0123456789abcdef';
const SYSTEMD_PLUGINS = '/usr/lib/kernel/install.d';
const REAL = ['50-depmod.install', '85-initrd.install', '90-loaderentry.install'];
const newRoot = useScratchRoots();

beforeAll(() => {
  for (const name of REAL) expect(existsSync(path.join(SYSTEMD_PLUGINS, name)), `systemd 252's ${name}`).toBe(true);
  // These plugins run on the host (inside the target is a later step): 50-depmod acts on the
  // host's /lib/modules/VERSION. The test kernel's version must not be the host's.
  expect(existsSync(`/lib/modules/${V}`)).toBe(false);
});

/** A BLS target: an ESP at /efi with loader/entries, install.conf layout=bls, the target's cmdline. */
function blsRoot(conf = 'layout=bls\ninitrd_generator=none\n'): TestRoot {
  // dracut's preflight wants the kernel's modules; with generator none an empty modules dir does.
  const r = newRoot({ modules: conf.includes('initrd_generator=dracut') });
  mkdirSync(r.at('/efi/EFI'), { recursive: true });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  mkdirSync(r.at('/etc/kernel/install.d'), { recursive: true });
  mkdirSync(r.at('/var/tmp/record'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/install.conf'), conf);
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda2 ro quiet\n');
  writeFileSync(r.at('/etc/machine-id'), `${MACHINE_ID}\n`);
  return r;
}

/** systemd's plugins in the target's /usr/lib/kernel/install.d: links to the machine's own files. */
function linkSystemdPlugins(r: TestRoot): void {
  mkdirSync(r.at(SYSTEMD_PLUGINS), { recursive: true });
  for (const name of REAL) symlinkSync(path.join(SYSTEMD_PLUGINS, name), r.at(path.join(SYSTEMD_PLUGINS, name)));
}

/** A plugin that records its arguments and KERNEL_INSTALL_* environment, per verb, in the root. */
function recordingPlugin(r: TestRoot, name: string): string {
  const out = r.at(`/var/tmp/record/${name}`);
  return writeHook(
    r,
    '/etc/kernel/install.d',
    name,
    `printf '%s\\n' "$@" > "${out}.$1.args"\nenv | grep '^KERNEL_INSTALL_' | grep -v '^KERNEL_INSTALL_PLUGINS=' | sort > "${out}.$1.env"`,
  );
}

interface Recorded {
  args: string[];
  env: Record<string, string>;
}

/** What a recording plugin saw, with the root and staging area replaced by placeholders. */
function recorded(r: TestRoot, name: string, verb: string): Recorded {
  const file = r.at(`/var/tmp/record/${name}.${verb}`);
  const lines = (ext: string) => readFileSync(`${file}.${ext}`, 'utf8').split('\n').filter(Boolean);
  const env = Object.fromEntries(lines('env').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const staging = env.KERNEL_INSTALL_STAGING_AREA ?? '';
  const norm = (s: string) => (staging ? s.replaceAll(staging, '<staging>') : s).replaceAll(r.root, '<root>');
  return { args: lines('args').map(norm), env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, norm(v)])) };
}

/** `kernel-install` 252 on a second root, told the root only through its documented environment. */
async function kernelInstall(r: TestRoot, plugins: string[], ...args: string[]) {
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    KERNEL_INSTALL_CONF_ROOT: r.at('/etc/kernel'),
    BOOT_ROOT: r.at('/efi'),
    MACHINE_ID,
    KERNEL_INSTALL_PLUGINS: plugins.join(' '),
  };
  const result = await execa('kernel-install', args, { env, extendEnv: false, reject: false });
  expect(result.exitCode, String(result.stderr)).toBe(0);
}

/** Arguments without KERNEL_IMAGE (the fourth). */
const withoutImage = (args: string[]) => [...args.slice(0, 3), ...args.slice(4)];

const entryFile = (r: TestRoot) => r.at(`/efi/loader/entries/${MACHINE_ID}-${V}.conf`);
/** An entry's text with its root's name replaced (90-loaderentry writes paths relative to the ESP's mount). */
const entryText = (r: TestRoot) => readFileSync(entryFile(r), 'utf8').replaceAll(path.basename(r.root), '<root>');

describe("systemd 252's plugins through kinstall, compared with kernel-install", () => {
  it('add and remove: the same arguments, environment and loader entry (runRedundant lets 50-depmod and 90-loaderentry run)', async () => {
    const viaKinstall = blsRoot();
    linkSystemdPlugins(viaKinstall);
    // 85-initrd links the host's /boot/initrd.img-VERSION; masked here, as kernel-install is not given it.
    symlinkSync('/dev/null', viaKinstall.at('/etc/kernel/install.d/85-initrd.install'));
    recordingPlugin(viaKinstall, '10-record.install');
    recordingPlugin(viaKinstall, '95-record.install');
    writeFileSync(
      viaKinstall.at('/etc/kinstall/config.json'),
      JSON.stringify({ runRedundant: ['50-depmod.install', '90-loaderentry.install'], targetHooks: 'host' }),
    );
    const added = await kinstall(['add', '--root', viaKinstall.root, V, kernel.image]);
    expect(added.exitCode, added.stderr).toBe(0);

    const viaKernelInstall = blsRoot();
    const plugins = [
      recordingPlugin(viaKernelInstall, '10-record.install'),
      path.join(SYSTEMD_PLUGINS, '50-depmod.install'),
      path.join(SYSTEMD_PLUGINS, '90-loaderentry.install'),
      recordingPlugin(viaKernelInstall, '95-record.install'),
    ];
    await kernelInstall(viaKernelInstall, plugins, 'add', V, kernel.image);

    for (const name of ['10-record.install', '95-record.install']) {
      const ours = recorded(viaKinstall, name, 'add');
      const theirs = recorded(viaKernelInstall, name, 'add');
      // KERNEL_IMAGE: kernel-install passes the image it was given, kinstall the same bytes from the neutral location.
      expect(ours.args[3]).toBe(`<root>/lib/modules/${V}/vmlinuz`);
      expect(theirs.args[3]).toBe(kernel.image);
      expect(withoutImage(ours.args)).toEqual(withoutImage(theirs.args));
      expect(ours.args.slice(0, 3)).toEqual(['add', V, `<root>/efi/${MACHINE_ID}/${V}`]);
      // Every variable kernel-install 252 sets, with the same value; kinstall adds those of newer
      // systemd releases (KERNEL_INSTALL_IMAGE_TYPE, KERNEL_INSTALL_UKI_GENERATOR).
      expect(ours.env).toEqual({ ...theirs.env, KERNEL_INSTALL_IMAGE_TYPE: 'pe', KERNEL_INSTALL_UKI_GENERATOR: '' });
      expect(theirs.env).toMatchObject({
        KERNEL_INSTALL_LAYOUT: 'bls',
        KERNEL_INSTALL_MACHINE_ID: MACHINE_ID,
        KERNEL_INSTALL_BOOT_ROOT: '<root>/efi',
        KERNEL_INSTALL_STAGING_AREA: '<staging>',
      });
    }
    // 90-loaderentry ran in kinstall's postinst and wrote the entry and the kernel as kernel-install's run did.
    expect(entryText(viaKinstall)).toBe(entryText(viaKernelInstall));
    expect(entryText(viaKinstall)).toContain('options    root=/dev/vda2 ro quiet systemd.machine_id=');
    const linux = (r: TestRoot) => readFileSync(r.at(`/efi/${MACHINE_ID}/${V}/linux`));
    expect(linux(viaKinstall).equals(linux(viaKernelInstall))).toBe(true);
    expect(linux(viaKinstall).equals(readFileSync(kernel.image))).toBe(true);

    const removed = await kinstall(['remove', '--root', viaKinstall.root, V]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    await kernelInstall(viaKernelInstall, plugins, 'remove', V);
    for (const name of ['10-record.install', '95-record.install']) {
      const ours = recorded(viaKinstall, name, 'remove');
      const theirs = recorded(viaKernelInstall, name, 'remove');
      expect(ours.args).toEqual(['remove', V, `<root>/efi/${MACHINE_ID}/${V}`]);
      expect(ours.args).toEqual(theirs.args);
      expect(ours.env.KERNEL_INSTALL_ENTRY_TOKEN).toBe(theirs.env.KERNEL_INSTALL_ENTRY_TOKEN);
    }
    for (const r of [viaKinstall, viaKernelInstall]) {
      expect(existsSync(entryFile(r))).toBe(false);
      expect(existsSync(r.at(`/efi/${MACHINE_ID}/${V}`))).toBe(false);
    }
  });

  it('by default 50-depmod and 90-loaderentry are skipped with the reason shown; kinstall writes the entry itself', async () => {
    const r = blsRoot();
    linkSystemdPlugins(r);
    const dry = await kinstall(['add', '--root', r.root, '--dry-run', V, kernel.image]);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(
      `  preinst kernel-install ${r.at(`${SYSTEMD_PLUGINS}/50-depmod.install`)}: skip: redundant: it runs depmod, which kinstall runs in its depmod step`,
    );
    expect(dry.stdout).toContain(`  preinst kernel-install ${r.at(`${SYSTEMD_PLUGINS}/85-initrd.install`)}: run`);
    expect(dry.stdout).toMatch(
      / {2}postinst kernel-install \S+\/90-loaderentry\.install: skip: redundant: it copies the kernel into the boot directory/,
    );
    const result = await kinstall(['add', '--root', r.root, '--verbose', V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/not running \S+\/90-loaderentry\.install: redundant/);
    expect(result.stderr).toMatch(/running kernel-install hook \S+\/85-initrd\.install add /);
    // The entry is kinstall's own (through the transaction), not 90-loaderentry's.
    expect(readFileSync(entryFile(r), 'utf8')).toMatch(/^title /m);
    expect(readdirSync(r.at(`/efi/${MACHINE_ID}/${V}`))).toContain('linux');
  });
});

describe('kernel-install plugins: outputs, masking, 77', () => {
  it("a generator plugin leaving initrd in KERNEL_INSTALL_STAGING_AREA makes the initramfs; kinstall's dracut never runs", async () => {
    const r = blsRoot('layout=bls\ninitrd_generator=dracut\n');
    const made = r.at('/var/tmp/made-initrd');
    writeFileSync(made, randomBytes(4096));
    writeHook(
      r,
      '/usr/lib/kernel/install.d',
      '50-testgen.install',
      [
        '[ "$1" = add ] && [ "$KERNEL_INSTALL_INITRD_GENERATOR" = dracut ] || exit 0',
        // kernel-install's generators make nothing when initrds were given on the command line.
        '[ "$#" -ge 5 ] && exit 0',
        `cp '${made}' "$KERNEL_INSTALL_STAGING_AREA/initrd"`,
      ].join('\n'),
    );
    const result = await kinstall(['add', '--root', r.root, V, kernel.image], { env: failingToolsEnv(r, ['dracut']) });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(failingRuns(r)).toEqual([]);
    expect(result.stderr).toContain('initramfs made by hook 50-testgen.install (initrd)');
    const entry = readFileSync(entryFile(r), 'utf8');
    const initrd = /^initrd\s+(\S+)$/m.exec(entry)?.[1];
    expect(initrd).toBeDefined();
    expect(readFileSync(r.at(path.join('/efi', initrd ?? ''))).equals(readFileSync(made))).toBe(true);
  });

  it('/etc/kernel/install.d masks /usr/lib/kernel/install.d by name; exit 77 stops the rest of the phase', async () => {
    const r = blsRoot();
    const log = r.at('/var/tmp/ran');
    const plugin = (dir: string, name: string, then = '') => writeHook(r, dir, name, `echo "${name} $1" >> '${log}'\n${then}`);
    plugin('/usr/lib/kernel/install.d', '20-masked.install');
    symlinkSync('/dev/null', r.at('/etc/kernel/install.d/20-masked.install'));
    plugin('/usr/lib/kernel/install.d', '30-replaced.install');
    writeHook(r, '/etc/kernel/install.d', '30-replaced.install', `echo "etc-30 $1" >> '${log}'`);
    plugin('/usr/lib/kernel/install.d', '40-stop.install', 'exit 77');
    plugin('/usr/lib/kernel/install.d', '50-never.install');
    plugin('/usr/lib/kernel/install.d', 'not-a-plugin');
    plugin('/usr/lib/kernel/install.d', '95-after.install');
    const result = await kinstall(['add', '--root', r.root, V, kernel.image]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['etc-30 add', '40-stop.install add', '95-after.install add']);
  });
});
