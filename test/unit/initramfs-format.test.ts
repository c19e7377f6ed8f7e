// The initramfs reader: compression magics, the parts of an early cpio + compressed archive, a cut
// cpio, and the end-to-end stream test with the real compressors.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createExec } from '../../src/core/exec.js';
import { createLogger } from '../../src/core/logger.js';
import { checkInitramfsFile, compressionAt, readInitramfsLayout } from '../../src/core/system/initramfs-format.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'kinstall-initramfs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(path.join(dir, 'init'), '#!/bin/sh\necho hello\n');
const cpio = execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: dir, input: 'init\n' });
const compress = (tool: string, ...args: string[]) => execFileSync(tool, args, { input: cpio });
const exec = createExec(createLogger({ verbose: false, quiet: true }), { PATH: process.env.PATH }, false);

describe('compressionAt', () => {
  it('knows every compression the kernel unpacks, by its magic', () => {
    expect(compressionAt(compress('gzip', '-c'))).toBe('gzip');
    expect(compressionAt(compress('zstd', '-q', '-c'))).toBe('zstd');
    expect(compressionAt(compress('xz', '-c', '--check=crc32'))).toBe('xz');
    expect(compressionAt(compress('xz', '-c', '--format=lzma'))).toBe('lzma');
    expect(compressionAt(compress('bzip2', '-c'))).toBe('bzip2');
    expect(compressionAt(compress('lz4', '-l', '-q', '-c'))).toBe('lz4');
    expect(compressionAt(Buffer.from([0x89, 0x4c, 0x5a, 0x4f, 0, 0x0d]))).toBe('lzo');
    expect(compressionAt(cpio)).toBeUndefined();
    // lz4's frame format (without -l) is not what the kernel unpacks.
    expect(compressionAt(compress('lz4', '-q', '-c'))).toBeUndefined();
  });
});

describe('readInitramfsLayout', () => {
  it('walks an early cpio, zero padding and a compressed archive', () => {
    const zstd = compress('zstd', '-q', '-c');
    const data = Buffer.concat([cpio, Buffer.alloc(512), zstd]);
    expect(readInitramfsLayout(data)).toEqual({
      parts: [
        { offset: 0, format: 'none' },
        { offset: cpio.length + 512, format: 'zstd' },
      ],
    });
    expect(readInitramfsLayout(cpio)).toEqual({ parts: [{ offset: 0, format: 'none' }] });
  });

  it('calls a cut cpio, an unknown magic and an empty file corrupt', () => {
    expect(readInitramfsLayout(cpio.subarray(0, 130))).toEqual({ corrupt: 'the cpio archive at byte 0 ends inside init' });
    expect(readInitramfsLayout(cpio.subarray(0, 150))).toEqual({
      corrupt: 'the cpio archive at byte 0 ends inside an entry header at byte 140',
    });
    expect(readInitramfsLayout(cpio.subarray(0, 60))).toEqual({
      corrupt: 'the cpio archive at byte 0 ends inside an entry header at byte 0',
    });
    expect(readInitramfsLayout(Buffer.from('hello world'))).toEqual({
      corrupt: 'byte 0 starts neither a cpio archive nor a compressed one the kernel knows (0x68656c6c)',
    });
    expect(readInitramfsLayout(Buffer.alloc(64))).toEqual({ corrupt: 'the file is empty' });
  });
});

describe('checkInitramfsFile', () => {
  const file = (name: string, data: Buffer) => {
    const p = path.join(dir, name);
    writeFileSync(p, data);
    return p;
  };

  it('passes whole streams, zero-padded ones too, and each compressor tests its own', async () => {
    for (const [name, data] of [
      ['a.gz', compress('gzip', '-c')],
      ['b.zst', Buffer.concat([compress('zstd', '-q', '-c'), Buffer.alloc(13)])],
      ['c.xz', compress('xz', '-c', '--check=crc32')],
      ['d.lz4', Buffer.concat([cpio, compress('lz4', '-l', '-q', '-c'), Buffer.alloc(4)])],
      ['e.bz2', compress('bzip2', '-c')],
    ] as const) {
      const result = await checkInitramfsFile(exec, file(name, data));
      expect(result.corrupt, name).toBeUndefined();
    }
  });

  it('finds a truncated stream through the compressor and names it', async () => {
    const zstd = compress('zstd', '-q', '-c');
    const result = await checkInitramfsFile(exec, file('cut.zst', Buffer.concat([cpio, zstd.subarray(0, zstd.length - 5)])));
    expect(result.formats).toEqual(['none', 'zstd']);
    expect(result.corrupt).toMatch(new RegExp(`^its zstd stream at byte ${cpio.length} does not decompress \\(zstd -t: .+\\)$`));
  });
});
