// "No step twice": hooks other packages ship that redo a step kinstall does itself, inside its
// transaction. Skipped by default with the reason shown; `runRedundant` names those to run anyway.
import type { HookProtocol } from './protocols.js';

/** kinstall's steps a hook may redo; `history` is the line in /var/log/installkernel.log. */
export type OwnStep = 'depmod' | 'place' | 'bootloader' | 'history' | 'sign';

interface RedundantRule {
  name: RegExp;
  protocols: HookProtocol[];
  step: OwnStep;
  what: string;
  /** Only for this layout (as hooks see it in *_LAYOUT); every layout when absent. */
  layout?: string;
  /** Only when kinstall signs for Secure Boot itself (secureboot.key is set). */
  whenSigning?: boolean;
}

const RULES: RedundantRule[] = [
  {
    name: /^50-depmod\.install$/,
    protocols: ['kernel-install'],
    step: 'depmod',
    what: 'runs depmod, which kinstall runs in its depmod step',
  },
  {
    name: /^(90-loaderentry|90-compat|90-uki-copy)\.install$/,
    protocols: ['kernel-install', 'installkernel'],
    step: 'place',
    what: 'copies the kernel into the boot directory, which the layout places through the transaction',
  },
  {
    name: /^91-grub-mkconfig\.install$/,
    protocols: ['kernel-install', 'installkernel'],
    step: 'bootloader',
    what: 'runs grub-mkconfig, which the grub layout runs in its activate step',
    layout: 'grub',
  },
  {
    name: /^zz-update-grub$/,
    protocols: ['installkernel', 'run-parts'],
    step: 'bootloader',
    what: 'runs update-grub, which the grub layout runs in its activate step',
    layout: 'grub',
  },
  {
    name: /^91-sbctl\.install$/,
    protocols: ['kernel-install', 'installkernel'],
    step: 'sign',
    what: 'signs the installed kernel or UKI with sbctl, which kinstall signs in its sign step',
    whenSigning: true,
  },
  {
    name: /^99-write-log\.install$/,
    protocols: ['installkernel', 'kernel-install'],
    step: 'history',
    what: 'appends to /var/log/installkernel.log, which kinstall writes itself',
  },
];

export interface Redundancy {
  step: OwnStep;
  what: string;
}

/**
 * The kinstall step a hook redoes for these layouts (`bls+compat` on a removal from both), or
 * undefined. `signing`: kinstall signs for Secure Boot in this run.
 */
export function redundancyOf(name: string, protocol: HookProtocol, layouts: string, signing = false): Redundancy | undefined {
  const inUse = layouts.split('+');
  const applies = (r: RedundantRule) => (r.layout === undefined || inUse.includes(r.layout)) && (!r.whenSigning || signing);
  const rule = RULES.find((r) => r.name.test(name) && r.protocols.includes(protocol) && applies(r));
  return rule ? { step: rule.step, what: rule.what } : undefined;
}
