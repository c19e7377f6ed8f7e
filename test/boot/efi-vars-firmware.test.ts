// The try-once test helpers against the real firmware, in one QEMU run across a reboot: Boot####,
// BootOrder and BootNext written into the vars file are what OVMF boots by; BootNext is used once
// (the bad kernel panics, panic=1 reboots), then BootOrder's first entry boots; and the firmware's
// own writes (BootNext deleted) are read back from the vars file as the efibootmgr fake's state.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildBootDisk, listBootDisk } from '../helpers/boot-disk.js';
import { bootSequence, describeSequence, freshVars } from '../helpers/boot.js';
import { readVarsToFakeState, writeFakeStateToVars, type FakeState } from '../helpers/efi-vars.js';
import { badTryInitramfs, goodTryInitramfs } from '../helpers/initramfs.js';
import { testKbuild } from '../helpers/kbuild.js';
import { testKernel } from '../helpers/kernel.js';
import { useScratchRoots } from '../helpers/root.js';

describe('OVMF boots by the variables the helpers write', () => {
  const roots = useScratchRoots();

  it('BootNext runs the bad kernel once; after its panic BootOrder runs the good one; BootNext is gone', async () => {
    const r = roots({ config: false });
    const esp = r.at('/efi');
    mkdirSync(r.at('/efi/EFI/Test'), { recursive: true });
    for (const name of ['a.efi', 'b.efi']) copyFileSync(testKernel().image, r.at(`/efi/EFI/Test/${name}`));
    writeFileSync(r.at('/efi/EFI/Test/a.img'), goodTryInitramfs(testKbuild().out));
    writeFileSync(r.at('/efi/EFI/Test/b.img'), badTryInitramfs());
    const disk = buildBootDisk({ from: esp, out: r.at('/disk.img') });
    expect(listBootDisk(disk).sort()).toEqual(['/EFI/Test/a.efi', '/EFI/Test/a.img', '/EFI/Test/b.efi', '/EFI/Test/b.img']);

    const vars = freshVars(r.at('/vars.fd'));
    const state: FakeState = {
      bootCurrent: '0000',
      timeout: 0,
      bootOrder: ['0001', '0002'],
      entries: {
        '0001': { label: 'Test A', loader: '\\EFI\\Test\\a.efi', args: 'initrd=\\EFI\\Test\\a.img console=ttyS0 kinstall.tag=A' },
        '0002': {
          label: 'Test B',
          loader: '\\EFI\\Test\\b.efi',
          args: 'initrd=\\EFI\\Test\\b.img console=ttyS0 panic=1 kinstall.tag=B',
        },
      },
      bootNext: '0002',
    };
    writeFakeStateToVars(state, vars);

    const run = await bootSequence({
      disk,
      vars,
      log: r.at('/serial.log'),
      // Any boot that comes up ends it, as do two panics: a wrong order fails at once, not at the timeout.
      until: (boots) => boots.some((b) => b.reachedMarker) || boots.filter((b) => b.panicked).length >= 2,
      timeoutSeconds: 400,
    });
    process.stderr.write(`efi-vars firmware sequence: ${run.boots.length} boots in ${run.seconds.toFixed(1)} s\n`);
    const why = describeSequence(run);
    expect(run.ended, why).toBe('until');
    expect(
      run.boots.map((b) => ({ tag: b.tag, option: b.bootOption, panicked: b.panicked, marker: b.reachedMarker })),
      why,
    ).toEqual([
      { tag: 'B', option: '0002', panicked: true, marker: false },
      { tag: 'A', option: '0001', panicked: false, marker: true },
    ]);
    expect(run.boots[0]!.cmdline).toBe(state.entries['0002']!.args);

    const after = readVarsToFakeState(vars);
    expect(after.bootNext, why).toBeUndefined();
    expect(after.bootOrder.slice(0, 2)).toEqual(['0001', '0002']);
    expect(after.entries['0001']).toMatchObject(state.entries['0001']!);
    expect(after.entries['0002']).toMatchObject(state.entries['0002']!);

    // Written again over what the firmware wrote (a reboot after `kinstall confirm`): Boot0002 now
    // good, first in BootOrder; the firmware's own entries stay as they were, after ours.
    const good = { ...after.entries['0002']!, args: 'initrd=\\EFI\\Test\\a.img console=ttyS0 kinstall.tag=C' };
    const rest = after.bootOrder.slice(2);
    writeFakeStateToVars({ ...after, bootOrder: ['0002', '0001', ...rest], entries: { ...after.entries, '0002': good } }, vars);
    const again = await bootSequence({
      disk,
      vars,
      log: r.at('/serial-again.log'),
      until: (boots) => boots.length >= 1 && (boots[0]!.reachedMarker || boots[0]!.panicked),
      timeoutSeconds: 300,
    });
    const whyAgain = describeSequence(again);
    expect(
      again.boots.map((b) => [b.tag, b.bootOption, b.reachedMarker]),
      whyAgain,
    ).toEqual([['C', '0002', true]]);
    expect(readVarsToFakeState(vars).bootOrder).toEqual(['0002', '0001', ...rest]);
  }, 600_000);
});
