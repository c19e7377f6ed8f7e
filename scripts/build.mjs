// The build: tsc type-checks and emits dist/ (the core's modules, which scripts/bench.mjs and a
// debugger read one by one), then esbuild replaces the two bins with minified bundles (source maps
// beside them) whose code for a command is split into chunks loaded only when that command runs:
// `kinstall --version` parses one small file, not ~100 modules. The dependencies a command always
// needs (execa, winston, tmp-promise: ~270 small files, about 200 ms for Node to resolve and load
// one by one) are bundled into the command's chunk, cosmiconfig into a chunk of its own, loaded
// only when a config file exists.
// A second esbuild build makes the whole CLI one CommonJS script, dist/src/cli/cli.cjs, and the
// build writes V8's code cache for it (cli.cjs.cache): a run that does work compiles it from that
// cache (src/cli/load-bundle.ts), ~20 ms less than importing the ESM chunks. Node 20 has no
// module.enableCompileCache, hence vm.Script. Help, version and --verbose keep the ESM chunks.
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { build } from 'esbuild';
import ts from 'typescript';

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
// Each bin starts as a shell script that runs itself with node (the second line is a comment to
// JavaScript): without NODE_EXTRA_CA_CERTS, which Node 20 reads at every start (about 30 ms for a
// system CA bundle) for TLS that kinstall never uses. The value goes under another name, and
// start.ts gives it back to the environment the hooks and tools inherit.
const SHELL_START = [
  '#!/bin/sh',
  '//bin/true; [ -z "${NODE_EXTRA_CA_CERTS+set}" ] || { KINSTALL_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export KINSTALL_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; exec node "$0" "$@"',
];
for (const bin of ['kinstall.js', 'installkernel.js']) {
  const file = path.join(outdir, bin);
  const lines = readFileSync(file, 'utf8').split('\n');
  if (!lines[0]?.startsWith('#!')) throw new Error(`${file} does not start with #!`);
  writeFileSync(file, [...SHELL_START, ...lines.slice(1)].join('\n'));
  // One line more above the code: the source map's first line maps nothing.
  const map = JSON.parse(readFileSync(`${file}.map`, 'utf8'));
  writeFileSync(`${file}.map`, JSON.stringify({ ...map, mappings: `;${map.mappings}` }));
  chmodSync(file, 0o755);
}

// The CommonJS bundle: the module wrapper is part of the file (banner and footer), so the code the
// build caches and the code load-bundle.ts compiles are the same bytes. Beyond CommonJS's five it takes
// the ESM start's import() and import.meta.resolve: V8 11.3 (Node 20) drops the dynamic-import
// callback of a script compiled from a code cache, so the bundle's own import() would throw there.
const bundleFile = path.join(outdir, 'cli.cjs');
await build({
  absWorkingDir: top,
  entryPoints: ['src/cli/bundle-entry.ts'],
  outfile: bundleFile,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: true,
  external: ['typescript'],
  // Strict like the ESM chunks; import.meta.url is the bundle's own (io.ts walks up from it to package.json).
  banner: {
    js: '(function (exports, require, module, __filename, __dirname, Import, kinstallImportMetaResolve) {"use strict";var kinstallImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
  },
  footer: { js: '})' },
  define: { 'import.meta.url': 'kinstallImportMetaUrl', 'import.meta.resolve': 'kinstallImportMetaResolve' },
  logLevel: 'warning',
});
callImportThroughParameter(bundleFile);
await writeCodeCache(bundleFile);

/**
 * Every import() call in the bundle becomes a call of its `Import` parameter: the same length, so
 * the source map stays true. Found by TypeScript's parser, so no string or comment is touched.
 */
function callImportThroughParameter(file) {
  const text = readFileSync(file, 'utf8');
  if (/\bImport\b/.test(text.slice(text.indexOf('{') + 1))) throw new Error(`${file}: already uses the name Import`);
  const tree = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const calls = [];
  const visit = (node) => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      calls.push(node.expression.getStart(tree));
    ts.forEachChild(node, visit);
  };
  visit(tree);
  let out = text;
  for (const at of calls) out = `${out.slice(0, at)}Import${out.slice(at + 'import'.length)}`;
  writeFileSync(file, out);
}

/**
 * Compiles the bundle as load-bundle.ts does, runs its top level and that of the modules the verbs load
 * (loadVerbs: they only define things, no I/O at import time), so the functions that ran are in the
 * cache compiled, and writes it, prefixed with the SHA-256 of the source and the data: V8 checks
 * only the source's length and crashes on damaged data, so load-bundle.ts checks the digest first. A
 * Node whose V8 rejects the cache compiles the source: slower, same run.
 */
async function writeCodeCache(filename) {
  const source = readFileSync(filename);
  const script = new vm.Script(source.toString('utf8'), { filename });
  const module = { exports: {} };
  const load = script.runInThisContext();
  load(module.exports, createRequire(filename), module, filename, path.dirname(filename), (s) => import(s), import.meta.resolve);
  if (typeof module.exports.runKinstall !== 'function') throw new Error(`${filename}: no runKinstall export`);
  await module.exports.loadVerbs();
  const data = script.createCachedData();
  const digest = createHash('sha256').update(source).update(data).digest();
  writeFileSync(`${filename}.cache`, Buffer.concat([digest, data]));
}
