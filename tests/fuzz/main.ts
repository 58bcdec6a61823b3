// npm run fuzz [-- options] (--help lists them)
// The full fuzz run: at least 1,000,000 generated and mutated requests, state payloads
// and configurations through plugin/prefix-router.wasm in the proxy-wasm host (each
// host runs two worker VMs, as Envoy runs one per worker thread). The cases are split
// over --shards child processes (default 2, one per core here), each with its own seed.
// Progress goes to stderr, the result to stdout. Exits 1 on any trap, unrouted request
// or leaked destination header.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { splitCases, type FuzzReport } from './harness.js';
import { toolArgs } from '../../cli/toolArgs.js';

/** The bar: a million cases. */
const DEFAULT_CASES = 1_000_000;
/** This machine has two cores. */
const DEFAULT_SHARDS = 2;

const USAGE = `usage: npm run fuzz -- [options]
  --cases N     generated and mutated cases in all (default ${DEFAULT_CASES}; at least 100)
  --seed S      integer; shard i uses seed S x 1000 + i (default 1)
  --shards N    child processes, 1..16 (default ${DEFAULT_SHARDS})
  --json        one JSON line: {"cases", "traps", "unroutedWithoutError", "details", "findings"}
  --help`;

const { values, int } = toolArgs('fuzz', USAGE, { cases: { type: 'string' }, seed: { type: 'string' }, shards: { type: 'string' }, json: { type: 'boolean' } });
const cases = int('cases', values.cases, DEFAULT_CASES, 100);
const seed = int('seed', values.seed, 1, Number.MIN_SAFE_INTEGER);
const shards = int('shards', values.shards, DEFAULT_SHARDS, 1, 16);

const started = Date.now();
const progress: Array<{ phase: string; done: number; total: number }> = [];
const ticker = setInterval(() => {
  const s = progress.map((p, i) => `shard ${i} ${p.phase} ${p.done}/${p.total}`).join(', ');
  process.stderr.write(`fuzz ${((Date.now() - started) / 1000).toFixed(0)} s: ${s}\n`);
}, 5000);

const reports = await Promise.all(Array.from({ length: shards }, (_, i) => new Promise<FuzzReport>((resolve, reject) => {
  const share = Math.ceil(cases / shards);
  const w = fork(fileURLToPath(new URL('./shard.ts', import.meta.url)), [JSON.stringify({ seed: seed * 1000 + i, ...splitCases(share) })], {
    execArgv: ['--import', 'tsx'],
  });
  progress[i] = { phase: 'starting', done: 0, total: 0 };
  w.on('message', (m: { progress?: { phase: string; done: number; total: number }; report?: FuzzReport }) => {
    if (m.progress) progress[i] = m.progress;
    if (m.report) resolve(m.report);
  });
  w.on('error', reject);
  w.on('exit', (code) => { if (code !== 0) reject(new Error(`shard ${i} exited with ${code}`)); });
})));
clearInterval(ticker);

// Sum the shards' counters; keep every shard's findings.
const total: Record<string, unknown> = {};
for (const r of reports) {
  for (const [k, v] of Object.entries(r)) {
    if (typeof v === 'number') total[k] = ((total[k] as number) ?? 0) + v;
    else if (k === 'byBodyKind') {
      const into = (total[k] ??= {}) as Record<string, number>;
      for (const [bk, bv] of Object.entries(v as Record<string, number>)) into[bk] = (into[bk] ?? 0) + bv;
    }
  }
}
delete total.seed;
const findings = reports.flatMap((r) => r.findings);
const seconds = (Date.now() - started) / 1000;
const sum = total as Record<string, number>;
if (values.json) {
  console.log(JSON.stringify({ cases: sum.cases, traps: sum.traps, unroutedWithoutError: sum.unroutedWithoutError, details: { ...total, seconds, shards, seeds: reports.map((r) => r.seed) }, findings }));
} else {
  console.log(`fuzz: ${sum.cases} cases in ${seconds.toFixed(1)} s (${shards} shards, seeds ${reports.map((r) => r.seed).join(', ')})`);
  for (const [k, v] of Object.entries(total)) console.log(`  ${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  for (const f of findings) console.log(`  finding ${f.kind} at ${f.case}: ${f.detail}`);
}
process.exit(sum.traps === 0 && sum.unroutedWithoutError === 0 && sum.hostileLeaks === 0 ? 0 : 1);
