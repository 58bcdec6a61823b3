// Builds what is stale, and only that: the filter (asc, then wasm-opt) into plugin/prefix-router.wasm
// and the TypeScript side (esbuild) into dist/, runnable with plain node and, as package.json's bin,
// as a program (the entry keeps cli/prefix-router.ts's #! line and is made executable). A step runs
// when one of its outputs is missing or older than one of its inputs; each says what it is doing,
// since asc takes about half a minute.
//
//   node cli/build.mjs [wasm | ts]... [--force]
//   node cli/build.mjs --then COMMAND ARGS...
//
// --then builds everything stale, then runs COMMAND (npm start and the benchmarks go through it);
// when ARGS ask for --help or -h, only missing outputs are built, so a fresh clone still works.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const BUNDLE_META = 'dist/.inputs.json';
const THIS_SCRIPT = 'cli/build.mjs';

function filesUnder(dir, ext) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p, ext));
    else if (p.endsWith(ext)) out.push(p);
  }
  return out;
}

function run(bin, args) {
  const r = spawnSync(join('node_modules', '.bin', bin), args, { stdio: 'inherit' });
  if (r.error) throw new Error(`${bin}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${bin} exited with ${r.status ?? r.signal}`);
}

/** The bundle's inputs as esbuild saw them last time, or null before any bundle was written. */
function bundleInputs() {
  try {
    return JSON.parse(readFileSync(BUNDLE_META, 'utf8')).inputs;
  } catch {
    return null;
  }
}

async function bundle() {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { 'prefix-router': 'cli/prefix-router.ts' },
    outdir: 'dist',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: true,
    splitting: true,
    metafile: true,
    logLevel: 'warning',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  chmodSync('dist/prefix-router.js', 0o755);
  // Chunks of earlier bundles are named by their content hash: remove the ones this bundle does not use.
  const outputs = new Set(Object.keys(result.metafile.outputs).map((p) => p.replace(/^dist\//, '')));
  for (const name of readdirSync('dist')) if (/\.js(\.map)?$/.test(name) && !outputs.has(name)) rmSync(join('dist', name));
  writeFileSync(BUNDLE_META, JSON.stringify({ inputs: Object.keys(result.metafile.inputs) }) + '\n');
}

const STEPS = [
  {
    group: 'wasm', what: 'compiling the filter, assembly/ (asc, about 30 s)',
    inputs: () => [...filesUnder('assembly', '.ts'), 'asconfig.json'],
    outputs: ['build/prefix-router.wasm'],
    run: () => run('asc', ['assembly/index.ts', '--target', 'release']),
  },
  {
    group: 'wasm', what: 'optimizing it into plugin/prefix-router.wasm (wasm-opt)',
    inputs: () => ['build/prefix-router.wasm'],
    outputs: ['plugin/prefix-router.wasm'],
    // --reorder-functions numbers the most-called functions first, so their calls take the shortest
    // index encoding: about 500 bytes smaller, the code itself unchanged.
    run: () => run('wasm-opt', ['build/prefix-router.wasm', '-O3', '--reorder-functions', '--enable-bulk-memory', '--enable-sign-ext',
      '--enable-nontrapping-float-to-int', '--enable-mutable-globals', '-o', 'plugin/prefix-router.wasm']),
  },
  {
    group: 'ts', what: 'bundling the TypeScript side into dist/ (esbuild)',
    inputs: () => bundleInputs() ?? [],
    outputs: ['dist/prefix-router.js', BUNDLE_META],
    run: bundle,
  },
];

const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : null);

/** 'missing' (an output is absent), 'stale' (an input is newer, or gone) or 'fresh'. */
function freshness(step) {
  const outs = step.outputs.map(mtime);
  if (outs.some((t) => t === null)) return 'missing';
  const oldest = Math.min(...outs);
  // The lock file stands for the compilers' versions, this script for their options.
  const ins = [...step.inputs(), 'package-lock.json', THIS_SCRIPT].map(mtime);
  return ins.some((t) => t === null || t > oldest) ? 'stale' : 'fresh';
}

/** Runs the steps of `groups` that need it; returns false after printing why a step failed. */
async function buildStale({ groups = ['wasm', 'ts'], force = false, missingOnly = false, log = console.log } = {}) {
  for (const step of STEPS.filter((s) => groups.includes(s.group))) {
    const state = force ? 'stale' : freshness(step);
    if (state === 'fresh' || (missingOnly && state !== 'missing')) {
      log(`build: ${step.what}: up to date`);
      continue;
    }
    log(`build: ${step.what}...`);
    const t0 = performance.now();
    try {
      await step.run();
    } catch (err) {
      // A half-written output must not look up to date next time.
      for (const p of step.outputs) rmSync(p, { force: true });
      log(`build: ${step.what}: FAILED: ${err.message}`);
      return false;
    }
    log(`build: ${step.what}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return true;
}

async function main(argv) {
  const then = argv.indexOf('--then');
  if (then >= 0) {
    const [command, ...args] = argv.slice(then + 1);
    if (!command) { console.error('build: --then needs a command'); return 2; }
    const help = args.includes('--help') || args.includes('-h');
    if (!(await buildStale({ missingOnly: help, log: help ? () => {} : console.error }))) return 1;
    const child = spawn(command, args, { stdio: 'inherit' });
    // npm signals this process, not the command: pass stops on so the command shuts down cleanly.
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
    return new Promise((resolve) => {
      child.on('error', (err) => { console.error(`build: cannot run ${command}: ${err.message}`); resolve(1); });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  }
  const groups = argv.filter((a) => !a.startsWith('--'));
  const unknown = groups.filter((g) => g !== 'wasm' && g !== 'ts');
  if (unknown.length || argv.some((a) => a.startsWith('--') && a !== '--force')) {
    console.error(`build: usage: node cli/build.mjs [wasm | ts]... [--force] | --then COMMAND ARGS...`);
    return 2;
  }
  return (await buildStale({ groups: groups.length ? groups : undefined, force: argv.includes('--force') })) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
