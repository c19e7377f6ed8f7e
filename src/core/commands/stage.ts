// `kinstall stage`: a kbuild output tree into the neutral location, through the transaction.
import path from 'node:path';
import type { Context } from '../context.js';
import { KinstallError } from '../errors.js';
import { argumentPath } from '../paths.js';
import { inspectKernelImage } from '../system/kernel-image.js';
import { transactionFor } from '../transaction/transaction.js';
import {
  builtModuleCount,
  holdsModules,
  modulesSource,
  NEUTRAL_NAMES,
  planNeutralLocation,
  readBuildDir,
  placeModulesTree,
} from '../system/neutral-location.js';
import { checkVersionString } from '../system/versions.js';

export interface StageResult {
  version: string;
  directory: string;
  staged: string[];
  unchanged: string[];
  dryRun: boolean;
}

/**
 * A build whose modules.order lists modules, staged without them (no --modules-dir, none there
 * yet): said now, since the initramfs step of `kinstall add` cannot go on without them.
 */
async function warnModulesMissing(ctx: Context, buildDir: string, version: string): Promise<void> {
  const count = await builtModuleCount(buildDir);
  const directory = ctx.paths.moduleDir(version);
  if (count === 0 || (await holdsModules(directory))) return;
  ctx.log.warn(
    `the build has ${count} module(s) (modules.order) but ${directory} holds none: run make O=${buildDir} modules_install, ` +
      `or make modules_install INSTALL_MOD_PATH=DIR and kinstall stage --modules-dir DIR`,
  );
}

export async function stageBuild(ctx: Context, givenBuildDir: string, givenModulesDir?: string): Promise<StageResult> {
  const buildDir = await argumentPath(ctx, givenBuildDir, 'ENOBUILD');
  const modulesDir = givenModulesDir === undefined ? undefined : await argumentPath(ctx, givenModulesDir, 'ENOBUILD');
  const sources = await readBuildDir(buildDir);
  checkVersionString(sources.version);
  const info = await inspectKernelImage(sources.image);
  if (info.version && info.version !== sources.version && !ctx.request.force) {
    throw new KinstallError('EVERSIONMISMATCH', { version: sources.version, found: info.version }, [
      `kernel.release says ${sources.version}; rebuild the image`,
    ]);
  }
  const plan = await planNeutralLocation(ctx, sources);
  const modules = modulesDir ? await modulesSource(modulesDir, sources.version) : undefined;
  const directory = ctx.paths.moduleDir(sources.version);
  const staged = plan.place.map((p) => path.basename(p.to));
  const unchanged = Object.values(NEUTRAL_NAMES).filter(
    (name) =>
      !staged.includes(name) &&
      (name !== NEUTRAL_NAMES.systemMap || sources.systemMap) &&
      (name !== NEUTRAL_NAMES.config || sources.config),
  );
  if (!sources.systemMap) ctx.log.warn(`${buildDir} has no System.map (did make finish?): none is staged for ${sources.version}`);
  if (ctx.request.dryRun) {
    for (const item of plan.place) ctx.log.info(`would place ${item.from} -> ${item.to}`);
    if (modules) ctx.log.info(`would copy modules ${modules} -> ${directory}`);
  } else {
    const txn = transactionFor(ctx);
    try {
      await txn.apply(plan);
      if (modules) await placeModulesTree(ctx, txn, modules, sources.version);
    } catch (error) {
      await txn.rollback();
      throw KinstallError.fromStep('stage', error);
    }
    await txn.finish();
  }
  if (!modules) await warnModulesMissing(ctx, buildDir, sources.version);
  return { version: sources.version, directory, staged, unchanged, dryRun: ctx.request.dryRun };
}
