// Running as root: hooks, config files and plugins anyone else can write are refused (EINSECURE);
// a non-executable hook is skipped with a warning; hooks get an explicit environment and a 0700
// staging area; a symlinked directory never carries a write out of the ESP.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { kinstall, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const NOBODY = 65534;
const newRoot = useScratchRoots();
let root: TestRoot;
let outside: string | undefined;
afterEach(() => {
  if (outside) rmSync(outside, { recursive: true, force: true });
  outside = undefined;
});

const add = (r: TestRoot, ...extra: string[]) =>
  kinstall(['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'none', ...extra, V, kernel.image]);

function hook(r: TestRoot, name: string, body: string, mode = 0o755): string {
  const dir = r.at('/etc/kinstall/hooks.d');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

/** The whole root, byte for byte: a refusal comes before anything changes, anywhere in it. */
const state = (r: TestRoot) => snapshotTree(r.root);

function rootWithModules(): TestRoot {
  const r = newRoot();
  mkdirSync(r.at(`/lib/modules/${V}/kernel`), { recursive: true });
  return r;
}

/**
 * A plugin package in kinstall's own node_modules (where import() of a package name resolves) whose
 * file others can write and which, if it ever runs, leaves `marker`; named in the root's config file.
 */
function evilPackage(kind: string, exports: unknown, marker: string): string {
  const pkg = path.join(top, 'node_modules', `kinstall-test-${kind}-${process.pid}`);
  outside = pkg;
  mkdirSync(pkg, { recursive: true });
  writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: path.basename(pkg), type: 'module', exports }));
  writeFileSync(
    path.join(pkg, 'index.js'),
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexport default { name: 'evil', plan: async () => ({}) };\n`,
  );
  chmodSync(path.join(pkg, 'index.js'), 0o646);
  writeFileSync(root.at('/etc/kinstall/config.json'), JSON.stringify({ plugins: [path.basename(pkg)] }));
  return pkg;
}
describe('trust checks when running as root', () => {
  it('is running as root (the checks below only apply to root)', () => {
    expect(process.getuid?.()).toBe(0);
  });

  it('skips a hook that is not executable with a warning naming chmod +x; the install succeeds', async () => {
    root = rootWithModules();
    const marker = root.at('/var/tmp/ran');
    const file = hook(root, '50-noexec', `touch ${marker}`, 0o644);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`skipping ${file}: not executable (chmod +x to enable it)`);
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(root.at(`/boot/vmlinuz-${V}`)).equals(readFileSync(kernel.image))).toBe(true);
  });

  it('refuses a world-writable hook with EINSECURE (exit 4), nothing changed', async () => {
    root = rootWithModules();
    const marker = root.at('/var/tmp/ran');
    const file = hook(root, '50-open', `touch ${marker}`, 0o757);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EINSECURE: refusing to use the hook: /m);
    expect(result.stderr).toContain(`${file} is writable by others (mode 0757; fix: chmod go-w ${file})`);
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('kinstall: EINSECURE')),
    ).toHaveLength(1);
    expect(existsSync(marker)).toBe(false);
    expect(state(root)).toEqual(before);
  });

  it('refuses a hook owned by another user, naming the chown', async () => {
    root = rootWithModules();
    const file = hook(root, '50-theirs', 'exit 0');
    chownSync(file, NOBODY, NOBODY);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(
      `kinstall: EINSECURE: refusing to use the hook: ${file} is owned by uid ${NOBODY}, not root (fix: chown root:root ${file})`,
    );
    expect(state(root)).toEqual(before);
  });

  it('refuses a group-writable hooks directory', async () => {
    root = rootWithModules();
    const file = hook(root, '50-fine', 'exit 0');
    chmodSync(path.dirname(file), 0o775);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(
      `refusing to use the hook directory: ${path.dirname(file)} is writable by its group (mode 0775; fix: chmod go-w ${path.dirname(file)})`,
    );
    expect(state(root)).toEqual(before);
  });

  it('refuses a group-writable config file before reading it', async () => {
    root = rootWithModules();
    const config = root.at('/etc/kinstall/config.json');
    chmodSync(config, 0o664);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(
      `kinstall: EINSECURE: refusing to use the config file: ${config} is writable by its group (mode 0664; fix: chmod go-w ${config})`,
    );
    expect(state(root)).toEqual(before);
    // list reads the config too.
    expect((await kinstall(['list', '--root', root.root])).exitCode).toBe(4);
    expect(state(root)).toEqual(before);
  });

  it('refuses an install.conf owned by another user', async () => {
    root = rootWithModules();
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    const conf = root.at('/etc/kernel/install.conf');
    writeFileSync(conf, 'layout=compat\n');
    chownSync(conf, NOBODY, NOBODY);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(`refusing to use the config file: ${conf} is owned by uid ${NOBODY}`);
    expect(state(root)).toEqual(before);
  });

  it('refuses a plugin file others can write, without running it', async () => {
    root = rootWithModules();
    const marker = root.at('/var/tmp/plugin-ran');
    const plugin = root.at('/etc/kinstall/evil.mjs');
    writeFileSync(
      plugin,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexport default { name: 'evil', plan: async () => ({}) };\n`,
    );
    chmodSync(plugin, 0o666);
    writeFileSync(root.at('/etc/kinstall/config.json'), JSON.stringify({ plugins: ['./evil.mjs'] }));
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(`refusing to use the plugin: ${plugin} is writable by others`);
    expect(existsSync(marker)).toBe(false);
    expect(state(root)).toEqual(before);
  });

  it('refuses a plugin named by package whose file others can write, without running it', async () => {
    root = rootWithModules();
    const marker = root.at('/var/tmp/plugin-ran');
    const pkg = evilPackage('plugin', './index.js', marker);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toContain(`refusing to use the plugin: ${path.join(pkg, 'index.js')} is writable by others`);
    expect(existsSync(marker)).toBe(false);
    expect(state(root)).toEqual(before);
  });

  it('refuses a plugin package kinstall cannot locate to check (exports for import only), without running it', async () => {
    root = rootWithModules();
    const marker = root.at('/var/tmp/plugin-ran');
    const pkg = evilPackage('esm-only', { import: './index.js' }, marker);
    const before = state(root);
    const result = await add(root);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toContain(`plugin ${path.basename(pkg)}: no such package where kinstall looks for it`);
    expect(existsSync(marker)).toBe(false);
    expect(state(root)).toEqual(before);
  });
});

describe('what hooks see', () => {
  it('an explicit environment (no inherited secrets) and a staging area of mode 0700', async () => {
    root = rootWithModules();
    const out = root.at('/var/tmp/env');
    mkdirSync(root.at('/var/tmp'), { recursive: true });
    hook(root, '10-env', `env > ${out}; stat -c %a "$KINSTALL_STAGING_AREA" >> ${out}`);
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image], {
      env: { KINSTALL_TEST_SECRET: 'hunter2', AWS_SECRET_ACCESS_KEY: 'nope' },
    });
    expect(result.exitCode, result.stderr).toBe(0);
    const seen = readFileSync(out, 'utf8');
    expect(seen).toContain(`KINSTALL_VERSION=${V}`);
    expect(seen).toMatch(/^PATH=/m);
    expect(seen).not.toContain('hunter2');
    expect(seen).not.toContain('AWS_SECRET_ACCESS_KEY');
    expect(seen.trim().split('\n').at(-1)).toBe('700');
  });
});

describe('symlinks out of the ESP', () => {
  it('refuses a plan whose target directory is a symlink leading outside the ESP, nothing written there', async () => {
    root = newRoot({ modules: true });
    outside = mkdtempSync(path.join(os.tmpdir(), 'kinstall-outside-'));
    mkdirSync(root.at('/efi/EFI/systemd'), { recursive: true });
    mkdirSync(root.at('/efi/loader'), { recursive: true });
    writeFileSync(root.at('/efi/loader/loader.conf'), 'timeout 3\n');
    symlinkSync(outside, root.at('/efi/loader/entries'));
    mkdirSync(root.at('/etc/kernel'), { recursive: true });
    writeFileSync(root.at('/etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(root.at('/etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    const before = { esp: snapshotTree(root.at('/efi')), boot: snapshotTree(root.boot) };
    const result = await kinstall([
      'add',
      '--root',
      root.root,
      '--layout',
      'bls',
      '--esp',
      '/efi',
      '--initramfs',
      'none',
      V,
      kernel.image,
    ]);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(/^kinstall: EPREFLIGHT: .*would land in .*kinstall-outside-.*, outside .*\/efi/m);
    expect(snapshotTree(outside)).toEqual({});
    expect({ esp: snapshotTree(root.at('/efi')), boot: snapshotTree(root.boot) }).toEqual(before);
  });
});
