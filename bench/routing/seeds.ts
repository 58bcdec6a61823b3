// npm run bench:routing:seeds -- --points SHAPE:LOAD,... [options]: the ladder's rungs on
// several seeds. One seed's TTFT p95 is knife-edge on several shapes (with 16 replicas the 95th
// percentile sits between cache hits and cold prefills, so small routing changes flip it);
// across seeds it reads as a distribution: per point, each policy's TTFT p95, first-admission
// hit rate and max/mean load per seed, then per policy the median, mean and worst p95 and, per
// prefix-router build, on how many seeds its p95 is at or below each baseline's. The mean is
// there because a median over a few seeds moves with whichever seed sits in the middle: two
// builds that trade a few hundred ms on different seeds can show a 5% median gap at a level mean.
// Capacity, arrivals and policies come from the ladder's own code (ladder.ts, scenarios.ts).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { toolArgs } from '../../cli/toolArgs.js';
import {
  DEFAULT_EXTRA_LOADS, DEFAULT_LOADS, DEFAULT_VARIANT_LOAD, LADDER_REPLICAS, arrivedRps, measureCapacity, runPolicy, rungWorkload,
  type Capacity, type LadderShape,
} from './ladder.js';
import { LADDER_POLICIES, LADDER_VARIANTS, buildLadderShapes, type PolicyKind, type PolicySpec } from './scenarios.js';
import { DEFAULT_WORKLOAD_DIR } from './workloads.js';
import { readMooncakeTrace } from './mooncake.js';

/** The routers users would deploy instead: a prefix-router build is read against each on every seed. */
const BASELINE_KINDS: PolicyKind[] = ['round-robin', 'least-load', 'gie-style', 'sglang-style'];
const DEFAULT_POLICIES = ['round-robin', 'least-load', 'gie-style', 'sglang-style', 'prefix-router'];
const DEFAULT_SEEDS = '1-3';
const KNOWN_POLICIES = [...LADDER_POLICIES, ...LADDER_VARIANTS];
/** Session templates are sized for the ladder's highest rung: the same size here gives the ladder's arrivals. */
const LADDER_MAX_LOAD = Math.max(...DEFAULT_LOADS, ...DEFAULT_EXTRA_LOADS, DEFAULT_VARIANT_LOAD);

const USAGE = `usage: npm run bench:routing:seeds -- --points SHAPE:LOAD,... [options]
The ladder's rungs (SHAPE at LOAD x round robin's capacity on it) on several seeds: per seed
each policy's TTFT p95 / first-admission hit rate / max-mean load, then per policy the median,
mean and worst p95, and per prefix-router build the seeds where its p95 is at or below each baseline's.
  --points a:F,b:F    shapes and loads, e.g. sp-32x32:0.7,multi-turn-chat:0.5 (required)
  --seeds LIST        seeds: N, A-B, or a comma-separated list of those (default ${DEFAULT_SEEDS})
  --policies a,b      the ladder's policy names, exactly (default ${DEFAULT_POLICIES.join(',')});
                      entry-point layouts as the ladder names them, e.g. prefix-router/4-gateways
  --wasm A,B          run every prefix-router policy once per build: PATH (labelled by its file
                      name) or LABEL=PATH (default plugin/prefix-router.wasm, unlabelled)
  --replicas N        replicas (default ${LADDER_REPLICAS}, as the ladder)
  --requests-scale F  multiply every request count by F (default 1)
  --trace FILE        a Mooncake-format JSONL trace, as the point shape 'trace' (bench:routing's --trace)
  --json              print the JSON document on stdout (the tables go to stderr)`;

interface Build { label: string | undefined; wasm: Uint8Array | undefined }
interface Point { shape: string; load: number }
interface Run { spec: PolicySpec; build: Build; name: string }

interface SeedCell { policy: string; ttftP50Ms: number; ttftP95Ms: number; ttftMeanMs: number; firstAdmissionHitRate: number; maxOverMeanLoad: number; completed: number }
interface SeedRow { seed: number; capacityRps: number; offeredRps: number; requests: number; policies: SeedCell[] }
interface PolicySummary {
  policy: string;
  medianTtftP95Ms: number;
  meanTtftP95Ms: number;
  worstTtftP95Ms: number;
  /** Medians over the seeds of the TTFT p50 and mean. */
  medianTtftP50Ms: number;
  medianTtftMeanMs: number;
  /** Prefix-router builds: per baseline present, the seeds where this policy's p95 is at or below the baseline's. */
  atOrBelow?: Record<string, number>;
}
interface PointResult { shape: string; load: number; replicas: number; seeds: SeedRow[]; summary: PolicySummary[] }

const { values: v, fail, int, positive } = toolArgs('bench:routing:seeds', USAGE, {
  points: { type: 'string' }, seeds: { type: 'string' }, policies: { type: 'string' }, wasm: { type: 'string' },
  replicas: { type: 'string' }, 'requests-scale': { type: 'string' }, trace: { type: 'string' }, json: { type: 'boolean' },
});

function parseSeeds(arg: string): number[] {
  const seeds: number[] = [];
  const seed = (s: string) => int('seeds', s, 0, 0, 0xffffffff);
  for (const part of arg.split(',')) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    const [from, to] = m ? [seed(m[1]!), seed(m[2]!)] : [seed(part), seed(part)];
    if (to < from) fail(`--seeds: range '${part}' runs backwards`);
    for (let s = from; s <= to; s++) seeds.push(s);
  }
  if (new Set(seeds).size !== seeds.length) fail(`--seeds: '${arg}' names a seed twice`);
  return seeds;
}

function parsePoints(arg: string | undefined, known: string[]): Point[] {
  if (arg === undefined) return fail('--points is required, e.g. --points sp-32x32:0.7');
  const points = arg.split(',').map((part) => {
    const m = /^([^:]+):(.+)$/.exec(part);
    if (!m) return fail(`--points: '${part}' is not SHAPE:LOAD`);
    const [, shape, loadText] = m as unknown as [string, string, string];
    if (!known.includes(shape)) return fail(`--points: unknown shape '${shape}'; known: ${known.join(', ')}`);
    const load = Number(loadText);
    if (!Number.isFinite(load) || load <= 0) return fail(`--points: the load of '${part}' must be a positive number`);
    return { shape, load };
  });
  if (new Set(points.map((p) => `${p.shape}:${p.load}`)).size !== points.length) fail(`--points: '${arg}' names a point twice`);
  return points;
}

function parsePolicies(arg: string | undefined): PolicySpec[] {
  const names = arg === undefined ? DEFAULT_POLICIES : arg.split(',');
  const specs = names.map((n) => KNOWN_POLICIES.find((p) => p.name === n) ?? fail(`--policies: unknown policy '${n}'; known: ${KNOWN_POLICIES.map((p) => p.name).join(', ')}`));
  if (new Set(names).size !== names.length) fail(`--policies: '${arg}' names a policy twice`);
  return specs;
}

function parseBuilds(arg: string | undefined): Build[] {
  if (arg === undefined) return [{ label: undefined, wasm: undefined }];
  const named = arg.split(',').map((part) => {
    const eq = part.indexOf('=');
    return eq > 0 ? { label: part.slice(0, eq), path: part.slice(eq + 1) } : { label: basename(part), path: part };
  });
  const labels = named.map((b) => b.label);
  if (new Set(labels).size !== labels.length) fail(`--wasm: two builds are labelled alike (${labels.join(', ')}); name them LABEL=PATH`);
  return named.map(({ label, path }) => {
    try {
      return { label, wasm: readFileSync(path) };
    } catch (e) {
      return fail(`--wasm: cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per policy over the seeds: median, mean and worst p95; per prefix-router build, seeds at or below each baseline. */
function summarize(rows: SeedRow[], runs: Run[]): PolicySummary[] {
  const p95 = (row: SeedRow, name: string) => row.policies.find((c) => c.policy === name)!.ttftP95Ms;
  const baselines = runs.filter((r) => BASELINE_KINDS.includes(r.spec.kind)).map((r) => r.name);
  return runs.map((r) => {
    const cells = rows.map((row) => row.policies.find((c) => c.policy === r.name)!);
    const all = cells.map((c) => c.ttftP95Ms);
    const s: PolicySummary = {
      policy: r.name, medianTtftP95Ms: median(all), meanTtftP95Ms: all.reduce((a, b) => a + b, 0) / all.length, worstTtftP95Ms: Math.max(...all),
      medianTtftP50Ms: median(cells.map((c) => c.ttftP50Ms)), medianTtftMeanMs: median(cells.map((c) => c.ttftMeanMs)),
    };
    if (r.spec.kind === 'prefix-router') s.atOrBelow = Object.fromEntries(baselines.map((b) => [b, rows.filter((row) => p95(row, r.name) <= p95(row, b)).length]));
    return s;
  });
}

function pointTable(p: PointResult): string {
  const names = p.seeds[0]!.policies.map((c) => c.policy);
  const width = Math.max(6, ...names.map((n) => n.length));
  const col = 22;
  const lines = [`${p.shape} at ${Math.round(p.load * 100)}% of round robin's capacity, ${p.replicas} replicas: TTFT p95 ms / first-admission hit % / max-mean load`];
  lines.push(`${'seed'.padEnd(width)}  ${p.seeds.map((s) => `${s.seed} (${s.requests} req, ${s.offeredRps.toFixed(1)}/s)`.padEnd(col)).join('')}`);
  for (const n of names) {
    const cells = p.seeds.map((s) => {
      const c = s.policies.find((x) => x.policy === n)!;
      return `${c.ttftP95Ms.toFixed(0)} / ${(c.firstAdmissionHitRate * 100).toFixed(1)} / ${c.maxOverMeanLoad.toFixed(2)}`.padEnd(col);
    });
    lines.push(`${n.padEnd(width)}  ${cells.join('')}`);
  }
  const baselines = Object.keys(p.summary.find((s) => s.atOrBelow)?.atOrBelow ?? {});
  lines.push('', `${'over seeds'.padEnd(width)}  ${'median p95'.padStart(10)}  ${'mean p95'.padStart(8)}  ${'worst p95'.padStart(10)}  ${'median p50'.padStart(10)}  ${'median mean'.padStart(11)}${baselines.map((b) => `  <= ${b}`).join('')}`);
  for (const s of p.summary) {
    const counts = baselines.map((b) => `  ${(s.atOrBelow ? `${s.atOrBelow[b]}/${p.seeds.length}` : '').padStart(b.length + 3)}`).join('');
    lines.push(`${s.policy.padEnd(width)}  ${s.medianTtftP95Ms.toFixed(0).padStart(10)}  ${s.meanTtftP95Ms.toFixed(0).padStart(8)}  ${s.worstTtftP95Ms.toFixed(0).padStart(10)}  ${s.medianTtftP50Ms.toFixed(0).padStart(10)}  ${s.medianTtftMeanMs.toFixed(0).padStart(11)}${counts}`);
  }
  return lines.map((l) => l.trimEnd()).join('\n') + '\n\n';
}

async function main(): Promise<void> {
  const replicas = int('replicas', v.replicas, LADDER_REPLICAS, 1);
  const requestScale = positive('requests-scale', v['requests-scale'], 1);
  if (v.trace !== undefined) {
    try { readMooncakeTrace(v.trace); } catch (e) { fail(`--trace: ${(e as Error).message}`); }
  }
  const shapesFor = (seed: number, maxLoad: number): LadderShape[] =>
    buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed, replicas, requestScale, maxLoad, trace: v.trace === undefined ? undefined : { file: v.trace, replicas, limit: Infinity } });
  const points = parsePoints(v.points, shapesFor(0, LADDER_MAX_LOAD).map((s) => s.name));
  const seeds = parseSeeds(v.seeds ?? DEFAULT_SEEDS);
  const specs = parsePolicies(v.policies);
  const builds = parseBuilds(v.wasm);
  const runs: Run[] = specs.flatMap((spec) => spec.kind === 'prefix-router'
    ? builds.map((build) => ({ spec, build, name: build.label === undefined ? spec.name : `${spec.name}@${build.label}` }))
    : [{ spec, build: builds[0]!, name: spec.name }]);

  const started = performance.now();
  const warnings: string[] = [];
  const capacities = new Map<string, Capacity>();
  const results: PointResult[] = [];
  for (const point of points) {
    const maxLoad = Math.max(LADDER_MAX_LOAD, point.load);
    const rows: SeedRow[] = [];
    let pointReplicas = replicas;
    for (const seed of seeds) {
      const t0 = performance.now();
      const shape = shapesFor(seed, maxLoad).find((s) => s.name === point.shape)!;
      pointReplicas = shape.replicas;
      const key = `${shape.name} ${seed} ${maxLoad}`;
      const capacity = capacities.get(key) ?? await measureCapacity(shape, { seed });
      capacities.set(key, capacity);
      const w = rungWorkload(shape, capacity, point.load);
      const row: SeedRow = { seed, capacityRps: capacity.rps, offeredRps: Math.min(point.load * capacity.rps, arrivedRps(w)), requests: w.requests.length, policies: [] };
      for (const run of runs) {
        const before = warnings.length;
        const r = await runPolicy({ ...run.spec, name: run.name }, w, shape, { seed, wasm: run.build.wasm }, warnings);
        for (let i = before; i < warnings.length; i++) warnings[i] = `${point.shape}:${point.load} seed ${seed}: ${warnings[i]}`;
        row.policies.push({ policy: run.name, ttftP50Ms: r.ttftP50Ms, ttftP95Ms: r.ttftP95Ms, ttftMeanMs: r.ttftMeanMs, firstAdmissionHitRate: r.firstAdmissionHitRate, maxOverMeanLoad: r.maxOverMeanLoad, completed: r.completed });
      }
      rows.push(row);
      process.stderr.write(`${point.shape}:${point.load} seed ${seed}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    results.push({ shape: point.shape, load: point.load, replicas: pointReplicas, seeds: rows, summary: summarize(rows, runs) });
  }
  const text = results.map(pointTable).join('') + warnings.map((w) => `filter warning: ${w}\n`).join('');
  if (v.json) {
    process.stderr.write(text);
    const doc = { seeds, replicas, requestScale, baselines: runs.filter((r) => BASELINE_KINDS.includes(r.spec.kind)).map((r) => r.name), points: results, filterWarnings: warnings };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(text);
  }
  process.stderr.write(`total ${((performance.now() - started) / 1000).toFixed(1)} s wall clock\n`);
}

await main();
