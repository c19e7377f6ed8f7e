// quick-fs answers as fs/promises does, results and rejections alike (code, syscall, path), for
// each probe kinstall makes through it, on real files: a link, a directory, a missing path.
import * as promises from 'node:fs/promises';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as quick from '../../src/core/quick-fs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-quick-fs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'sub'));
writeFileSync(path.join(dir, 'sub/file'), 'content\n', { mode: 0o640 });
symlinkSync('sub/file', path.join(dir, 'link'));
const missing = path.join(dir, 'missing/file');

/** What a promise gives: its value, or the error's code, syscall and path. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    (value) => ({ value }),
    (error: NodeJS.ErrnoException) => ({ code: error.code, syscall: error.syscall, path: error.path }),
  );

const probes: Array<[string, (fs: typeof promises) => Promise<unknown>]> = [
  ['stat', (fs) => fs.stat(path.join(dir, 'link')).then((s) => [s.isFile(), s.size, s.mode, s.ino])],
  ['lstat', (fs) => fs.lstat(path.join(dir, 'link')).then((s) => [s.isSymbolicLink(), s.ino])],
  ['stat, missing', (fs) => fs.stat(missing)],
  ['lstat, missing', (fs) => fs.lstat(missing)],
  ['readdir', (fs) => fs.readdir(dir).then((names) => names.sort())],
  [
    'readdir, with file types',
    (fs) => fs.readdir(dir, { withFileTypes: true }).then((d) => d.map((e) => [e.name, e.isDirectory()]).sort()),
  ],
  ['readdir, not a directory', (fs) => fs.readdir(path.join(dir, 'sub/file'))],
  ['readlink', (fs) => fs.readlink(path.join(dir, 'link'))],
  ['readlink, not a link', (fs) => fs.readlink(path.join(dir, 'sub'))],
  ['realpath', (fs) => fs.realpath(path.join(dir, 'link'))],
  ['realpath, missing', (fs) => fs.realpath(missing)],
  ['readFile, utf8', (fs) => fs.readFile(path.join(dir, 'link'), 'utf8')],
  ['readFile, bytes', (fs) => fs.readFile(path.join(dir, 'sub/file')).then((b) => b.toString('hex'))],
  ['readFile, a directory', (fs) => fs.readFile(path.join(dir, 'sub'))],
  ['access X_OK', (fs) => fs.access(path.join(dir, 'sub/file'), promises.constants.X_OK)],
  ['access, missing', (fs) => fs.access(missing)],
  ['statfs', (fs) => fs.statfs(dir).then((s) => s.type)],
];

describe('quick-fs', () => {
  it.each(probes)('%s: the same outcome as fs/promises', async (_name, probe) => {
    const expected = await outcome(probe(promises));
    expect(await outcome(probe(quick as unknown as typeof promises))).toEqual(expected);
  });

  it('a failure is a rejection, never a throw at the call', () => {
    let returned: Promise<unknown> | undefined;
    expect(() => (returned = quick.stat(missing))).not.toThrow();
    return expect(returned).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
