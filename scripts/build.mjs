// The build: tsc type-checks and emits dist/ (the core's modules, which scripts/bench.mjs and a
// debugger read one by one); then esbuild makes what the bins run, in dist/src/cli (a package.json
// there makes its .js files CommonJS):
// - the two bins, small CommonJS scripts (src/cli/start.ts), behind a shell start (below): CommonJS,
//   so a run that imports no ES module never starts Node's ESM loader (~5 ms);
// - light.cjs: help and version, one small file;
// - cli.cjs: the whole CLI as one CommonJS script, with V8's code cache the build writes for it
//   (cli.cjs.cache), which load-bundle.cjs compiles it from for any run that does work (~20 ms less
//   than importing ES modules: Node 20 has no module.enableCompileCache, hence vm.Script);
// - esm/: the CLI as ES modules split into chunks, with source maps, for a --verbose run (stack
//   traces name the TypeScript sources). The dependencies (execa, winston, tmp-promise, ~270 small
//   files, about 200 ms for Node to resolve and load one by one) are bundled into them.
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
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

mkdirSync(outdir, { recursive: true });
// The bundled dependencies that ask (winston's @dabh/diagnostics) get their production code: no
// colour tables built at every start for debug output nothing enables.
const PRODUCTION = { 'process.env.NODE_ENV': '"production"' };
writeFileSync(path.join(outdir, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);

/** What every esbuild build here shares: bundled, minified, source maps beside, for Node 20. */
const common = {
  absWorkingDir: top,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  sourcemap: true,
  // cosmiconfig's TypeScript loader would pull in TypeScript (a 3.5 MB chunk): it stays in
  // node_modules (a devDependency, so a .ts config file needs it installed, as before).
  external: ['typescript'],
  logLevel: 'warning',
};

// The ES modules for --verbose: the CLI split into chunks, the verbs' code loaded when a command runs.
await build({
  ...common,
  entryPoints: { cli: 'src/cli/esm-cli.ts' },
  outdir: path.join(outdir, 'esm'),
  outExtension: { '.js': '.mjs' },
  splitting: true,
  format: 'esm',
  // The bundled CommonJS dependencies (winston's) call require() for Node's own modules.
  banner: {
    js: "import { createRequire as kinstallRequire } from 'node:module'; const require = kinstallRequire(import.meta.url);",
  },
  chunkNames: 'chunks/[name]-[hash]',
  define: PRODUCTION,
});

// The bins, and the two scripts they require by path (so neither loads unless its start runs).
const script = {
  ...common,
  format: 'cjs',
  // import.meta.url is the script's own (io.ts walks up from it to package.json).
  banner: { js: 'var kinstallImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: { 'import.meta.url': 'kinstallImportMetaUrl' },
};
await build({
  ...script,
  entryPoints: ['src/cli/kinstall.ts', 'src/cli/installkernel.ts'],
  outdir,
});
await build({ ...script, entryPoints: ['src/cli/light.ts'], outfile: path.join(outdir, 'light.cjs') });
await build({
  ...script,
  entryPoints: ['src/cli/load-bundle.ts'],
  outfile: path.join(outdir, 'load-bundle.cjs'),
});

// Each bin starts as a shell script that runs itself with node (the second line is the builtin `:`
// to the shell, a string and a comment to JavaScript; no process is started for it): without NODE_EXTRA_CA_CERTS, which Node 20 reads at every start (about 30 ms for a
// system CA bundle) for TLS that kinstall never uses. The value goes under another name, and
// start.ts gives it back to the environment the hooks and tools inherit.
const SHELL_START = [
  '#!/bin/sh',
  '\':\' //; [ -z "${NODE_EXTRA_CA_CERTS+set}" ] || { KINSTALL_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export KINSTALL_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; }; exec node "$0" "$@"',
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
// the bin's import(): V8 11.3 (Node 20) drops the dynamic-import
// callback of a script compiled from a code cache, so the bundle's own import() would throw there.
const bundleFile = path.join(outdir, 'cli.cjs');
await build({
  ...common,
  entryPoints: ['src/cli/bundle-entry.ts'],
  outfile: bundleFile,
  format: 'cjs',
  // Strict like the ESM chunks; import.meta.url is the bundle's own (io.ts walks up from it to package.json).
  banner: {
    js: '(function (exports, require, module, __filename, __dirname, Import) {"use strict";var kinstallImportMetaUrl = require("node:url").pathToFileURL(__filename).href;',
  },
  footer: { js: '})' },
  define: { ...PRODUCTION, 'import.meta.url': 'kinstallImportMetaUrl' },
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
 * A kernel image as kinstall reads one (a bzImage setup header with a version string), no kernel:
 * enough for an install into a scratch root, which no boot loader ever reads.
 */
function warmUpImage(file, version) {
  const image = Buffer.alloc(64 * 1024);
  image.writeUInt16LE(0xaa55, 0x1fe);
  image.write('HdrS', 0x202, 'latin1');
  image.writeUInt16LE(0x020f, 0x206);
  image.writeUInt16LE(0x200, 0x20e);
  image.write(`${version} (build@kinstall) #1 SMP\0`, 0x400, 'latin1');
  image.writeUInt16LE(1, 0x236);
  writeFileSync(file, image);
}

/**
 * Runs what a user runs most, once, in a scratch root: add (bls, no initramfs), list and remove.
 * The functions that run are then in the code cache compiled (~15 ms less for an add than compiling
 * them as they first run). Its output is swallowed; a failure leaves the cache as the top level made it.
 */
async function warmUp(bundle) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'kinstall-build-warm-'));
  const version = '6.1.0-kinstall-warm-up';
  const write = process.stderr.write;
  try {
    for (const dir of ['boot', 'efi/loader/entries', 'etc/kernel', `lib/modules/${version}/kernel`])
      mkdirSync(path.join(root, dir), { recursive: true });
    writeFileSync(path.join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n');
    writeFileSync(path.join(root, 'etc/kernel/cmdline'), 'root=/dev/vda1 ro\n');
    writeFileSync(path.join(root, 'efi/loader/loader.conf'), 'timeout 3\n');
    for (const index of ['modules.order', 'modules.dep', 'modules.dep.bin'])
      writeFileSync(path.join(root, `lib/modules/${version}`, index), '');
    const image = path.join(root, 'vmlinuz');
    warmUpImage(image, version);
    const io = (argv) => ({ argv, env: process.env, cwd: root, stdout: () => {}, stderr: () => {}, stderrIsTTY: false });
    process.stderr.write = () => true;
    const target = ['--root', root, '--layout', 'bls', '--esp', '/efi'];
    const codes = [
      await bundle.runKinstall(io(['add', ...target, '--initramfs', 'none', version, image])),
      await bundle.runKinstall(io(['list', '--root', root])),
      await bundle.runKinstall(io(['remove', ...target, version])),
    ];
    process.stderr.write = write;
    if (codes.some((code) => code !== 0)) console.warn(`build: the code cache's warm-up ended with ${codes.join(', ')}`);
  } catch (error) {
    process.stderr.write = write;
    console.warn(`build: the code cache's warm-up failed: ${error}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Compiles the bundle as load-bundle.ts does, runs its top level and that of the modules the verbs load
 * (loadVerbs: they only define things, no I/O at import time) and a warm-up, so the functions that
 * ran are in the cache compiled, and writes it, prefixed with the SHA-256 of the source and the data: V8 checks
 * only the source's length and crashes on damaged data, so load-bundle.ts checks the digest first. A
 * Node whose V8 rejects the cache compiles the source: slower, same run.
 */
async function writeCodeCache(filename) {
  const source = readFileSync(filename);
  const script = new vm.Script(source.toString('utf8'), { filename });
  const module = { exports: {} };
  const load = script.runInThisContext();
  load(module.exports, createRequire(filename), module, filename, path.dirname(filename), (s) => import(s));
  if (typeof module.exports.runKinstall !== 'function') throw new Error(`${filename}: no runKinstall export`);
  await module.exports.loadVerbs();
  await warmUp(module.exports);
  const data = script.createCachedData();
  const digest = createHash('sha256').update(source).update(data).digest();
  writeFileSync(`${filename}.cache`, Buffer.concat([digest, data]));
}
