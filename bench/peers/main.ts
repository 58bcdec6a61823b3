// `npm run bench:peers`: the same request stream, in real time on simulated replicas (real sockets
// on 127.0.0.1), through each router: round robin, prefix-router (1 and 4 worker VMs) and the peer
// routers that npm run peers:install put in .peers/. Per router, shape, replica count and load
// point: TTFT p50/p95/p99, end-to-end p95, throughput, the replicas' own prefix-cache hit rate and
// request shares, the router's CPU (from /proc) and the latency it adds at idle (against sending
// straight to a replica); the headline is goodput under a TTFT p95 SLO. Writes result.json and
// report.html to --out; --json prints the result on stdout.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toolArgs } from '../../cli/toolArgs.js';
import { DEFAULT_WORKLOAD_DIR, type Workload } from '../routing/workloads.js';
import { SMOKE_SESSION_SHAPE, SMOKE_SHAPE, loneRequestS, peerShapes, shapeSloMs, type PeerShape } from './shapes.js';
import { PAIRS_LEAD_IN, PROBE_PAIRS, ROUTER_WARMUP_REQUESTS, WARMUP_CONCURRENCY } from './addedLatency.js';
import { BASELINE_SUFFIX, LAYOUT_NAMES, NAMED_ONLY_ROUTERS, ROUTERS, ROUTER_NAMES, hasBaselineLayout, routerNamed, type RouterSpec } from './routers.js';
import { renderTable, renderHtml } from './report.js';
import { runInferencePerfCheck, type InferencePerfCheck } from './inferencePerf.js';
import { IDLE_SETTLE_S, PointStacks, measurePoint, phaseClock, probeAddedLatency, round, startReplicaSet, type AddedLatencyRow, type RunResult } from './point.js';

export type { AddedLatencyRow, RunResult };

export interface PeersOptions {
  out: string;
  routers: string[];
  shapes: PeerShape[];
  replicaCounts: number[];
  loads: number[];
  /** Seconds of arrivals per load point. */
  durationS: number;
  seed: number;
  requestTimeoutMs: number;
  /** Added-latency pairs per router and replica count (0: no probe). */
  probeRequests: number;
  /** Requests through each router, and as many straight to the replicas, before its pairs (default ROUTER_WARMUP_REQUESTS). */
  probeWarmup?: number;
  /** Only the added-latency probe of each router and replica count: no load points. */
  probeOnly?: boolean;
  /** Seconds over which the probe then measures the router's CPU with no traffic (absent or 0: not measured; the command's default IDLE_CPU_S). */
  idleCpuS?: number;
  inferencePerf: boolean;
  /** The shapes a router runs on, where not every shape of the run (absent: every shape). */
  routerShapes?: Record<string, string[]>;
  /** The replica counts a shape runs on, where not every count of the run (absent: every count). */
  shapeReplicas?: Record<string, number[]>;
  /** Sample the replicas' engine gauges every this many ms during the arrivals and drain (0: off). */
  replicaTraceMs?: number;
  /** Another build's dist/prefix-router.js: routers named NAME@baseline run prefix-router layout NAME from it. */
  baseline?: string;
  log: (line: string) => void;
}


export interface GoodputRow { router: string; shape: string; replicas: number; sloMs: number; goodputRps: number; atLoad: number | null; ttftP95At70: number | null; addedLatencyP50Ms: number | null }


export interface PeersResult {
  startedAt: string;
  durationS: number;
  machine: { cpus: number; note: string };
  routers: { name: string; status: 'ran' | 'skipped' | 'failed'; detail: string }[];
  runs: RunResult[];
  goodput: GoodputRow[];
  /** Absent in results from before it was recorded. */
  addedLatency?: AddedLatencyRow[];
  inferencePerf: InferencePerfCheck | null;
}


/**
 * The request stream of one load point: the shape at `load` x its reference rate for `durationS`
 * seconds of arrivals; a session shape's, its warm-up and then a measured window of at least
 * `durationS`. `windowS`: the seconds whose arrivals are measured.
 */
export function pointWorkload(shape: PeerShape, replicas: number, load: number, durationS: number, seed: number): { rate: number; workload: Workload; windowS: number } {
  const rate = pointRate(shape, replicas, load);
  if (shape.sessions) {
    const windowS = Math.max(durationS, shape.sessions.windowS);
    return { rate, workload: shape.sessions.build(rate, windowS, seed), windowS };
  }
  const workload = shape.build(pointRequests(rate, durationS), rate, seed);
  const first = workload.requests.find((r) => !r.warmup);
  return { rate, workload, windowS: lastArrivalS(workload) - (first ? first.arrivalUs / 1e6 : 0) };
}

/** A load point's name in its log files: ROUTER_SHAPE_REPLICAS_LOAD, the router's '/' as '-'. */
export const pointTag = (router: string, shape: string, replicas: number, load: number) => `${router.replace('/', '-')}_${shape}_${replicas}_${load}`;

/** The shape, replica count and load a pointTag names; null for another tag (a probe's). */
export function pointOfTag(tag: string): { shape: string; replicas: number; load: number } | null {
  const [, shape, replicas, load] = tag.split('_');
  return shape && Number(replicas) > 0 && Number(load) > 0 ? { shape, replicas: Number(replicas), load: Number(load) } : null;
}

const pointRate = (shape: PeerShape, replicas: number, load: number) =>
  round(((shape.referenceRps?.(replicas) ?? (shape.rate3 * replicas) / 3)) * load, 2);

/** A p95 over fewer requests is one or two stragglers, so a slow shape's window stretches to hold enough. */
const pointRequests = (rate: number, durationS: number) => Math.max(Math.min(MIN_POINT_REQUESTS, Math.round(rate * MAX_POINT_S)), Math.round(rate * durationS), 1);

const MIN_POINT_REQUESTS = 30;
const MAX_POINT_S = 60;

/**
 * The time a run takes, s: its arrivals, and at least that plus each point's start-up and drain
 * (its last request decoding alone) and each router's idle latency probe per replica count (its
 * own start-up, warm-up, pairs and idle CPU measure).
 */
export function runPlan(o: Pick<PeersOptions, 'shapes' | 'replicaCounts' | 'loads' | 'durationS' | 'probeRequests' | 'probeWarmup' | 'probeOnly' | 'idleCpuS' | 'routerShapes' | 'shapeReplicas'>, routers: string[]): { arrivalsS: number; leastS: number } {
  let arrivalsS = 0;
  let leastS = 0;
  for (const shape of o.probeOnly ? [] : o.shapes) {
    const n = routers.filter((r) => runsOn(o, r, shape)).length;
    for (const replicas of o.replicaCounts.filter((c) => onReplicas(o, shape, c))) {
      for (const load of o.loads) {
        const rate = pointRate(shape, replicas, load);
        const pointArrivalsS = shape.sessions
          ? shape.sessions.warmupS + Math.max(o.durationS, shape.sessions.windowS)
          : (pointRequests(rate, o.durationS) + 2 * (shape.warmupRequests?.(pointRequests(rate, o.durationS)) ?? 0)) / rate;
        arrivalsS += n * pointArrivalsS;
        leastS += n * (pointArrivalsS + loneRequestS(shape) + POINT_START_S);
      }
    }
  }
  if (o.probeRequests > 0) {
    const probed = routers.filter((r) => o.shapes.some((shape) => runsOn(o, r, shape))).length;
    const warmupS = (2 * (o.probeWarmup ?? ROUTER_WARMUP_REQUESTS)) / WARMUP_REQUESTS_PER_S;
    const idleS = (o.idleCpuS ?? 0) > 0 ? IDLE_SETTLE_S + o.idleCpuS! : 0;
    for (const replicas of o.replicaCounts) leastS += probed * (POINT_START_S + warmupS + idleS + (PAIRS_LEAD_IN * (1 + replicas) + 2 * o.probeRequests) * PROBE_REQUEST_S);
  }
  return { arrivalsS, leastS };
}

const runsOn = (o: Pick<PeersOptions, 'routerShapes'>, router: string, shape: PeerShape) => o.routerShapes?.[router]?.includes(shape.name) ?? true;
const onReplicas = (o: Pick<PeersOptions, 'shapeReplicas'>, shape: PeerShape, replicas: number) => o.shapeReplicas?.[shape.name]?.includes(replicas) ?? true;
const lastArrivalS = (w: Workload) => (w.requests.length ? w.requests[w.requests.length - 1]!.arrivalUs / 1e6 : 0);

export async function runPeersBench(o: PeersOptions): Promise<PeersResult> {
  const started = Date.now();
  const probeWarmup = o.probeWarmup ?? ROUTER_WARMUP_REQUESTS;
  if (!Number.isSafeInteger(probeWarmup) || probeWarmup < 0) throw new Error(`probeWarmup must be a whole number >= 0; got ${probeWarmup}`);
  const idleCpuS = o.idleCpuS ?? 0;
  if (!(idleCpuS >= 0)) throw new Error(`idleCpuS must be a number of seconds >= 0; got ${idleCpuS}`);
  mkdirSync(join(o.out, 'logs'), { recursive: true });
  const routerStatus: PeersResult['routers'] = [];
  const chosen: RouterSpec[] = [];
  for (const name of o.routers) {
    const spec = routerNamed(name, o.baseline);
    if (!spec) throw new Error(`unknown router '${name}' (known: ${ROUTER_NAMES.join(', ')}${o.baseline ? `, and prefix-router layouts with ${BASELINE_SUFFIX}` : ''})`);
    const why = spec.unavailable();
    if (why) {
      o.log(`skipping ${name}: ${why}`);
      routerStatus.push({ name, status: 'skipped', detail: why });
    } else {
      chosen.push(spec);
      routerStatus.push({ name, status: 'ran', detail: spec.label ?? '' });
    }
  }
  const ladders = o.shapes.reduce((a, shape) => a + chosen.filter((spec) => runsOn(o, spec.name, shape)).length * o.replicaCounts.filter((c) => onReplicas(o, shape, c)).length, 0);
  const points = ladders * o.loads.length;
  const plan = runPlan(o, chosen.map((spec) => spec.name));
  const restricted = [
    ...Object.entries(o.routerShapes ?? {}).filter(([name]) => chosen.some((spec) => spec.name === name)).map(([name, shapes]) => `${name} on ${shapes.join(', ')} only`),
    ...Object.entries(o.shapeReplicas ?? {}).filter(([name]) => o.shapes.some((shape) => shape.name === name)).map(([name, counts]) => `${name} on ${counts.join(', ')} replicas only`),
  ];
  o.log(`plan: ${o.probeOnly ? `the added-latency probe of ${chosen.length} routers x ${o.replicaCounts.length} replica counts, no load points` : `${points} load points (${chosen.length} routers x ${o.shapes.length} shapes${restricted.length ? ` (${restricted.join('; ')})` : ''} x ${o.replicaCounts.length} replica counts x ${o.loads.length} loads) of ${o.durationS} s`}: ${(plan.arrivalsS / 60).toFixed(1)} min of arrivals, at least ${(plan.leastS / 60).toFixed(1)} min with each point's drain (its last request decoding; deep queues at overload add more) and start-up${o.inferencePerf ? ', and 2 min for the inference-perf check' : ''}`);
  const runs: RunResult[] = [];
  const addedLatency: AddedLatencyRow[] = [];
  const logs = join(o.out, 'logs');
  const stacks = new PointStacks(logs, (spec, e) => {
    const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    o.log(`${spec.name}: failed to start: ${msg}`);
    const st = routerStatus.find((s) => s.name === spec.name)!;
    st.status = 'failed';
    st.detail = msg;
  });
  try {
    for (const replicas of o.replicaCounts) {
      for (const shape of o.shapes.filter((x) => onReplicas(o, x, replicas))) {
        const specs = chosen.filter((s) => runsOn(o, s.name, shape));
        // A router that did not start sits out the rest of this shape's ladder (the next shape tries it again).
        const failed = new Set<string>();
        for (const [li, load] of o.loads.entries()) {
          // Every router at a load point back to back, each load in the other order (A B, then B A):
          // whatever drifts over a run (the machine, its other work) weighs on each router alike,
          // which is what comparing two builds with --baseline needs.
          for (const spec of li % 2 === 0 ? specs : [...specs].reverse()) {
            if (failed.has(spec.name)) continue;
            const clock = phaseClock();
            // Once per router and replica count, before its first point.
            if (o.probeRequests > 0 && !addedLatency.some((a) => a.router === spec.name && a.replicas === replicas)) {
              const row = await probeAddedLatency(stacks, spec, replicas, { warmup: probeWarmup, pairs: o.probeRequests, idleCpuS, seed: o.seed, log: o.log });
              if (!row) { failed.add(spec.name); continue; }
              addedLatency.push(row);
              clock.lap('probe');
            }
            if (o.probeOnly) continue;
            const point = { shape, replicas, load, ...pointWorkload(shape, replicas, load, o.durationS, o.seed), tag: pointTag(spec.name, shape.name, replicas, load) };
            const stack = await stacks.start(spec, replicas, shape.kvBlocks(replicas), point.tag, (phase) => clock.lap(phase), shape.maxModelLen);
            if (!stack) { failed.add(spec.name); continue; }
            try {
              const added = addedLatency.find((a) => a.router === spec.name && a.replicas === replicas);
              const run = await measurePoint(stack, spec, point, clock, { logs, requestTimeoutMs: o.requestTimeoutMs, replicaTraceMs: o.replicaTraceMs, added });
              runs.push(run);
              o.log(`${spec.name.padEnd(24)} ${shape.name}@${replicas} load ${load} (${point.rate} req/s${shape.sessions ? `, ${run.arrivedRps} arrived in the window after ${run.warmupRequests ?? 0} warm-up requests` : ''}): ok ${run.ok}/${run.sent} TTFT p50 ${run.ttftMs.p50} p95 ${run.ttftMs.p95} ms, ${run.throughputRps} req/s, hit ${run.hitRate}, cpu ${run.routerCpuCores}${run.errors.length ? `, errors: ${run.errors.join(' | ')}` : ''}`);
              o.log(`${' '.repeat(24)} phases s: ${Object.entries(run.phasesS!).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
            } finally {
              stacks.stop(stack);
            }
          }
        }
      }
    }
  } finally {
    await stacks.close();
  }
  const goodput = goodputRows(runs, o.shapes);
  let inferencePerf: InferencePerfCheck | null = null;
  if (o.inferencePerf) {
    inferencePerf = await runInferencePerfCheck({ out: o.out, runs, shapes: o.shapes, replicas: o.replicaCounts[0]!, loads: o.loads, durationS: o.durationS, seed: o.seed, startReplicaSet, log: o.log });
  }
  return {
    startedAt: new Date(started).toISOString(), durationS: round((Date.now() - started) / 1000, 0),
    machine: { cpus: (await import('node:os')).cpus().length, note: 'replicas, routers and the load generator share this machine' },
    routers: routerStatus, runs, goodput, addedLatency, inferencePerf,
  };
}


/**
 * Goodput: the highest offered rate whose TTFT p95 meets the shape's SLO with at most 1% failed (the
 * rate a router sustains within the SLO; the measured throughput of each point is in its run).
 */
export function goodputRows(runs: RunResult[], shapes: PeerShape[]): GoodputRow[] {
  const out: GoodputRow[] = [];
  const keys = [...new Set(runs.map((r) => `${r.router}\u0000${r.shape}\u0000${r.replicas}`))];
  for (const k of keys) {
    const [router, shapeName, replicasS] = k.split('\u0000') as [string, string, string];
    const rs = runs.filter((r) => r.router === router && r.shape === shapeName && r.replicas === Number(replicasS));
    const shape = shapes.find((s) => s.name === shapeName)!;
    const slo = shapeSloMs(shape);
    const good = rs.filter((r) => r.ttftMs.p95 <= slo && r.failed <= 0.01 * r.sent);
    const best = good.sort((a, b) => b.offeredRps - a.offeredRps)[0];
    const at70 = rs.find((r) => Math.abs(r.load - 0.7) < 1e-9);
    out.push({
      router, shape: shapeName, replicas: Number(replicasS), sloMs: slo, goodputRps: best?.offeredRps ?? 0, atLoad: best?.load ?? null,
      ttftP95At70: at70?.ttftMs.p95 ?? null, addedLatencyP50Ms: rs[0]?.addedLatencyMs?.p50 ?? null,
    });
  }
  return out;
}

const QUICK = { shapes: ['sp-32x32'], replicas: [3], loads: [0.4, 0.7, 1.0], durationS: 25, routerShapes: undefined, shapeReplicas: undefined };
/**
 * The full run fits in 3.75 hours: the load operators run (0.7) and round robin's capacity (1.0), where
 * goodput still separates the routers; no deep-overload point, whose drains cost most. Several worker
 * VMs or gateways change routing only where requests share prefixes across groups and turns, so
 * prefix-router/4-workers runs on sp-32x32 and multi-turn-chat, and prefix-router/2-gateways on
 * those and the session shapes. The session shapes run on 8 replicas only: their points take
 * minutes each (a warm-up of running sessions, then the window), and on 3 replicas a long-context
 * window would hold 30-40 requests.
 */
export const FULL_RUN = {
  shapes: ['sp-150x5', 'sp-32x32', 'multi-turn-chat', 'one-system-prompt', 'new-system-prompt', 'unique-prompts', 'conversation', 'long-context'], replicas: [3, 8], loads: [0.7, 1.0], durationS: 20,
  routerShapes: {
    'prefix-router/4-workers': ['sp-32x32', 'multi-turn-chat'],
    'prefix-router/2-gateways': ['sp-32x32', 'multi-turn-chat', 'conversation', 'long-context'],
  } as Record<string, string[]>,
  shapeReplicas: { 'new-system-prompt': [8], conversation: [8], 'long-context': [8] } as Record<string, number[]>,
};

/** The smoke run's warm-up: the probe's path, in seconds. */
const SMOKE_PROBE_WARMUP = 50;
/** The idle measure's seconds, after IDLE_SETTLE_S of no traffic (point.ts). */
const IDLE_CPU_S = 5;

/** Starting a point's replicas and router, s, and one request of the idle latency probe (measured: 72 took 3.4-3.7 s). */
const POINT_START_S = 1.1;
const PROBE_REQUEST_S = 0.048;
/** Warm-up requests (both paths) a second, WARMUP_CONCURRENCY in flight (measured: 6000 took 20.7-21.0 s on 3 replicas, 15.3-15.6 on 8). */
const WARMUP_REQUESTS_PER_S = 285;

const USAGE = `usage: npm run bench:peers -- [options]
  (no option)          8 shapes, 3 and 8 replicas (new-system-prompt and the session shapes on 8 only), loads
                       0.7/1, 20 s each (a session shape's point: minutes), every router (prefix-router/4-workers
                       on sp-32x32 and multi-turn-chat, /2-gateways on those and the session shapes): at least
                       3.9 h by the plan line (3.4 h without llm-d-epp)
  --quick              sp-32x32, 3 replicas, loads 0.4/0.7/1.0, 25 s each, every router (~15 min)
  --smoke              two tiny shapes (shared prefixes, conversations) for seconds (the test suite's run)
  --routers A,B        routers to run, each on every shape (default all: ${ROUTERS.map((r) => r.name).join(', ')};
                       named only: ${NAMED_ONLY_ROUTERS.map((r) => r.name).join(', ')})
  --shapes A,B         sp-150x5, sp-32x32, multi-turn-chat, one-system-prompt, new-system-prompt (one system prompt
                       after 400+ requests of sp-32x32's at half the rate, not measured), unique-prompts, conversation,
                       long-context (sessions whose every request is the whole session so far), mooncake-conversation
                       (Mooncake's production conversation trace, data/traces: 300 s of it unmeasured, then a window of
                       180 s or --duration-s; named only, not in the full run)
  --replicas N,M       replica counts (default 3,8)
  --loads F,G          load points as fractions of the shape's reference rate (default 0.7,1; --quick 0.4,0.7,1)
  --duration-s S       seconds of arrivals per load point (default 20; --quick 25); a session shape's point: a
                       warm-up of 150 s (conversation) or 60 (long-context), then a measured window of 80 / 120 s
                       or S, whichever is longer
  --no-inference-perf  skip the inference-perf cross-check
  --probe-only         only each router's added latency at idle, per replica count: no load points
  --probe-pairs N      added-latency pairs per router and replica count (default ${PROBE_PAIRS})
  --probe-warmup N     requests through each router, and as many straight to the replicas, ${WARMUP_CONCURRENCY} in flight,
                       before its added-latency pairs (default ${ROUTER_WARMUP_REQUESTS}: a router in service is past its
                       JIT's warm-up; 0 leaves only the pairs' lead-in of ${PAIRS_LEAD_IN})
  --idle-cpu-s S       after the added-latency pairs, the router's CPU with no traffic over S seconds, once
                       ${IDLE_SETTLE_S} s have passed (default ${IDLE_CPU_S}; 0: not measured)
  --workloads DIR      inference-perf configs (default ${DEFAULT_WORKLOAD_DIR})
  --baseline BUNDLE    also run each prefix-router layout named (${LAYOUT_NAMES.join(', ')})
                       from another build's dist/prefix-router.js, as NAME${BASELINE_SUFFIX}
                       (its filter: the build's plugin/prefix-router.wasm): two builds side by side in real time
  --seed N             (default 1)
  --trace-replicas MS  sample each replica's waiting/running/KV use every MS ms into logs/replicaTrace_*.jsonl
                       (every point also writes logs/requests_*.jsonl: each request's times, replica and group)
  --out DIR            (default out/bench-peers)
  --json               print result.json on stdout`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, fail, int } = toolArgs('bench:peers', USAGE, {
    quick: { type: 'boolean' }, smoke: { type: 'boolean' }, routers: { type: 'string' }, shapes: { type: 'string' }, replicas: { type: 'string' },
    loads: { type: 'string' }, 'duration-s': { type: 'string' }, 'no-inference-perf': { type: 'boolean' }, 'probe-only': { type: 'boolean' }, 'probe-pairs': { type: 'string' }, 'probe-warmup': { type: 'string' }, 'idle-cpu-s': { type: 'string' }, workloads: { type: 'string' },
    seed: { type: 'string' }, baseline: { type: 'string' }, 'trace-replicas': { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, false, argv);
  const list = (s: string | undefined) => s?.split(',').map((x) => x.trim()).filter(Boolean);
  const nums = (s: string | undefined, flag: string) => list(s)?.map((x) => { const n = Number(x); if (!(n > 0)) fail(`--${flag}: '${x}' is not a positive number`); return n; });
  const base = v.quick ? QUICK : FULL_RUN;
  const probePairs = int('probe-pairs', v['probe-pairs'], v.smoke ? 5 : PROBE_PAIRS, 1);
  const probeWarmup = int('probe-warmup', v['probe-warmup'], v.smoke ? SMOKE_PROBE_WARMUP : ROUTER_WARMUP_REQUESTS, 0);
  try {
    const workloadDir = v.workloads ?? DEFAULT_WORKLOAD_DIR;
    const all = v.smoke ? [SMOKE_SHAPE, SMOKE_SESSION_SHAPE] : peerShapes(workloadDir);
    const shapeNames = list(v.shapes) ?? (v.smoke ? all.map((s) => s.name) : base.shapes);
    const shapes = shapeNames.map((n) => { const s = all.find((x) => x.name === n); if (!s) throw new Error(`--shapes: unknown shape '${n}'`); return s; });
    const log = (line: string) => process.stderr.write(line + '\n');
    let routers = list(v.routers) ?? ROUTERS.map((r) => r.name);
    const baseline = v.baseline === undefined ? undefined : resolve(v.baseline);
    if (baseline !== undefined) {
      if (!existsSync(baseline)) throw new Error(`--baseline: ${baseline} is missing (build that tree: npm run build)`);
      const layouts = routers.filter(hasBaselineLayout);
      if (layouts.length === 0) throw new Error('--baseline: no prefix-router layout among the routers to run it with');
      // A layout named with its @baseline as well runs once as each.
      routers = [...new Set(routers.flatMap((r) => (hasBaselineLayout(r) ? [r, r + BASELINE_SUFFIX] : [r])))];
    }
    const result = await runPeersBench({
      out: resolve(v.out ?? 'out/bench-peers'),
      routers,
      baseline,
      shapes,
      replicaCounts: nums(v.replicas, 'replicas') ?? (v.smoke ? [2] : base.replicas),
      loads: nums(v.loads, 'loads') ?? (v.smoke ? [1] : base.loads),
      durationS: nums(v['duration-s'], 'duration-s')?.[0] ?? (v.smoke ? 2 : base.durationS),
      seed: nums(v.seed, 'seed')?.[0] ?? 1,
      requestTimeoutMs: 120_000,
      probeRequests: probePairs,
      probeWarmup,
      idleCpuS: int('idle-cpu-s', v['idle-cpu-s'], v.smoke ? 1 : IDLE_CPU_S, 0),
      probeOnly: v['probe-only'] ?? false,
      inferencePerf: !v['no-inference-perf'] && !v.smoke && !v['probe-only'],
      routerShapes: v.routers || v.smoke ? undefined : base.routerShapes,
      shapeReplicas: v.replicas || v.shapes || v.smoke ? undefined : base.shapeReplicas,
      replicaTraceMs: nums(v['trace-replicas'], 'trace-replicas')?.[0] ?? 0,
      log,
    });
    const out = resolve(v.out ?? 'out/bench-peers');
    writeFileSync(join(out, 'result.json'), JSON.stringify(result, null, 2));
    writeFileSync(join(out, 'report.html'), renderHtml(result, shapes));
    if (v.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else process.stdout.write(renderTable(result) + `\nwrote ${join(out, 'result.json')} and ${join(out, 'report.html')}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`bench:peers: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
