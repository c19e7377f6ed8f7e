// One error class, one registry of codes. Every failure a user can meet has a code here,
// a one-line message and a documented exit code.

/** Exit codes, one per class of failure (README, "Exit codes"). */
export const ExitCode = {
  ok: 0,
  usage: 2,
  badInput: 3,
  preflight: 4,
  rolledBack: 5,
  rollbackFailed: 6,
  /** The kernel is installed and bootable, but a postinst hook failed. */
  postinstFailed: 7,
  /** `kinstall verify`: the kernel and initramfs did not reach init in QEMU. */
  verifyFailed: 8,
  /** `installkernel --all`: some kernels were installed, others failed; each failed one was rolled back. */
  partial: 9,
} as const;
export type ExitClass = keyof typeof ExitCode;

interface CodeDefinition {
  exit: ExitClass;
  message: (args: Record<string, string>) => string;
}

const define = <T extends Record<string, CodeDefinition>>(codes: T): T => codes;

export const errorCodes = define({
  EUSAGE: { exit: 'usage', message: (a) => `${a.what}` },
  ECONFIG: { exit: 'badInput', message: (a) => `invalid configuration: ${a.what}` },
  ENOIMAGE: { exit: 'badInput', message: (a) => `kernel image not found: ${a.path}` },
  ENOTKERNEL: { exit: 'badInput', message: (a) => `not a kernel image: ${a.path} (${a.why})` },
  EVERSIONMISMATCH: {
    exit: 'badInput',
    message: (a) => `version ${a.version} does not match the image's version ${a.found} (use --force to install anyway)`,
  },
  EBADVERSION: { exit: 'badInput', message: (a) => `invalid kernel version "${a.version}": ${a.why}` },
  ENOVERSION: { exit: 'badInput', message: (a) => `cannot tell the kernel version: ${a.why}` },
  ENOSTAGED: {
    exit: 'badInput',
    message: (a) => `no staged kernel ${a.version}: ${a.path} is missing (give the image, or run kinstall stage)`,
  },
  ENOBUILD: { exit: 'badInput', message: (a) => `not a kernel build directory: ${a.dir} (${a.why})` },
  ENOSYSTEMMAP: { exit: 'badInput', message: (a) => `System.map not found: ${a.path}` },
  ENOINITRD: { exit: 'badInput', message: (a) => `initramfs not found: ${a.path}` },
  ENOTINSTALLED: { exit: 'badInput', message: (a) => `kernel ${a.version} is not installed in the ${a.layout} layout` },
  ERUNNING: { exit: 'badInput', message: (a) => `refusing to remove ${a.version}: it is the running kernel (use --force)` },
  EINSECURE: { exit: 'preflight', message: (a) => `refusing to use the ${a.what}: ${a.why}` },
  ELOCKED: {
    exit: 'preflight',
    message: (a) =>
      `another kinstall (pid ${a.pid}) still holds ${a.file} after ${a.seconds} s (raise lockTimeout, or wait for it to finish)`,
  },
  EPREFLIGHT: { exit: 'preflight', message: (a) => `${a.count} preflight check(s) failed: ${a.summary}` },
  EUNBOOTABLE: {
    exit: 'preflight',
    message: (a) =>
      `the config of ${a.version} cannot boot this target: ${a.count} kernel option(s) missing (use --force to install anyway)`,
  },
  EGENERATOR: {
    exit: 'preflight',
    message: (a) =>
      `${a.key ?? 'initrd_generator'}=${a.name}: kinstall has no such generator and no hook named after it would make the ${a.output ?? 'initramfs'}`,
  },
  ENOTRIAL: {
    exit: 'preflight',
    message: (a) =>
      `cannot install as a trial (--try) with layout ${a.layout}: ${a.why} (install without --try, or set tryOnce to false)`,
  },
  ETARGETHOOKS: {
    exit: 'preflight',
    message: (a) =>
      `the target's hooks cannot run inside ${a.root}: ${a.hooks} (set "targetHooks": "skip" to install without them)`,
  },
  ENOTPRODUCED: {
    exit: 'rolledBack',
    message: (a) =>
      `${a.key ?? 'initrd_generator'}=${a.name}: no hook left ${a.output ?? 'an initrd'} in the staging area; ${a.outcome}`,
  },
  ETOOL: { exit: 'rolledBack', message: (a) => `${a.tool} failed (${a.why}); ${a.outcome}` },
  EHOOK: { exit: 'rolledBack', message: (a) => `hook ${a.hook} failed with exit code ${a.status}; ${a.outcome}` },
  ESTEP: { exit: 'rolledBack', message: (a) => `${a.step} failed: ${a.why}; ${a.outcome}` },
  EROLLBACK: {
    exit: 'rollbackFailed',
    message: (a) => `rollback failed after ${a.cause}: ${a.why}; the boot dir may need repair by hand`,
  },
  EINTERRUPTED: { exit: 'rolledBack', message: (a) => `interrupted by ${a.signal}; ${a.outcome}` },
  EPOSTRM: { exit: 'postinstFailed', message: (a) => `kernel removed, but ${a.count} postrm hook(s) failed: ${a.hooks}` },
  EPOSTINST: { exit: 'postinstFailed', message: (a) => `kernel installed, but ${a.count} postinst hook(s) failed: ${a.hooks}` },
  ENOQEMU: { exit: 'preflight', message: (a) => `${a.tool} not found on PATH: install the Debian package ${a.package}` },
  EVERIFY: { exit: 'verifyFailed', message: (a) => `${a.version} did not boot in QEMU: ${a.why}` },
  EPARTIAL: {
    exit: 'partial',
    message: (a) =>
      `${a.failed} of ${a.total} kernels failed to install and were rolled back (${a.versions}); the others are installed`,
  },
  EJOURNAL: {
    exit: 'rollbackFailed',
    message: (a) =>
      `cannot use the journal of an interrupted run, ${a.file}: it ${a.why}; inspect it, and move it aside once the boot dir is checked`,
  },
  EPRUNE: { exit: 'postinstFailed', message: (a) => `kernel installed, but pruning old kernels failed: ${a.why}; ${a.outcome}` },
});
export type ErrorCode = keyof typeof errorCodes;

export class KinstallError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  /** What was found and how to fix it, one line each. */
  readonly details: string[];
  readonly args: Record<string, string>;

  constructor(code: ErrorCode, args: Record<string, string> = {}, details: string[] = [], options?: ErrorOptions) {
    super(errorCodes[code].message({ outcome: 'nothing was changed', ...args }), options);
    this.name = 'KinstallError';
    this.code = code;
    this.args = args;
    this.exitCode = ExitCode[errorCodes[code].exit];
    this.details = details;
  }

  /** The message without its outcome (`…; nothing was changed`), for quoting as the cause of another error. */
  get summary(): string {
    return errorCodes[this.code].message({ ...this.args, outcome: '' }).replace(/;\s*$/, '');
  }

  /** The same error with some message arguments replaced (the runner fills in the outcome). */
  withArgs(args: Record<string, string>): KinstallError {
    return new KinstallError(this.code, { ...this.args, ...args }, this.details, { cause: this.cause });
  }

  /** Any thrown value as a KinstallError of the step that threw it. */
  static fromStep(step: string, error: unknown): KinstallError {
    if (error instanceof KinstallError) return error;
    return new KinstallError('ESTEP', { step, why: errorMessage(error) }, [], { cause: error });
  }
}

export const isKinstallError = (error: unknown): error is KinstallError => error instanceof KinstallError;

/** The message of any thrown value; `firstLine` keeps only its first line (tools print long ones). */
export function errorMessage(error: unknown, options: { firstLine?: boolean } = {}): string {
  const message = error instanceof Error ? error.message : String(error);
  return options.firstLine ? (message.split('\n')[0] ?? '') : message;
}
