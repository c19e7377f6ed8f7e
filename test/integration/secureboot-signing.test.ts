// Secure Boot signing without a VM: what the sign step signs (and what it leaves alone), the key
// from the config file or Gentoo's environment, the preflight refusals, and sbctl's plugin skipped.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SNAKEOIL_CERT, SNAKEOIL_KEY } from '../helpers/boot.js';
import { kinstall } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, writeHook, type TestRoot } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const TOKEN = '6b696e7374616c6c2d626f6f74746573';

const keyRoots = useScratchRoots({ after: 'all' });
const newRoot = useScratchRoots();
let plainKey: string;
beforeAll(() => {
  const keys = keyRoots({ config: false });
  plainKey = keys.at('/etc/kinstall/snakeoil.key');
  execFileSync('openssl', ['rsa', '-passin', 'pass:snakeoil', '-in', SNAKEOIL_KEY, '-out', plainKey], { stdio: 'ignore' });
});

function espRoot(config: Record<string, unknown> = {}): TestRoot {
  const r = newRoot({ config });
  mkdirSync(r.at('/efi/loader/entries'), { recursive: true });
  mkdirSync(r.at('/etc/kernel'), { recursive: true });
  writeFileSync(r.at('/etc/kernel/cmdline'), 'root=/dev/vda ro\n');
  writeFileSync(r.at('/etc/machine-id'), `${TOKEN}\n`);
  return r;
}

const add = (r: TestRoot, extra: string[] = [], env: Record<string, string> = {}, image = kernel.image) =>
  kinstall(['add', '--root', r.root, '--layout', 'bls', '--esp', '/efi', '--initramfs', 'none', ...extra, V, image], { env });

/** The signers' subjects sbverify lists, in order. */
const signers = (file: string) =>
  execFileSync('sbverify', ['--list', file], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('subject:'))
    .map((l) => l.trim());

describe('signing the files the firmware verifies', () => {
  it('signs a copy of the kernel for the ESP; the neutral location keeps the image as given', async () => {
    const root = espRoot({ secureboot: { key: plainKey, cert: SNAKEOIL_CERT } });
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`signed linux for Secure Boot with ${SNAKEOIL_CERT}`);
    const linux = root.at(`/efi/${TOKEN}/${V}/linux`);
    execFileSync('sbverify', ['--cert', SNAKEOIL_CERT, linux], { stdio: 'ignore' });
    expect(signers(linux)).toEqual([expect.stringContaining('Debian Secure Boot Signer'), expect.stringContaining('O=SnakeOil')]);
    expect(readFileSync(root.at(`/lib/modules/${V}/vmlinuz`)).equals(readFileSync(kernel.image))).toBe(true);
  });

  it('takes the key and certificate from SECUREBOOT_SIGN_KEY/SECUREBOOT_SIGN_CERT, and an image signed by that key already is not signed twice', async () => {
    const root = espRoot();
    const presigned = root.at('/etc/presigned.efi');
    execFileSync('sbsign', ['--key', plainKey, '--cert', SNAKEOIL_CERT, '--output', presigned, kernel.image], {
      stdio: 'ignore',
    });
    const result = await add(root, [], { SECUREBOOT_SIGN_KEY: plainKey, SECUREBOOT_SIGN_CERT: SNAKEOIL_CERT }, presigned);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/is signed by .*PkKek-1-snakeoil\.pem already: not signed again/);
    const linux = root.at(`/efi/${TOKEN}/${V}/linux`);
    expect(readFileSync(linux).equals(readFileSync(presigned))).toBe(true);
    expect(signers(linux)).toHaveLength(2);
  });

  it('without a key nothing is signed', async () => {
    const root = espRoot();
    const result = await add(root);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(readFileSync(root.at(`/efi/${TOKEN}/${V}/linux`)).equals(readFileSync(kernel.image))).toBe(true);
  });
});

describe('preflight refusals, nothing changed', () => {
  const refused = async (r: TestRoot, pattern: RegExp, env: Record<string, string> = {}) => {
    const before = snapshotTree(r.root);
    const result = await add(r, [], env);
    expect(result.exitCode, result.stderr).toBe(4);
    expect(result.stderr).toMatch(pattern);
    expect(snapshotTree(r.root)).toEqual(before);
  };

  it('a missing key', async () => {
    const root = espRoot({ secureboot: { key: '/nonexistent/db.key', cert: SNAKEOIL_CERT } });
    await refused(
      root,
      /^kinstall: EPREFLIGHT: 1 preflight check\(s\) failed: the Secure Boot key \/nonexistent\/db\.key does not exist \(check secureboot\.key \(SECUREBOOT_SIGN_KEY\)\)$/m,
    );
  });

  it('an unreadable key (a directory) and a certificate that is no PEM certificate', async () => {
    const root = espRoot();
    const notCert = root.at('/etc/not-a-cert.pem');
    copyFileSync(plainKey, notCert);
    await refused(
      root,
      /EPREFLIGHT: 2 preflight check\(s\) failed: each is listed below\n\s+the Secure Boot key .*\/etc is not a file .*\n\s+.*not-a-cert\.pem/,
      { SECUREBOOT_SIGN_KEY: root.at('/etc'), SECUREBOOT_SIGN_CERT: notCert },
    );
  });

  it('a key protected by a passphrase, which sbsign cannot be given unattended', async () => {
    const root = espRoot({ secureboot: { key: SNAKEOIL_KEY, cert: SNAKEOIL_CERT } });
    await refused(root, /the Secure Boot key \/usr\/share\/ovmf\/PkKek-1-snakeoil\.key is protected by a passphrase/);
  });

  it('a key without its certificate is a configuration error', async () => {
    const root = espRoot();
    const result = await add(root, [], { SECUREBOOT_SIGN_KEY: plainKey });
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toMatch(
      /^kinstall: ECONFIG: invalid configuration: secureboot\.key and secureboot\.cert \(SECUREBOOT_SIGN_KEY, SECUREBOOT_SIGN_CERT\) go together: only the key is set$/m,
    );
  });
});

describe("sbctl's kernel-install plugin", () => {
  const hookLine = (stdout: string) => stdout.split('\n').find((l) => l.includes('91-sbctl.install')) ?? '';

  it('is skipped when kinstall signs, and runs when it does not', async () => {
    const root = espRoot({ secureboot: { key: plainKey, cert: SNAKEOIL_CERT } });
    writeHook(root, '/usr/lib/kernel/install.d', '91-sbctl.install', 'exit 0');
    const signing = await add(root, ['--dry-run']);
    expect(signing.exitCode, signing.stderr).toBe(0);
    expect(hookLine(signing.stdout)).toMatch(
      /: skip: redundant: it signs the installed kernel or UKI with sbctl, which kinstall signs in its sign step/,
    );
    // Not a chrootable root: the plugin runs on the host with the root's paths.
    writeFileSync(root.at('/etc/kinstall/config.json'), JSON.stringify({ targetHooks: 'host' }));
    const plain = await add(root, ['--dry-run']);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(hookLine(plain.stdout)).toMatch(/: run$/);
  });
});
