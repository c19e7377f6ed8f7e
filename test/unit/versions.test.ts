// Kernel release strings: which ones kinstall accepts as file names, and the order releases sort in
// (newest staged kernel, list, prune). Pure functions, tested directly.
import { describe, expect, it } from 'vitest';
import { KinstallError } from '../../src/core/errors.js';
import { checkVersionString, compareVersions } from '../../src/core/system/versions.js';

const sign = (n: number) => Math.sign(n);

describe('compareVersions', () => {
  it.each([
    ['6.1.10', '6.1.9'],
    ['6.10.0', '6.9.12'],
    ['10.0', '9.99'],
    ['6.1.1', '6.1'],
    ['6.2', '6.2-rc1'],
    ['6.2-rc2', '6.2-rc1'],
    ['6.2-rc10', '6.2-rc9'],
    ['6.2-gentoo', '6.2-rc3'],
    ['6.1.0-gentoo', '6.1.0'],
    ['6.1.0-57-cloud-amd64', '6.1.0-9-cloud-amd64'],
    ['6.6.1-gentoo', '6.6.1-dist'],
  ])('%s sorts after %s, and the other way round before it', (newer, older) => {
    expect(sign(compareVersions(newer, older))).toBe(1);
    expect(sign(compareVersions(older, newer))).toBe(-1);
  });

  it('a release equals itself', () => {
    for (const v of ['6.1.0-57-cloud-amd64', '6.2-rc1', '5.15.0', 'x']) expect(compareVersions(v, v)).toBe(0);
  });

  it('sorts a mixed list oldest first: numbers as numbers, -rc before its release, a suffix after it', () => {
    const shuffled = ['6.2', '6.1.10', '5.15.0', '6.2-rc1', '6.1.9-gentoo', '6.1.9', '6.2-rc10', '6.2-rc2'];
    expect([...shuffled].sort(compareVersions)).toEqual([
      '5.15.0',
      '6.1.9',
      '6.1.9-gentoo',
      '6.1.10',
      '6.2-rc1',
      '6.2-rc2',
      '6.2-rc10',
      '6.2',
    ]);
  });
});

describe('checkVersionString', () => {
  it.each(['6.1.0-57-cloud-amd64', '6.6.1-gentoo-dist', '6.2.0-rc1+', '5.15.0_p1', 'a'.repeat(64)])('accepts %s', (version) => {
    expect(() => checkVersionString(version)).not.toThrow();
  });

  const refusals: Array<[string, string, string]> = [
    ['empty', '', 'it is empty'],
    ['65 bytes', 'a'.repeat(65), 'it is longer than 64 bytes'],
    ['33 two-byte characters (66 bytes)', 'é'.repeat(33), 'it is longer than 64 bytes'],
    ['a slash', '6.1/../../etc', 'it contains "/"'],
    ['a traversal', '6.1..0', 'it contains ".."'],
    ['a space', '6.1 gentoo', 'it contains whitespace or control characters'],
    ['a newline', '6.1\ngentoo', 'it contains whitespace or control characters'],
    ['a quote and a tab', '6.1"\t', 'it contains whitespace or control characters'],
    ['a control byte', '6.1\u0007', 'it contains whitespace or control characters'],
    ['a leading dash', '-6.1', 'it must not start with "-" or "."'],
    ['a leading dot', '.6.1', 'it must not start with "-" or "."'],
  ];
  it.each(refusals)('refuses %s with EBADVERSION (exit 3) saying why', (_name, version, why) => {
    let thrown: unknown;
    try {
      checkVersionString(version);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KinstallError);
    const error = thrown as KinstallError;
    expect(error.code).toBe('EBADVERSION');
    expect(error.exitCode).toBe(3);
    expect(error.message).toMatch(new RegExp(`^invalid kernel version ".*": ${why.replace(/[".]/g, '\\$&')}$`));
    expect(error.message).not.toMatch(/\p{Cc}/u);
  });

  it('shows an unprintable release escaped, so the message stays one line', () => {
    expect(() => checkVersionString('6.1\ngentoo')).toThrow(
      'invalid kernel version "6.1\\ngentoo": it contains whitespace or control characters',
    );
    expect(() => checkVersionString('6.1"\t')).toThrow(
      'invalid kernel version "6.1\\"\\t": it contains whitespace or control characters',
    );
  });
});
