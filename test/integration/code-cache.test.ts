// The bins' three starts (src/cli/start.ts): help and version from light.cjs, --verbose from the
// ESM chunks; a run that does work from the CommonJS bundle (dist/src/cli/cli.cjs) compiled with
// the code cache the build wrote. Both run the same code: a command gives the same files, output and exit code with the
// cache accepted, damaged, refused by V8 or missing, and without the bundle at all.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { installkernelBin, kinstallBin, top } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { assertScratch, useScratchRoots } from '../helpers/root.js';
import { snapshotTree } from '../helpers/tree.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();
const version = (JSON.parse(readFileSync(path.join(top, 'package.json'), 'utf8')) as { version: string }).version;

/** A copy of the package (dist, hooks.d, package.json) elsewhere, as an install under /usr is; `change` edits its dist/src/cli. */
const copies: string[] = [];
function copyPackage(change?: (cliDir: string) => void): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-package-'));
  assertScratch(dir);
  copies.push(dir);
  for (const item of ['dist', 'hooks.d', 'package.json']) cpSync(path.join(top, item), path.join(dir, item), { recursive: true });
  change?.(path.join(dir, 'dist/src/cli'));
  return dir;
}
afterAll(() => {
  for (const dir of copies) {
    assertScratch(dir);
    rmSync(dir, { recursive: true, force: true });
  }
});

interface Run {
  exitCode: number;
  /** The line KINSTALL_TEST_START makes the bin write first: which start ran. */
  start: string;
  stdout: string;
  stderr: string;
}

async function run(bin: string, args: string[]): Promise<Run> {
  const result = await execa('node', [bin, ...args], {
    cwd: top,
    env: { KINSTALL_TEST_START: '1' },
    reject: false,
    stdin: 'ignore',
  });
  const [start = '', ...rest] = String(result.stderr).split('\n');
  return { exitCode: result.exitCode ?? -1, start, stdout: String(result.stdout), stderr: rest.join('\n') };
}

const binOf = (pkg: string, name = 'kinstall.js') => path.join(pkg, 'dist/src/cli', name);
const cacheDigest = (source: Buffer, data: Buffer) => createHash('sha256').update(source).update(data).digest();

describe('help and version: light.cjs; --verbose: the ESM start', () => {
  it.each([
    ['kinstall', kinstallBin, ['--version'], `kinstall ${version}`],
    ['kinstall', kinstallBin, ['--help'], 'Usage: kinstall [COMMAND] [OPTIONS] [ARGS]'],
    ['kinstall', kinstallBin, ['-h'], 'Usage: kinstall [COMMAND] [OPTIONS] [ARGS]'],
    ['kinstall', kinstallBin, ['help', 'add'], 'Usage: kinstall add [VERSION] [IMAGE]'],
    ['kinstall', kinstallBin, ['add', '--help'], 'Usage: kinstall add [VERSION] [IMAGE]'],
    ['installkernel', installkernelBin, ['--version'], `installkernel (kinstall) ${version}`],
    ['installkernel', installkernelBin, ['--help'], 'Usage: installkernel'],
  ])('%s %j', async (_name, bin, args, first) => {
    const result = await run(bin, args);
    expect(result.start).toBe('kinstall: start: light');
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout.split('\n')[0]).toContain(first);
    expect(result.stderr).toBe('');
  });

  it('what light.cjs cannot answer goes on to the bundle: a usage error beside --help, a verb given "help" as an argument', async () => {
    const usage = await run(kinstallBin, ['--help', '--no-such-option']);
    expect(usage.start).toBe('kinstall: start: bundle, code cache accepted');
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toMatch(/^kinstall: EUSAGE: Unknown option '--no-such-option'/);
    const root = newRoot();
    const verb = await run(kinstallBin, ['list', '--root', root.root, 'help']);
    expect(verb.start).toBe('kinstall: start: bundle, code cache accepted');
    expect(verb.exitCode).toBe(2);
    expect(verb.stderr).toBe('kinstall: EUSAGE: list takes no arguments');
  });

  it('--verbose: the stack trace names the TypeScript sources; without it the bundle gives the same error line, no trace', async () => {
    const verbose = await run(kinstallBin, ['--verbose', '--no-such-option']);
    expect(verbose.start).toBe('kinstall: start: esm');
    expect(verbose.exitCode).toBe(2);
    expect(verbose.stderr).toMatch(/^kinstall: EUSAGE: Unknown option '--no-such-option'/);
    expect(verbose.stderr).toMatch(/\n +at .*src\/cli\/options\.ts:\d+:\d+\)?\n/);
    const plain = await run(kinstallBin, ['--no-such-option']);
    expect(plain.start).toBe('kinstall: start: bundle, code cache accepted');
    expect(plain.exitCode).toBe(2);
    expect(plain.stderr).toBe(verbose.stderr.split('\n')[0]);
  });
});

describe('a run that does work: the bundle and its code cache', () => {
  it('both bins use the cache the build wrote, which this Node accepts, in dist/ and in a moved copy', async () => {
    const root = newRoot();
    for (const bin of [kinstallBin, binOf(copyPackage())]) {
      const listed = await run(bin, ['list', '--json', '--root', root.root]);
      expect(listed.start).toBe('kinstall: start: bundle, code cache accepted');
      expect(listed.exitCode, listed.stderr).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([]);
    }
    const refused = await run(installkernelBin, ['1', '2', '3', '4', '5', '6']);
    expect(refused.start).toBe('kinstall: start: bundle, code cache accepted');
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/^kinstall: EUSAGE: installkernel takes VERSION IMAGE/);
  });

  it('the same install and the same refusal whichever start runs them: cache accepted, damaged, refused by V8, missing, no bundle', async () => {
    const variants: Array<[string, (cliDir: string) => void]> = [
      ['bundle, code cache accepted', () => {}],
      [
        // A damaged cache would crash V8 (it checks no checksum): the digest keeps it out.
        'bundle, code cache stale',
        (cli) => {
          const file = readFileSync(path.join(cli, 'cli.cjs.cache'));
          for (let at = 64; at < file.length; at += 101) file[at] = (file[at] ?? 0) ^ 0xff;
          writeFileSync(path.join(cli, 'cli.cjs.cache'), file);
        },
      ],
      [
        // What another Node's cache is to this one: whole, but V8 refuses it.
        'bundle, code cache rejected',
        (cli) => {
          const source = readFileSync(path.join(cli, 'cli.cjs'));
          const data = new vm.Script('"another script"').createCachedData();
          writeFileSync(path.join(cli, 'cli.cjs.cache'), Buffer.concat([cacheDigest(source, data), data]));
        },
      ],
      ['bundle, code cache none', (cli) => rmSync(path.join(cli, 'cli.cjs.cache'))],
      ['esm', (cli) => rmSync(path.join(cli, 'cli.cjs'))],
    ];
    const outcomes: unknown[] = [];
    for (const [start, change] of variants) {
      const bin = binOf(copyPackage(change));
      const root = newRoot({ modules: true });
      const mask = (r: Run) => ({
        ...r,
        stdout: r.stdout.replaceAll(root.root, '<root>'),
        stderr: r.stderr.replaceAll(root.root, '<root>'),
      });
      const before = snapshotTree(root.root);
      const refused = await run(bin, ['add', '--root', root.root, '--layout', 'no-such-layout', V, kernel.image]);
      expect(refused.start).toBe(`kinstall: start: ${start}`);
      expect(refused.exitCode).not.toBe(0);
      expect(snapshotTree(root.root)).toEqual(before);
      const added = await run(bin, ['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'none', V, kernel.image]);
      expect(added.start).toBe(`kinstall: start: ${start}`);
      expect(added.exitCode, added.stderr).toBe(0);
      expect(added.stderr).toContain(`installed ${V} (compat)`);
      const listed = await run(bin, ['list', '--json', '--root', root.root]);
      expect(listed.exitCode, listed.stderr).toBe(0);
      outcomes.push({ refused: mask(refused), added: mask(added), listed: mask(listed), boot: snapshotTree(root.boot) });
    }
    const strip = (o: unknown) => JSON.parse(JSON.stringify(o).replace(/"start":"[^"]*",/g, '')) as unknown;
    expect(Object.keys((outcomes[0] as { boot: object }).boot).sort()).toEqual([
      `System.map-${V}`,
      `config-${V}`,
      `vmlinuz-${V}`,
    ]);
    for (const outcome of outcomes.slice(1)) expect(strip(outcome)).toEqual(strip(outcomes[0]));
  });

  it('plugins named by the config file, and the config module itself, load with import() from inside the bundle', async () => {
    const pkg = copyPackage();
    const plugin = path.join(pkg, 'node_modules/kinstall-test-generator');
    mkdirSync(plugin, { recursive: true });
    writeFileSync(
      path.join(plugin, 'package.json'),
      JSON.stringify({ name: 'kinstall-test-generator', type: 'module', exports: './index.js' }),
    );
    const generator = (name: string) =>
      `import { writeFile } from 'node:fs/promises';\nexport default { name: '${name}', producesImage: true, generate: (ctx, kernel, out) => writeFile(out, '${name} for ' + kernel.version) };\n`;
    writeFileSync(path.join(plugin, 'index.js'), generator('package-generator'));
    for (const name of ['package-generator', 'local-generator']) {
      const root = newRoot({ modules: true, config: false });
      writeFileSync(root.at('/etc/kinstall/local-generator.mjs'), generator('local-generator'));
      writeFileSync(
        root.at('/etc/kinstall/config.mjs'),
        `export default { targetHooks: 'host', plugins: ['kinstall-test-generator', './local-generator.mjs'] };\n`,
      );
      const added = await run(binOf(pkg), [
        'add',
        '--root',
        root.root,
        '--layout',
        'compat',
        '--initramfs',
        name,
        V,
        kernel.image,
      ]);
      expect(added.start).toBe('kinstall: start: bundle, code cache accepted');
      expect(added.exitCode, added.stderr).toBe(0);
      expect(readFileSync(root.at(`/boot/initramfs-${V}.img`), 'utf8')).toBe(`${name} for ${V}`);
    }
  });
});
