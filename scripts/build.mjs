// The build: tsc type-checks and emits dist/ (the core's modules, which scripts/bench.mjs and a
// debugger read one by one), then esbuild replaces the two bins with minified bundles (source maps
// beside them) whose code for a command is split into chunks loaded only when that command runs:
// `kinstall --version` parses one small file, not ~100 modules. The dependencies a command always
// needs (execa, winston, tmp-promise: ~270 small files, about 200 ms for Node to resolve and load
// one by one) are bundled into the command's chunk, cosmiconfig into a chunk of its own, loaded
// only when a config file exists.
// A second esbuild build makes the whole CLI one CommonJS script, dist/src/cli/cli.cjs, and the
// build writes V8's code cache for it (cli.cjs.cache): a run that does work compiles it from that
// cache (src/cli/start.ts), ~20 ms less than importing the ESM chunks. Node 20 has no
// module.enableCompileCache, hence vm.Script. Help, version and --verbose keep the ESM chunks.
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { build } from 'esbuild';

const top = path.resolve(import.meta.dirname, '..');
const outdir = path.join(top, 'dist/src/cli');

rmSync(path.join(top, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [path.join(top, 'node_modules/typescript/bin/tsc'), '-p', path.join(top, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
// The bins' own modules come from the bundles below, not from tsc.
rmSync(outdir, { recursive: true, force: true });

await build({
  absWorkingDir: top,
  entryPoints: ['src/cli/kinstall.ts', 'src/cli/installkernel.ts'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: true,
  // cosmiconfig's TypeScript loader would pull in TypeScript (a 3.5 MB chunk): it stays in
  // node_modules (a devDependency, so a .ts config file needs it installed, as before).
  external: ['typescript'],
  // The bundled CommonJS dependencies (winston's) call require() for Node's own modules.
  banner: {
    js: "import { createRequire as kinstallRequire } from 'node:module'; const require = kinstallRequire(import.meta.url);",
  },
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
});
for (const bin of ['kinstall.js', 'installkernel.js']) chmodSync(path.join(outdir, bin), 0o755);

await build({
  absWorkingDir: top,
  entryPoints: ['src/cli/bundle-entry.ts'],
  outfile: path.join(outdir, 'cli.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: true,
  external: ['typescript'],
  // import.meta does not exist in a CommonJS script: its URL is the bundle's own (io.ts walks up
  // from it to package.json); import.meta.resolve is absent, settings.ts falls back to require.resolve.
  banner: { js: 'var kinstallImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: { 'import.meta.url': 'kinstallImportMetaUrl', 'import.meta.resolve': 'undefined' },
  logLevel: 'warning',
});
await writeCodeCache(path.join(outdir, 'cli.cjs'));

/**
 * Compiles the bundle as start.ts does, runs its top level and that of the modules the verbs load
 * (loadVerbs: they only define things, no I/O at import time), so the functions that ran are in the
 * cache compiled, and writes it. A Node whose V8 rejects it compiles the source: slower, same run.
 */
async function writeCodeCache(filename) {
  const importModuleDynamically = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  const script = new vm.Script(Module.wrap(readFileSync(filename, 'utf8')), { filename, importModuleDynamically });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(filename), module, filename, path.dirname(filename));
  if (typeof module.exports.runKinstall !== 'function') throw new Error(`${filename}: no runKinstall export`);
  await module.exports.loadVerbs();
  writeFileSync(`${filename}.cache`, script.createCachedData());
}
