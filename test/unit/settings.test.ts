// Settings precedence (defaults < install.conf chain < config file < environment < CLI flags)
// and validation that reports every problem in one ECONFIG.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinPlugins } from '../../plugins/index.js';
import { KinstallError } from '../../src/core/errors.js';
import { parseInstallConf } from '../../src/core/install-conf.js';
import { loadSettings, type SettingsOverrides } from '../../src/core/settings.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const newRoot = useScratchRoots();
let root: TestRoot;

function put(r: TestRoot, systemPath: string, text: string): void {
  mkdirSync(path.dirname(r.at(systemPath)), { recursive: true });
  writeFileSync(r.at(systemPath), text);
}

const load = (r: TestRoot, env: Record<string, string> = {}, overrides: SettingsOverrides = {}) =>
  loadSettings((p) => r.at(p), env, overrides, builtinPlugins());

async function configError(
  r: TestRoot,
  env: Record<string, string> = {},
  overrides: SettingsOverrides = {},
): Promise<KinstallError> {
  const error: unknown = await load(r, env, overrides).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof KinstallError)) throw new Error(`expected a KinstallError, got ${String(error)}`);
  return error;
}

describe('settings precedence', () => {
  it('each source overrides the one before it: defaults < /usr/lib < /etc < install.conf.d < config file < env < flag', async () => {
    root = newRoot({ config: false });
    expect((await load(root)).layout).toBe('auto');
    put(root, '/usr/lib/kernel/install.conf', 'layout=compat\n');
    expect((await load(root)).layout).toBe('compat');
    put(root, '/etc/kernel/install.conf', 'layout=grub\n');
    expect((await load(root)).layout).toBe('grub');
    put(root, '/etc/kernel/install.conf.d/10-bls.conf', 'layout=bls\n');
    expect((await load(root)).layout).toBe('bls');
    put(root, '/etc/kinstall/config.json', JSON.stringify({ layout: 'lilo' }));
    expect((await load(root)).layout).toBe('lilo');
    const env = { INSTALLKERNEL_LAYOUT: 'efistub' };
    expect((await load(root, env)).layout).toBe('efistub');
    const settings = await load(root, env, { layout: 'uki' });
    expect(settings.layout).toBe('uki');
  });

  it('a partial file overrides only the keys it sets; drop-ins apply in name order, *.conf only', async () => {
    root = newRoot({ config: false });
    put(root, '/usr/lib/kernel/install.conf', 'layout=compat\ninitrd_generator=none\nBOOT_ROOT=/efi\n');
    put(root, '/etc/kernel/install.conf', '# only the layout\nlayout="grub"\n');
    put(root, '/etc/kernel/install.conf.d/20-late.conf', "MACHINE_ID='0123456789abcdef0123456789abcdef'\n");
    put(
      root,
      '/etc/kernel/install.conf.d/10-early.conf',
      'MACHINE_ID=ffffffffffffffffffffffffffffffff\nBOOT_ROOT=/boot/efi # the ESP\n',
    );
    put(root, '/etc/kernel/install.conf.d/30-ignored.conf.bak', 'layout=bls\n');
    const settings = await load(root);
    expect(settings).toMatchObject({
      layout: 'grub',
      initrdGenerator: 'none',
      bootRoot: '/boot/efi',
      machineId: '0123456789abcdef0123456789abcdef',
      bootDir: '/boot',
    });
  });

  it('environment names: INSTALLKERNEL_INITRD_GENERATOR and KINSTALL_* fill what the flags leave unset', async () => {
    root = newRoot({ config: false });
    put(root, '/etc/kinstall/config.json', JSON.stringify({ initramfs: 'dracut', keep: 5, cmdline: 'from-file' }));
    const settings = await load(root, { INSTALLKERNEL_INITRD_GENERATOR: 'none', KINSTALL_KEEP: '3' }, { cmdline: 'from-flag' });
    expect(settings).toMatchObject({ initrdGenerator: 'none', keep: 3, cmdline: 'from-flag' });
    // An empty variable is unset, as the shell convention goes.
    expect((await load(root, { INSTALLKERNEL_INITRD_GENERATOR: '' })).initrdGenerator).toBe('dracut');
  });

  it('--config FILE is read instead of <root>/etc/kinstall', async () => {
    root = newRoot({ config: false });
    put(root, '/etc/kinstall/config.json', JSON.stringify({ layout: 'lilo', cmdline: 'from-etc' }));
    put(root, '/elsewhere/kinstall.json', JSON.stringify({ layout: 'bls', keep: 2 }));
    const settings = await load(root, {}, { configFile: root.at('/elsewhere/kinstall.json') });
    expect(settings).toMatchObject({ layout: 'bls', keep: 2 });
    // Nothing of <root>/etc/kinstall's file was read, not even a key --config leaves unset.
    expect(settings.cmdline).toBeUndefined();
  });
});

describe('settings validation', () => {
  it('collects every problem of every source into one ECONFIG (exit 3)', async () => {
    root = newRoot({ config: false });
    put(root, '/etc/kernel/install.conf', 'layout=compat\nthis line is not key=value\n');
    put(root, '/etc/kinstall/config.json', JSON.stringify({ keep: 'two', colour: 'blue', grub: { cfg: 7, nope: true } }));
    const error = await configError(
      root,
      { INSTALLKERNEL_LAYOUT: 'bogus' },
      { initrdGenerator: '../mkinitcpio', bootDir: 'boot' },
    );
    expect(error.code).toBe('ECONFIG');
    expect(error.exitCode).toBe(3);
    const file = root.at('/etc/kinstall/config.json');
    expect(error.details).toEqual([
      `${root.at('/etc/kernel/install.conf')}:2: expected KEY=VALUE, found "this line is not key=value"`,
      `${file}: "keep" must be a number`,
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown key "colour" \\(known: .*grub`)),
      `${file}: "grub.cfg" must be a string`,
      expect.stringMatching(/: unknown key "grub\.nope" \(known: cfg, mkconfig\)$/),
      expect.stringMatching(/^unknown layout "bogus" \(known: auto, .*compat/),
      expect.stringMatching(
        /^invalid initramfs generator "\.\.\/mkinitcpio" \(known: auto, dracut, none, or a hook's generator name\)$/,
      ),
      'boot dir must be an absolute path, found "boot"',
    ]);
    expect(error.message).toMatch(/^invalid configuration: 8 problems: /);
  });

  it('keep must be a whole number of at least 1, wherever it comes from', async () => {
    root = newRoot({ config: false });
    expect((await configError(root, { KINSTALL_KEEP: '0' })).details).toEqual([
      'keep must be a whole number of at least 1, found "0"',
    ]);
    expect((await configError(root, {}, { keep: 1.5 })).message).toBe(
      'invalid configuration: keep must be a whole number of at least 1, found "1.5"',
    );
  });
});

describe('install.conf parsing', () => {
  it('reads KEY=VALUE with quotes, comments and blank lines like the shell would', () => {
    const text =
      '# comment\n\nlayout = bls\ninitrd_generator="dracut"\nuki_generator=\'ukify\'\nBOOT_ROOT=/efi   # trailing\nEMPTY=\n';
    expect(parseInstallConf(text, 'f')).toEqual({
      values: { layout: 'bls', initrd_generator: 'dracut', uki_generator: 'ukify', BOOT_ROOT: '/efi', EMPTY: '' },
      problems: [],
    });
    expect(parseInstallConf('layout grub\n1BAD=x\n', 'f').problems).toEqual([
      'f:1: expected KEY=VALUE, found "layout grub"',
      'f:2: expected KEY=VALUE, found "1BAD=x"',
    ]);
  });
});
