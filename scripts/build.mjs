// The build: tsc type-checks and emits dist/ (the core's modules, which scripts/bench.mjs and a
// debugger read one by one), then esbuild replaces the two bins with minified bundles (source maps
// beside them) whose code for a command is split into chunks loaded only when that command runs:
// `kinstall --version` parses one small file, not ~100 modules. The dependencies a command always
// needs (execa, winston, tmp-promise: ~270 small files, about 200 ms for Node to resolve and load
// one by one) are bundled into the command's chunk, cosmiconfig into a chunk of its own, loaded
// only when a config file exists.
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import path from 'node:path';
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
