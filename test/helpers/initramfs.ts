// Hand-made initramfs images for verify tests: small, built in milliseconds, and boot-behaviour
// known exactly, unlike a dracut image whose output depends on its modules and the machine's speed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A static x86-64 ELF executable that calls pause(2) forever: an init that never prints a byte
 * and never exits (so the kernel never panics). 64-byte ELF header, one 56-byte program header
 * loading the whole file at 0x400000, then the code: mov eax, 34 (pause); syscall; jmp back.
 */
function silentInit(): Buffer {
  const code = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7]);
  const base = 0x400000n;
  const headers = 64 + 56;
  const elf = Buffer.alloc(headers + code.length);
  elf.write('\x7fELF', 0, 'latin1');
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf[6] = 1; // ELF version
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // EM_X86_64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(base + BigInt(headers), 24); // entry: the code
  elf.writeBigUInt64LE(64n, 32); // program headers right after the ELF header
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R+X
  elf.writeBigUInt64LE(base, 80);
  elf.writeBigUInt64LE(base, 88);
  elf.writeBigUInt64LE(BigInt(elf.length), 96);
  elf.writeBigUInt64LE(BigInt(elf.length), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  code.copy(elf, headers);
  return elf;
}

/** A newc cpio holding only /init = silentInit(): the kernel runs it, then the console stays quiet. */
export function silentInitramfs(): Buffer {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kinstall-silent-'));
  try {
    writeFileSync(path.join(tree, 'init'), silentInit(), { mode: 0o755 });
    return execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: tree, input: 'init\n' });
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}
