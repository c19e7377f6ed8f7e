// The dracut generator's compressor: without one in dracut's config, the one the staged kernel
// unpacks fastest (zstd with RD_ZSTD, else lz4, else gzip, else none), never one its config lacks;
// a compress= in dracut's config wins. Real dracut on the real Debian kernel, whose config is
// edited in the neutral location; the verdict is the magic of the initramfs it really wrote.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readInitramfsLayout } from '../../src/core/system/initramfs-format.js';
import { execa } from 'execa';
import { kinstall, kinstallBin } from '../helpers/cli.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots, type TestRoot } from '../helpers/root.js';

const kernel = testKernel();
const V = kernel.version;
const newRoot = useScratchRoots();

/** A root with the kernel staged in the neutral location, its config's RD_ options edited. */
function stagedRoot(options: Record<string, 'y' | 'n'>): TestRoot {
  const r = newRoot({ modules: true });
  copyFileSync(kernel.image, r.at(`/lib/modules/${V}/vmlinuz`));
  copyFileSync(kernel.systemMap, r.at(`/lib/modules/${V}/System.map`));
  let text = readFileSync(kernel.config, 'utf8');
  for (const [option, value] of Object.entries(options)) {
    text = text.replace(new RegExp(`^(CONFIG_${option}=.*|# CONFIG_${option} is not set)\\n`, 'm'), '');
    text += value === 'n' ? `# CONFIG_${option} is not set\n` : `CONFIG_${option}=${value}\n`;
  }
  writeFileSync(r.at(`/lib/modules/${V}/config`), text);
  return r;
}

/** Installs with dracut and returns the formats of the initramfs's parts, as the kernel walks them. */
async function installedFormats(r: TestRoot): Promise<string[]> {
  const result = await kinstall(['add', '--root', r.root, '--layout', 'compat', '--initramfs', 'dracut', V]);
  expect(result.exitCode, result.stderr).toBe(0);
  expect(result.stderr).toMatch(/kinstall: initramfs generated in [0-9.]+ s/);
  const layout = readInitramfsLayout(readFileSync(r.at(`/boot/initramfs-${V}.img`)));
  if ('corrupt' in layout) throw new Error(layout.corrupt);
  return layout.parts.map((p) => p.format);
}

describe('the initramfs compressor', () => {
  it('zstd for a kernel with RD_ZSTD, said in the progress line', async () => {
    const root = stagedRoot({});
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'dracut', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain(`kinstall: generating the initramfs with dracut (zstd, the fastest ${V} unpacks)`);
    const layout = readInitramfsLayout(readFileSync(root.at(`/boot/initramfs-${V}.img`)));
    expect('parts' in layout && layout.parts.at(-1)?.format).toBe('zstd');
  });

  it('lz4 for a kernel without RD_ZSTD, gzip without RD_LZ4 too', async () => {
    expect((await installedFormats(stagedRoot({ RD_ZSTD: 'n' }))).at(-1)).toBe('lz4');
    expect((await installedFormats(stagedRoot({ RD_ZSTD: 'n', RD_LZ4: 'n' }))).at(-1)).toBe('gzip');
  });

  it('none (a plain cpio) for a kernel that unpacks none of them, rather than one it lacks', async () => {
    const root = stagedRoot({ RD_ZSTD: 'n', RD_LZ4: 'n', RD_GZIP: 'n' });
    const formats = await installedFormats(root);
    expect(formats.length).toBeGreaterThan(0);
    expect(
      formats.every((f) => f === 'none'),
      formats.join(' '),
    ).toBe(true);
  });

  it("a compress= in dracut's config wins over kinstall's choice", async () => {
    const root = stagedRoot({});
    writeFileSync(root.at('/etc/dracut-empty.conf.d/10-gzip.conf'), 'compress="gzip"\n');
    const result = await kinstall(['add', '--root', root.root, '--layout', 'compat', '--initramfs', 'dracut', V]);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toContain('kinstall: generating the initramfs with dracut (compressor from its config)');
    const layout = readInitramfsLayout(readFileSync(root.at(`/boot/initramfs-${V}.img`)));
    expect('parts' in layout && layout.parts.at(-1)?.format).toBe('gzip');
  });

  it('on a terminal, progress is one line redrawn in place with the elapsed time', async () => {
    const root = stagedRoot({});
    // script(1) gives kinstall a pseudo-terminal for stdout and stderr; its output is the terminal's.
    const command = ['node', kinstallBin, 'add', '--root', root.root, '--layout', 'compat', '--initramfs', 'dracut', V].join(' ');
    const run = await execa('script', ['-qec', command, '/dev/null'], { reject: false, stdin: 'ignore' });
    expect(run.exitCode, run.stdout).toBe(0);
    const redraw = '\r\x1b[K';
    const draws = run.stdout.split(redraw).slice(1);
    expect(draws.length, run.stdout).toBeGreaterThan(1);
    expect(
      draws.slice(0, -1).every((d) => /^kinstall: dracut \[[0-9.]+ s\] /.test(d)),
      run.stdout,
    ).toBe(true);
    expect(draws.at(-1)).toMatch(/^kinstall: initramfs generated in [0-9.]+ s/);
  });
});
