// Argument decoding shared by kinstall and installkernel: argv → options and positionals → a Request.
// Every mistake is one EUSAGE line (exit 2) that points at --help.
import { describe, expect, it } from 'vitest';
import { KinstallError } from '../../src/core/errors.js';
import { buildRequest, parseCommandLine, refuseOptions } from '../../src/cli/options.js';

/** What a call threw: kinstall's error, or a test failure naming what came instead. */
function thrownBy(run: () => unknown): KinstallError {
  try {
    run();
  } catch (error) {
    if (error instanceof KinstallError) return error;
    throw new Error(`expected a KinstallError, got ${String(error)}`);
  }
  throw new Error('expected a KinstallError, nothing was thrown');
}

describe('parseCommandLine', () => {
  it('separates options from positionals wherever they stand, short and long, = or a separate value', () => {
    const parsed = parseCommandLine([
      'add',
      '-v',
      '--root=/mnt/gentoo',
      '6.6.1-gentoo',
      '--layout',
      'bls',
      '/boot/vmlinuz',
      '--dry-run',
    ]);
    expect(parsed.positionals).toEqual(['add', '6.6.1-gentoo', '/boot/vmlinuz']);
    expect(parsed.values).toEqual({ verbose: true, root: '/mnt/gentoo', layout: 'bls', 'dry-run': true });
  });

  it('collects every --initrd in order; -a is --all, -h is --help', () => {
    const parsed = parseCommandLine(['--initrd', 'ucode.img', '--initrd=main.img', '-a', '-h']);
    expect(parsed.values).toEqual({ initrd: ['ucode.img', 'main.img'], all: true, help: true });
    expect(parsed.positionals).toEqual([]);
  });

  it('takes everything after -- as positionals, even what looks like an option', () => {
    expect(parseCommandLine(['remove', '--', '--not-an-option']).positionals).toEqual(['remove', '--not-an-option']);
  });

  it.each([
    ['an unknown option', ['add', '--lay-out', 'bls'], /'--lay-out'/],
    ['a value for a flag', ['--dry-run=yes'], /'--dry-run'/],
    ['no value for an option that takes one', ['add', '--root'], /'--root <value>' argument missing/],
  ])('refuses %s with one EUSAGE line pointing at --help', (_name, argv, names) => {
    const error = thrownBy(() => parseCommandLine(argv));
    expect(error.code).toBe('EUSAGE');
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(names);
    expect(error.message).toMatch(/ \(see --help\)$/);
    expect(error.message).not.toContain('\n');
  });
});

describe('refuseOptions', () => {
  it("lets through a command's own options and refuses the first foreign one by name", () => {
    const { values } = parseCommandLine(['list', '--json', '--root', '/mnt']);
    expect(() => refuseOptions(values, ['keep', 'initrd', 'all'], 'list')).not.toThrow();
    const withKeep = parseCommandLine(['remove', '--keep', '2', '6.1.0']).values;
    const error = thrownBy(() => refuseOptions(withKeep, ['initrd', 'keep'], 'remove'));
    expect(error.code).toBe('EUSAGE');
    expect(error.message).toBe('--keep is not an option of remove (see --help)');
  });
});

describe('buildRequest', () => {
  it('without options: the host root, every switch off, no overrides', () => {
    expect(buildRequest({}, '/home/admin')).toEqual({
      root: '/',
      dryRun: false,
      verbose: false,
      json: false,
      force: false,
      cwd: '/home/admin',
      overrides: {
        layout: undefined,
        initrdGenerator: undefined,
        bootDir: undefined,
        bootRoot: undefined,
        cmdline: undefined,
        keep: undefined,
        configFile: undefined,
      },
    });
  });

  it('maps each option to its setting; relative --root and --config resolve against the working directory', () => {
    const { values } = parseCommandLine([
      '--root',
      'mnt/gentoo',
      '--config',
      '../kinstall.json',
      '--layout',
      'systemd-boot',
      '--initramfs',
      'none',
      '--boot-dir',
      '/boot',
      '--esp',
      '/efi',
      '--cmdline',
      'root=/dev/vda2 ro',
      '--keep',
      '3',
      '--dry-run',
      '--json',
      '--force',
      '-v',
    ]);
    expect(buildRequest(values, '/srv/build')).toEqual({
      root: '/srv/build/mnt/gentoo',
      dryRun: true,
      verbose: true,
      json: true,
      force: true,
      cwd: '/srv/build',
      overrides: {
        layout: 'systemd-boot',
        initrdGenerator: 'none',
        bootDir: '/boot',
        bootRoot: '/efi',
        cmdline: 'root=/dev/vda2 ro',
        keep: 3,
        configFile: '/srv/kinstall.json',
      },
    });
  });

  it("a boot dir given as installkernel's 4th positional wins over --boot-dir", () => {
    expect(buildRequest({ 'boot-dir': '/boot' }, '/', '/mnt/boot').overrides.bootDir).toBe('/mnt/boot');
  });

  it.each(['0', '12'])('--keep %s is a whole number', (keep) => {
    expect(buildRequest({ keep }, '/').overrides.keep).toBe(Number(keep));
  });

  it.each(['-1', '2.5', 'three', '', '3 '])('refuses --keep "%s" with EUSAGE quoting it', (keep) => {
    const error = thrownBy(() => buildRequest({ keep }, '/'));
    expect(error.code).toBe('EUSAGE');
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(`--keep takes a whole number, found "${keep}"`);
  });
});
