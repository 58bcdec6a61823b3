// Where one run's requests went, over time: prefix-router with one entry point and with a
// split (gateways, worker VMs) on the same arrivals, at one rung of a ladder shape or on a
// fixed-overload scenario. Per run: each replica's requests and the TTFT p95 in each time
// window (a hot spot shows as one column that stays high); the sessions' first placements and
// moves (a session's request sent elsewhere than its previous one), in time; and the requests
// that arrived while an earlier one was still prefilling on the replica they were sent to, by
// whose that earlier one was (the same entry point, or another one, and how long before): with
// split entry points, a placement another one made moments earlier and this one had not heard of.
//   node --import tsx bench/routing/placements.ts SHAPE LOAD|fixed [gateways] [workers] [seed] [requests-scale] [wasm]
// e.g. `multi-turn-chat fixed 2` (the fixed-overload scenario, 3 replicas), `unique-prompts 0.9 2`.
import { readFileSync } from 'node:fs';
import { DEFAULT_WORKLOAD_DIR, type SimRequest, type Workload } from './workloads.js';
import { LADDER_REPLICAS, measureCapacity, rungWorkload } from './ladder.js';
import { loadXxhash } from './gie.js';
import { makePolicy } from './runner.js';
import { BASE_POLICIES, DEFAULT_SCENARIO_OPTIONS, buildLadderShapes, buildScenarios, type PolicySpec } from './scenarios.js';
import { percentile, simulate } from './simulation.js';

const USAGE = 'usage: node --import tsx bench/routing/placements.ts SHAPE LOAD|fixed [gateways] [workers] [seed] [requests-scale] [wasm]';
/** Time windows the run is cut into. */
const WINDOWS = 10;
/** A placement this recent (ms) by another entry point is one the chosen entry point had likely not heard of (the fleet exchange takes 20-40 ms). */
const UNHEARD_MS = 45;
/** Session moves listed per run at most. */
const MOVES_SHOWN = 40;

const [shapeName, loadArg, gatewaysArg = '2', workersArg = '1', seedArg = '1', scaleArg = '1', wasmFile] = process.argv.slice(2);
const fail = (msg: string): never => { process.stderr.write(`${msg}\n${USAGE}\n`); process.exit(2); };
if (!shapeName || !loadArg) fail('SHAPE and LOAD are required');
const whole = (name: string, v: string, min: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`${name}: '${v}' is not a whole number >= ${min}`);
  return n;
};
const GATEWAYS = whole('gateways', gatewaysArg, 1), WORKERS = whole('workers', workersArg, 1), SEED = whole('seed', seedArg, 0);
const SCALE = Number(scaleArg);
if (!(SCALE > 0)) fail(`requests-scale: '${scaleArg}' is not a positive number`);
const wasm = wasmFile ? readFileSync(wasmFile) : undefined;

async function workloadOf(): Promise<{ workload: Workload; replicas: number; label: string }> {
  if (loadArg === 'fixed') {
    const scenarios = buildScenarios({ ...DEFAULT_SCENARIO_OPTIONS, workloadDir: DEFAULT_WORKLOAD_DIR, seed: SEED, requestScale: SCALE });
    const sc = scenarios.find((s) => s.name === shapeName) ?? fail(`no fixed-overload scenario '${shapeName}'; known: ${scenarios.map((s) => s.name).join(', ')}`);
    return { workload: sc.build(), replicas: sc.replicas, label: 'fixed overload' };
  }
  const load = Number(loadArg);
  if (!(load > 0)) fail(`LOAD: '${loadArg}' is not a positive fraction of round robin's capacity, nor 'fixed'`);
  const shapes = buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed: SEED, replicas: LADDER_REPLICAS, requestScale: SCALE, maxLoad: load });
  const shape = shapes.find((s) => s.name === shapeName) ?? fail(`no ladder shape '${shapeName}'; known: ${shapes.map((s) => s.name).join(', ')}`);
  return { workload: rungWorkload(shape, await measureCapacity(shape, { seed: SEED }), load), replicas: shape.replicas, label: `${load * 100}% of round robin's capacity` };
}

interface Served { replica: number; ttftMs: number; gateway: number; worker: number }

const { workload, replicas, label } = await workloadOf();
const requests = workload.requests;
const spanMs = requests.length ? requests[requests.length - 1]!.arrivalUs / 1000 : 0;
console.log(`${shapeName}, ${label}, ${replicas} replicas, ${requests.length} requests over ${(spanMs / 1000).toFixed(1)} s, seed ${SEED}`);

async function run(spec: PolicySpec): Promise<Map<SimRequest, Served>> {
  const policy = await makePolicy(spec, replicas, SEED, workload.name, await loadXxhash(), wasm);
  const served = new Map<SimRequest, Served>();
  try {
    const r = simulate(workload, policy, {
      replicas, gateways: spec.gateways, workers: spec.workers, seed: SEED,
      onServed: (s) => served.set(s.req, { replica: s.replica, ttftMs: s.ttftMs, gateway: s.entry.gateway, worker: s.entry.worker }),
    });
    console.log(`\n${spec.name}: TTFT p50 ${r.ttftP50Ms.toFixed(0)} p95 ${r.ttftP95Ms.toFixed(0)} ms, hit ${(r.hitRate * 100).toFixed(1)}%, preemptions ${r.preemptions}`);
  } finally {
    await policy.close();
  }
  return served;
}

function windows(served: Map<SimRequest, Served>): void {
  const width = spanMs / WINDOWS || 1;
  const count = Array.from({ length: WINDOWS }, () => new Array<number>(replicas).fill(0));
  const ttfts = Array.from({ length: WINDOWS }, () => [] as number[]);
  for (const r of requests) {
    const s = served.get(r);
    if (!s) continue;
    const w = Math.min(WINDOWS - 1, Math.floor(r.arrivalUs / 1000 / width));
    count[w]![s.replica]!++;
    ttfts[w]!.push(s.ttftMs);
  }
  console.log(`  requests per replica in each ${(width / 1000).toFixed(1)} s window, and the window's TTFT p95:`);
  count.forEach((row, w) => {
    const t = ttfts[w]!.sort((a, b) => a - b);
    const total = row.reduce((a, b) => a + b, 0);
    const top = total ? Math.max(...row) / total : 0;
    console.log(`    ${String(w).padStart(2)}: ${row.join(' ')}  (busiest ${(top * 100).toFixed(0)}%)  p95 ${t.length ? percentile(t, 95).toFixed(0) : '-'} ms`);
  });
}

function sessions(served: Map<SimRequest, Served>): void {
  const at = new Map<string, number>();
  const moves: string[] = [];
  let moved = 0;
  for (const r of requests) {
    const s = served.get(r);
    const key = r.session ?? r.group;
    if (!s || key === undefined) continue;
    const before = at.get(key);
    if (before !== undefined && before !== s.replica) {
      moved++;
      if (moves.length < MOVES_SHOWN) moves.push(`${(r.arrivalUs / 1e6).toFixed(1)} s ${key} ${before}->${s.replica}`);
    }
    at.set(key, s.replica);
  }
  const held = new Array<number>(replicas).fill(0);
  for (const r of at.values()) held[r]!++;
  console.log(`  sessions (or groups) last sent to each replica: ${held.join(' ')}; moves ${moved}${moves.length ? ':' : ''}`);
  for (let i = 0; i < moves.length; i += 6) console.log(`    ${moves.slice(i, i + 6).join(', ')}`);
}

/** Requests that arrived while an earlier one was still before its first token on the same replica, by whose that one was. */
function waits(served: Map<SimRequest, Served>): void {
  const byReplica = new Map<number, Array<{ at: number; first: number; s: Served }>>();
  for (const r of requests) {
    const s = served.get(r);
    if (!s) continue;
    const at = r.arrivalUs / 1000;
    (byReplica.get(s.replica) ?? byReplica.set(s.replica, []).get(s.replica)!).push({ at, first: at + s.ttftMs, s });
  }
  const p95 = percentile([...served.values()].map((s) => s.ttftMs).sort((a, b) => a - b), 95);
  const kinds = new Map<string, { all: number; tail: number }>();
  for (const r of requests) {
    const s = served.get(r);
    if (!s) continue;
    const at = r.arrivalUs / 1000;
    let latest: { at: number; s: Served } | null = null;
    for (const e of byReplica.get(s.replica)!) if (e.at < at && e.first > at && (!latest || e.at > latest.at)) latest = e;
    const kind = !latest ? 'nothing prefilling'
      : latest.s.gateway === s.gateway && latest.s.worker === s.worker ? 'behind its own entry point\'s'
        : at - latest.at < UNHEARD_MS ? `behind another entry point's, placed < ${UNHEARD_MS} ms before`
          : 'behind another entry point\'s, placed earlier';
    const k = kinds.get(kind) ?? { all: 0, tail: 0 };
    k.all++;
    if (s.ttftMs > p95) k.tail++;
    kinds.set(kind, k);
  }
  console.log(`  on arrival at its replica (the latest earlier request there still before its first token), and how many of them are in the tail (TTFT > p95 ${p95.toFixed(0)} ms):`);
  for (const [kind, k] of kinds) console.log(`    ${kind}: ${k.all}, in the tail ${k.tail}`);
}

const pr = BASE_POLICIES.find((p) => p.name === 'prefix-router')!;
const split: PolicySpec = { ...pr, name: `prefix-router/${GATEWAYS}-gateways-${WORKERS}-workers`, gateways: GATEWAYS, workers: WORKERS };
for (const spec of GATEWAYS === 1 && WORKERS === 1 ? [pr] : [pr, split]) {
  const served = await run(spec);
  windows(served);
  sessions(served);
  waits(served);
}
