// What a hook of kinstall's own protocol declares about itself in its first lines, so kinstall can
// skip it without starting a process that would do nothing: `# kinstall-phases: preinst` (the
// phases it acts in; without the line, every phase) and `# kinstall-needs: dkms` (programs that
// must be installed in the target, on the hooks' PATH). The hook keeps its own checks: a
// declaration only saves the process.
import { closeSync, openSync, readSync } from 'node:fs';
import { access, constants } from '../../quick-fs.js';
import path from 'node:path';
import type { Context } from '../../context.js';
import type { HookPhase } from './protocols.js';

/** Declarations are looked for in the file's first bytes only (a script's header). */
const HEAD_BYTES = 4096;
const DECLARATION = /^#\s*kinstall-(phases|needs):(.*)$/;
const PHASES = new Set<string>(['preinst', 'postinst', 'prerm', 'postrm']);

export interface HookDeclarations {
  /** The phases it acts in; undefined: every phase. */
  phases?: HookPhase[];
  /** Programs it needs in the target. */
  needs: string[];
}

export async function readHookDeclarations(file: string): Promise<HookDeclarations> {
  // One small read, made by the synchronous calls as quick-fs makes its probes: through the thread
  // pool it is three round trips, slow while find(1) holds the other core (startIndexCheck).
  const fd = openSync(file, 'r');
  let head: string;
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const bytesRead = readSync(fd, buffer, 0, HEAD_BYTES, 0);
    head = buffer.subarray(0, bytesRead).toString('utf8');
  } finally {
    closeSync(fd);
  }
  const declared: HookDeclarations = { needs: [] };
  for (const line of head.split('\n')) {
    const match = DECLARATION.exec(line.trim());
    if (!match) continue;
    const words = (match[2] ?? '')
      .trim()
      .split(/[\s,]+/)
      .filter(Boolean);
    // A phases line naming anything but a phase is not trusted to skip the hook anywhere.
    if (match[1] === 'phases' && words.every((w) => PHASES.has(w))) declared.phases = words as HookPhase[];
    if (match[1] === 'needs') declared.needs.push(...words.filter((w) => !w.includes('/')));
  }
  return declared;
}

const isExecutable = (file: string) =>
  access(file, constants.X_OK).then(
    () => true,
    () => false,
  );

/** Whether a program is installed in the target: an executable in one of `searchPath`'s directories. */
async function installedInTarget(ctx: Context, program: string, searchPath: string): Promise<boolean> {
  for (const dir of searchPath.split(':')) {
    if (dir && (await isExecutable(ctx.paths.under(path.join(dir, program))))) return true;
  }
  return false;
}

/** Why a kinstall hook need not start in this phase by its own declarations, or undefined. */
export async function declaredSkipReason(
  ctx: Context,
  file: string,
  phase: HookPhase,
  searchPath: string,
): Promise<string | undefined> {
  const declared = await readHookDeclarations(file);
  if (declared.phases && !declared.phases.includes(phase))
    return `it acts only in ${declared.phases.join(', ') || 'no phase'} (its "# kinstall-phases:" line)`;
  for (const program of declared.needs) {
    if (!(await installedInTarget(ctx, program, searchPath)))
      return `it needs ${program}, which is not installed in ${ctx.paths.root} (its "# kinstall-needs:" line)`;
  }
  return undefined;
}
