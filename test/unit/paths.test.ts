// The one rule for path arguments under --root (src/core/paths.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { asTargetPath, createPaths, locateArgument } from '../../src/core/paths.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'kinstall-paths-'));
const host = mkdtempSync(path.join(os.tmpdir(), 'kinstall-paths-host-'));
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(host, { recursive: true, force: true });
});

describe('asTargetPath: a boot dir as the target names it', () => {
  it('drops the root from a path given with it, and leaves any other path alone', () => {
    expect(asTargetPath(root, `${root}/boot`)).toBe('/boot');
    expect(asTargetPath(root, root)).toBe('/');
    expect(asTargetPath(root, '/boot')).toBe('/boot');
    expect(asTargetPath(root, `${root}-other/boot`)).toBe(`${root}-other/boot`);
    expect(asTargetPath('/', '/boot')).toBe('/boot');
  });
});

describe('locateArgument: inside the root as is, else inside the root when there, else the host', () => {
  const paths = createPaths(root, '/boot');
  mkdirSync(path.join(root, 'usr/src'), { recursive: true });
  writeFileSync(path.join(root, 'usr/src/bzImage'), 'k');
  writeFileSync(path.join(host, 'bzImage'), 'k');

  it('takes a path already inside the root as it is', async () => {
    expect(await locateArgument(paths, path.join(root, 'usr/src/bzImage'))).toEqual({
      found: path.join(root, 'usr/src/bzImage'),
      tried: [path.join(root, 'usr/src/bzImage')],
    });
  });
  it('reads a target path inside the root when it exists there', async () => {
    expect((await locateArgument(paths, '/usr/src/bzImage')).found).toBe(path.join(root, 'usr/src/bzImage'));
  });
  it('falls back to the host path, and reports both places when neither exists', async () => {
    expect((await locateArgument(paths, path.join(host, 'bzImage'))).found).toBe(path.join(host, 'bzImage'));
    expect(await locateArgument(paths, '/nowhere/bzImage')).toEqual({
      tried: [path.join(root, 'nowhere/bzImage'), '/nowhere/bzImage'],
    });
  });
});
