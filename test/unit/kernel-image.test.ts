// Kernel image recognition: the real Debian bzImage, and synthetic headers of the other formats
// built byte by byte from their documented layouts.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KinstallError } from '../../src/core/errors.js';
import { inspectKernelImage, readKernelVersionFromBzImage } from '../../src/core/system/kernel-image.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots } from '../helpers/root.js';

const kernel = testKernel();
const root = useScratchRoots({ after: 'all' })({ config: false });

function file(content: Buffer): string {
  const name = root.at(`/image-${Math.random().toString(36).slice(2)}`);
  writeFileSync(name, content);
  return name;
}

/** A minimal PE: MZ, e_lfanew at 0x3c, "PE\0\0", a COFF header and a section table. */
function peImage(sections: Array<{ name: string; offset: number; data: string }>, size = 0x2000): Buffer {
  const buffer = Buffer.alloc(size);
  buffer.write('MZ', 0, 'latin1');
  const pe = 0x80;
  buffer.writeUInt32LE(pe, 0x3c);
  buffer.write('PE\0\0', pe, 'latin1');
  buffer.writeUInt16LE(0x8664, pe + 4);
  buffer.writeUInt16LE(sections.length, pe + 6);
  buffer.writeUInt16LE(0, pe + 20);
  sections.forEach((s, i) => {
    const at = pe + 24 + i * 40;
    buffer.write(s.name, at, 'latin1');
    buffer.writeUInt32LE(s.data.length, at + 16);
    buffer.writeUInt32LE(s.offset, at + 20);
    buffer.write(s.data, s.offset, 'latin1');
  });
  return buffer;
}

async function refusal(content: Buffer): Promise<KinstallError> {
  const error: unknown = await inspectKernelImage(file(content)).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof KinstallError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return error;
}

describe('inspectKernelImage', () => {
  it('reads the real bzImage: version from the setup header, x86_64, EFI stub', async () => {
    const info = await inspectKernelImage(kernel.image);
    expect(info).toEqual({
      path: kernel.image,
      size: readFileSync(kernel.image).length,
      format: 'bzImage',
      arch: 'x86_64',
      version: kernel.version,
      efiStub: true,
    });
  });

  it('follows the version pointer at 0x20E (+0x200) of a setup header', () => {
    const header = Buffer.alloc(0x1000);
    header.write('HdrS', 0x202, 'latin1');
    header.writeUInt16LE(0x0c00 - 0x200, 0x20e);
    header.write('6.9.1-custom (me@box) #3 SMP PREEMPT_DYNAMIC\0', 0x0c00, 'latin1');
    expect(readKernelVersionFromBzImage(header)).toBe('6.9.1-custom');
    header.writeUInt16LE(0, 0x20e);
    expect(readKernelVersionFromBzImage(header)).toBeUndefined();
  });

  it('recognises an arm64 Image (magic ARM\\x64 at 0x38), with and without an EFI stub', async () => {
    const plain = Buffer.alloc(0x3000);
    plain.write('ARM\x64', 0x38, 'latin1');
    plain.write('Linux version 6.6.7-arm64 (builder@host) (gcc 12) #1 SMP\0', 0x2000, 'latin1');
    expect(await inspectKernelImage(file(plain))).toMatchObject({
      format: 'arm64-image',
      arch: 'arm64',
      version: '6.6.7-arm64',
      efiStub: false,
    });

    const stub = peImage([{ name: '.text', offset: 0x1000, data: 'code' }], 0x3000);
    stub.write('ARM\x64', 0x38, 'latin1');
    stub.write('Linux version 6.6.8-arm64 (b@h) #1\0', 0x2000, 'latin1');
    expect(await inspectKernelImage(file(stub))).toMatchObject({
      format: 'arm64-image',
      arch: 'arm64',
      version: '6.6.8-arm64',
      efiStub: true,
    });
  });

  it('recognises a UKI by its .linux section and reads .uname', async () => {
    const uki = peImage([
      { name: '.uname', offset: 0x1000, data: '6.1.0-99-amd64' },
      { name: '.linux', offset: 0x1100, data: 'MZ...' },
    ]);
    expect(await inspectKernelImage(file(uki))).toMatchObject({ format: 'uki', version: '6.1.0-99-amd64', efiStub: true });
  });

  it('takes a bare PE/EFI-stub image as an EFI stub and an ELF vmlinux by its banner', async () => {
    const pe = peImage([{ name: '.text', offset: 0x1000, data: 'Linux version 6.2.0-efi (x@y) #1\0' }]);
    expect(await inspectKernelImage(file(pe))).toMatchObject({ format: 'pe', version: '6.2.0-efi', efiStub: true });

    const elf = Buffer.alloc(0x2000);
    elf.write('\x7fELF', 0, 'latin1');
    elf.writeUInt16LE(0xb7, 18);
    elf.write('Linux version 6.3.0-vmlinux (x@y) #1\0', 0x1000, 'latin1');
    expect(await inspectKernelImage(file(elf))).toMatchObject({
      format: 'vmlinux',
      arch: 'arm64',
      version: '6.3.0-vmlinux',
      efiStub: false,
    });
  });

  it('refuses what is not a kernel with ENOTKERNEL (exit 3), a missing file with ENOIMAGE', async () => {
    expect((await refusal(Buffer.alloc(0))).code).toBe('ENOTKERNEL');
    expect((await refusal(Buffer.from('#!/bin/sh\necho hello\n'.repeat(50)))).args.why).toBe(
      'no bzImage, arm64, ELF or PE header',
    );
    expect((await refusal(readFileSync(kernel.image).subarray(0, 0x100))).args.why).toBe('too short to hold a kernel header');
    const noVersion = Buffer.from(readFileSync(kernel.image).subarray(0, 0x4000));
    noVersion.writeUInt16LE(0, 0x20e);
    expect((await refusal(noVersion)).args.why).toBe('bzImage header has no version string');
    const elfWithoutBanner = Buffer.alloc(0x1000);
    elfWithoutBanner.write('\x7fELF', 0, 'latin1');
    expect((await refusal(elfWithoutBanner)).exitCode).toBe(3);
    const missing = await inspectKernelImage(path.join(root.root, 'nothere')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(KinstallError);
    expect((missing as KinstallError).code).toBe('ENOIMAGE');
  });
});
