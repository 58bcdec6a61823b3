// `npm run bench:peers`: the same request stream, in real time on simulated replicas (real sockets
// on 127.0.0.1), through each router: round robin, prefix-router (1 and 4 worker VMs) and the peer
// routers that npm run peers:install put in .peers/. Per router, shape, replica count and load
// point: TTFT p50/p95/p99, end-to-end p95, throughput, the replicas' own prefix-cache hit rate and
// request shares, the router's CPU (from /proc) and the latency it adds at idle (against sending
// straight to a replica); the headline is goodput under a TTFT p95 SLO. Writes result.json and
// report.html to --out; --json prints the result on stdout.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { toolArgs } from '../../cli/toolArgs.js';
import { percentiles, roundTo } from '../gateway.js';
import { MODEL, DEFAULT_WORKLOAD_DIR, type SimRequest, type Workload } from '../routing/workloads.js';
import { SMOKE_SESSION_SHAPE, SMOKE_SHAPE, loneRequestS, peerShapes, shapeSloMs, type PeerShape } from './shapes.js';
import { coresOver, cpuSecondsOf, tail } from './processes.js';
import { readCounters, diffCounters, servedShape, sumOf, type ServedShape } from './replicaCounters.js';
import { runLoad, type RequestRecord } from './loadgen.js';
import { addedLatencySamples, percentilesMs, warmUpPaths, PAIRS_LEAD_IN, PROBE_PAIRS, ROUTER_WARMUP_REQUESTS, WARMUP_CONCURRENCY } from './addedLatency.js';
import { BASELINE_SUFFIX, ROUTERS, ROUTER_NAMES, REPO, hasBaselineLayout, routerNamed, type RouterSpec, type RunningRouter } from './routers.js';
import { renderTable, renderHtml } from './report.js';
import { runInferencePerfCheck, type InferencePerfCheck } from './inferencePerf.js';


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

export interface RunResult {
  router: string;
  shape: string;
  replicas: number;
  load: number;
  /** The nominal rate: load x the shape's reference rate. */
  offeredRps: number;
  /** The measured requests over the seconds they arrived in (a session shape's: over its window); absent in results from before it was recorded. */
  arrivedRps?: number;
  /** Requests sent unmeasured before a session shape's window (absent: none). */
  warmupRequests?: number;
  sent: number;
  ok: number;
  failed: number;
  errors: string[];
  ttftMs: { p50: number; p95: number; p99: number };
  e2eP50Ms: number;
  e2eP95Ms: number;
  throughputRps: number;
  outputTokensPerS: number;
  hitRate: number;
  replicaShare: number[];
  /** Each replica's preemptions over the point (vllm:num_preemptions_total). */
  replicaPreemptions?: number[];
  routerCpuCores: number;
  /** The part of routerCpuCores off the request path (prefix-router's control plane); absent for routers without one. */
  controlPlaneCpuCores?: number;
  addedLatencyMs: { p50: number; p95: number } | null;
  /** What the replicas served, per request, by their own counters. */
  served: ServedShape;
  /**
   * Wall seconds of the point's phases in the order they ran (the drain: from the last request sent
   * to the last one finished); absent in results from before it was recorded.
   */
  phasesS?: Record<string, number>;
}

export interface GoodputRow { router: string; shape: string; replicas: number; sloMs: number; goodputRps: number; atLoad: number | null; ttftP95At70: number | null; addedLatencyP50Ms: number | null }

/** A router's added latency at idle on a replica count (RunResult.addedLatencyMs of its runs). */
export interface AddedLatencyRow {
  router: string; replicas: number; warmupRequests: number; pairs: number; p50: number; p95: number;
  /** Cores the router's processes use with no traffic, over idleCpuS after IDLE_SETTLE_S (absent: not measured); of them its control plane's. */
  idleCpuCores?: number; idleControlCpuCores?: number; idleCpuS?: number;
}

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

interface ReplicaSet { urls: string[]; pid: number; stop(): Promise<void> }

/**
 * Simulated replicas in their own process; `timeScale` > 1 runs them faster than real time,
 * `maxModelLen` sets their context limit (absent: the simulator's, Qwen2.5's native 32k).
 */
async function startReplicaSet(replicas: number, kvBlocks: number | null, logFile: string, timeScale = 1, maxModelLen?: number): Promise<ReplicaSet> {
  const opts = { replicas, ...(kvBlocks ? { kvCacheSize: kvBlocks } : {}), ...(timeScale !== 1 ? { timeScale } : {}), ...(maxModelLen ? { maxModelLen } : {}) };
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/peers/replicaProcess.ts'), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', fd], detached: true });
  closeSync(fd);
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  const urls = await new Promise<string[]>((resolveUrls, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`replicas did not start within 60 s:\n${tail(logFile)}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) { clearTimeout(t); resolveUrls((JSON.parse(line) as { urls: string[] }).urls); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`replicas exited (${code}):\n${tail(logFile)}`)); });
  }).catch(async (e) => { await stop(); throw e; });
  return { urls, pid: child.pid!, stop };
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
  return { rate, workload, windowS: lastArrivalS(workload) };
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

const round = (v: number, d = 1) => (Number.isFinite(v) ? roundTo(v, d) : NaN);

/**
 * Samples every replica's engine gauges (waiting, running, KV use) and preemptions every `everyMs`
 * into `file`, one JSON line per sample, t in ms from the start: where a run's queues formed.
 */
function traceReplicas(urls: string[], everyMs: number, file: string): { stop: () => Promise<void> } {
  const lines: string[] = [];
  const t0 = performance.now();
  // A failed read is NaN (null in the file), not an idle replica.
  const gauge = (text: string, name: string) => (text === '' ? NaN : sumOf(text, name));
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const t = Math.round(performance.now() - t0);
    void Promise.all(urls.map((u) => fetch(`${u}/metrics`, { signal: AbortSignal.timeout(1000) }).then((r) => r.text()).catch(() => '')))
      .then((texts) => {
        lines.push(JSON.stringify({ t, replicas: texts.map((x) => ({ waiting: gauge(x, 'vllm:num_requests_waiting'), running: gauge(x, 'vllm:num_requests_running'), kv: gauge(x, 'vllm:kv_cache_usage_perc'), preemptions: gauge(x, 'vllm:num_preemptions_total') })) }));
      })
      .finally(() => { busy = false; });
  }, everyMs);
  return { stop: async () => { clearInterval(timer); writeFileSync(file, lines.join('\n') + '\n'); } };
}

/** One JSON line per request: what the client saw, with the prefix group it belongs to (for per-request analysis), and whether it was a warm-up. */
function writeRequestRecords(file: string, records: RequestRecord[], requests: Workload['requests']): void {
  const byId = new Map(requests.map((r) => [r.id, r]));
  writeFileSync(file, records.map((r) => JSON.stringify({ ...r, group: byId.get(r.id)?.group ?? null, ...(byId.get(r.id)?.warmup ? { warmup: true } : {}) })).join('\n') + '\n');
}

/** The point's numbers from its measured requests; throughput over `fromMs` (a session point's window opening) to the last one's end. */
function summarize(records: RequestRecord[], wallMs: number, fromMs = 0): Pick<RunResult, 'sent' | 'ok' | 'failed' | 'errors' | 'ttftMs' | 'e2eP50Ms' | 'e2eP95Ms' | 'throughputRps' | 'outputTokensPerS'> {
  const ok = records.filter((r) => r.ok);
  const ttft = percentiles(ok.map((r) => r.ttftMs));
  const e2e = percentiles(ok.map((r) => r.e2eMs));
  const lastEnd = Math.max(0, ...records.map((r) => r.sentMs + r.e2eMs).filter(Number.isFinite));
  const span = Math.max(1, Math.min(wallMs, lastEnd) - fromMs) / 1000;
  const errors = [...new Set(records.filter((r) => !r.ok).map((r) => r.error ?? `HTTP ${r.status}`))].slice(0, 3);
  return {
    sent: records.length, ok: ok.length, failed: records.length - ok.length, errors,
    ttftMs: { p50: ttft.p50, p95: ttft.p95, p99: ttft.p99 }, e2eP50Ms: e2e.p50, e2eP95Ms: e2e.p95,
    throughputRps: round(ok.length / span, 2), outputTokensPerS: round(ok.reduce((a, r) => a + r.outputTokens, 0) / span, 0),
  };
}

/** Laps of wall time, by phase name. */
function phaseClock() {
  const phases: Record<string, number> = {};
  let last = performance.now();
  return {
    /** The time since the last lap, as `name`. */
    lap(name: string) { const now = performance.now(); phases[name] = (phases[name] ?? 0) + (now - last) / 1000; last = now; },
    /** `seconds` of the current lap as `name`; the rest of the lap goes to the next lap's name. */
    add(name: string, seconds: number) { phases[name] = (phases[name] ?? 0) + seconds; last += seconds * 1000; },
    phases: () => Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(v, 2)])),
  };
}


/** The router's CPU, in cores, with no traffic: IDLE_SETTLE_S of quiet, then `seconds` measured (on-CPU time of its threads). */
async function idleCpu(router: RunningRouter, seconds: number): Promise<{ idleCpuCores: number; idleControlCpuCores: number; idleCpuS: number }> {
  await sleep(IDLE_SETTLE_S * 1000);
  const [all, control] = await coresOver([router.pids, router.controlPids ?? []], seconds);
  return { idleCpuCores: roundTo(all!, 5), idleControlCpuCores: roundTo(control!, 5), idleCpuS: seconds };
}

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
          : pointRequests(rate, o.durationS) / rate;
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
  // Ctrl-C or SIGTERM stops the router and replicas of the point in progress (they run in their own process groups).
  const active = new Set<() => Promise<void>>();
  const onSignal = () => { void Promise.all([...active].map((stop) => stop())).then(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A point's router and replicas stop while the next point's replicas start; the next point waits
  // for them to be gone before its router starts, so nothing of one point runs during another's.
  let stopping: Promise<unknown> = Promise.resolve();
  const stopPoint = (router: RunningRouter | null, sims: ReplicaSet): Promise<unknown> =>
    Promise.all([router?.stop(), sims.stop()]).finally(() => { if (router) active.delete(router.stop); active.delete(sims.stop); });
  const markFailed = (spec: RouterSpec, e: unknown) => {
    const msg = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    o.log(`${spec.name}: failed to start: ${msg}`);
    const st = routerStatus.find((s) => s.name === spec.name)!;
    st.status = 'failed';
    st.detail = msg;
  };
  /**
   * `replicas` replicas (`kvBlocks` each, null: the simulator's default; `maxModelLen`, absent: the
   * simulator's) and `spec`'s router on them,
   * logging under `tag`, the router started once the previous point has stopped; null when the router
   * fails to start (marked failed, its replicas stopping). `lap` names each step's time when given.
   */
  const startStack = async (spec: RouterSpec, replicas: number, kvBlocks: number | null, tag: string, lap?: (phase: string) => void, maxModelLen?: number): Promise<{ sims: ReplicaSet; router: RunningRouter } | null> => {
    const sims = await startReplicaSet(replicas, kvBlocks, join(o.out, 'logs', `replicas_${tag}.log`), 1, maxModelLen);
    active.add(sims.stop);
    lap?.('replicas');
    await stopping;
    lap?.('previous stop');
    let router: RunningRouter;
    try {
      router = await spec.start(sims.urls, join(o.out, 'logs', `${tag}.log`));
    } catch (e) {
      stopping = stopPoint(null, sims);
      markFailed(spec, e);
      return null;
    }
    active.add(router.stop);
    lap?.('router');
    return { sims, router };
  };
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
            const { rate, workload, windowS } = pointWorkload(shape, replicas, load, o.durationS, o.seed);
            const tag = pointTag(spec.name, shape.name, replicas, load);
            const clock = phaseClock();
            // Once per router and replica count, before its first point: on replicas and a router of
            // their own, so that the warm-up leaves nothing in the caches or router state a point starts from.
            if (o.probeRequests > 0 && !addedLatency.some((a) => a.router === spec.name && a.replicas === replicas)) {
              const probe = await startStack(spec, replicas, null, `${spec.name.replace('/', '-')}_probe_${replicas}`);
              if (!probe) { failed.add(spec.name); continue; }
              const { sims: probeSims, router: probeRouter } = probe;
              try {
                const w0 = performance.now();
                await warmUpPaths(probeRouter.url, probeSims.urls, probeWarmup, o.seed);
                const warmupS = (performance.now() - w0) / 1000;
                const p = percentilesMs((await addedLatencySamples(probeRouter.url, probeSims.urls, o.probeRequests, o.seed)).diffsMs);
                const idle = idleCpuS > 0 ? await idleCpu(probeRouter, idleCpuS) : null;
                addedLatency.push({ router: spec.name, replicas, warmupRequests: probeWarmup, pairs: o.probeRequests, ...p, ...(idle ?? {}) });
                o.log(`${spec.name.padEnd(24)} added latency at idle, ${replicas} replicas, after ${probeWarmup} warm-up requests (${warmupS.toFixed(1)} s): p50 ${p.p50} ms, p95 ${p.p95} ms` +
                  (idle ? `; idle CPU ${idle.idleCpuCores.toFixed(4)} cores (control plane ${idle.idleControlCpuCores.toFixed(4)}) over ${idleCpuS} s` : ''));
              } finally {
                stopping = stopPoint(probeRouter, probeSims);
              }
              clock.lap('probe');
            }
            if (o.probeOnly) continue;
            const added = addedLatency.find((a) => a.router === spec.name && a.replicas === replicas);
            const stack = await startStack(spec, replicas, shape.kvBlocks(replicas), tag, (phase) => clock.lap(phase), shape.maxModelLen);
            if (!stack) { failed.add(spec.name); continue; }
            const { sims, router } = stack;
            try {
              let before = await readCounters(sims.urls);
              const cpu0 = cpuSecondsOf(router.pids);
              const control0 = cpuSecondsOf(router.controlPids ?? []);
              clock.lap('counters');
              const trace = (o.replicaTraceMs ?? 0) > 0 ? traceReplicas(sims.urls, o.replicaTraceMs!, join(o.out, 'logs', `replicaTrace_${tag}.jsonl`)) : null;
              // A session point's warm-up is not measured: the replicas' counters restart at its window.
              const warmups = new Set(workload.requests.filter((r) => r.warmup).map((r) => r.id));
              let windowOpen = warmups.size === 0;
              const beforeSend = async (r: SimRequest) => { if (!windowOpen && !r.warmup) { windowOpen = true; before = await readCounters(sims.urls); } };
              const { records: sent, wallMs, lastSentMs } = await runLoad(workload.requests, { url: router.url, urls: router.entryUrls, model: MODEL, requestTimeoutMs: o.requestTimeoutMs, beforeSend });
              const records = sent.filter((r) => !warmups.has(r.id));
              const cpu1 = cpuSecondsOf(router.pids);
              const control1 = cpuSecondsOf(router.controlPids ?? []);
              await trace?.stop();
              writeRequestRecords(join(o.out, 'logs', `requests_${tag}.jsonl`), sent, workload.requests);
              clock.add('arrivals', lastSentMs / 1000);
              clock.lap('drain');
              const delta = diffCounters(await readCounters(sims.urls), before);
              clock.lap('counters');
              const queries = delta.reduce((a, c) => a + c.prefixQueries, 0);
              const hits = delta.reduce((a, c) => a + c.prefixHits, 0);
              const served = delta.reduce((a, c) => a + c.requests, 0);
              const run: RunResult = {
                router: spec.name, shape: shape.name, replicas, load, offeredRps: rate, arrivedRps: windowS > 0 ? round(records.length / windowS, 2) : NaN,
                ...(warmups.size ? { warmupRequests: warmups.size } : {}), ...summarize(records, wallMs, warmups.size && records.length ? Math.min(...records.map((r) => r.sentMs)) : 0),
                hitRate: queries ? round(hits / queries, 3) : NaN,
                replicaShare: delta.map((c) => (served ? round(c.requests / served, 3) : NaN)),
                replicaPreemptions: delta.map((c) => c.preemptions),
                routerCpuCores: round((cpu1 - cpu0) / (wallMs / 1000), 3),
                ...(router.controlPids ? { controlPlaneCpuCores: round((control1 - control0) / (wallMs / 1000), 3) } : {}),
                addedLatencyMs: added ? { p50: added.p50, p95: added.p95 } : null,
                served: servedShape(delta),
                phasesS: clock.phases(),
              };
              runs.push(run);
              o.log(`${spec.name.padEnd(24)} ${shape.name}@${replicas} load ${load} (${rate} req/s${shape.sessions ? `, ${run.arrivedRps} arrived in the window after ${run.warmupRequests ?? 0} warm-up requests` : ''}): ok ${run.ok}/${run.sent} TTFT p50 ${run.ttftMs.p50} p95 ${run.ttftMs.p95} ms, ${run.throughputRps} req/s, hit ${run.hitRate}, cpu ${run.routerCpuCores}${run.errors.length ? `, errors: ${run.errors.join(' | ')}` : ''}`);
              o.log(`${' '.repeat(24)} phases s: ${Object.entries(run.phasesS!).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
            } finally {
              stopping = stopPoint(router, sims);
            }
          }
        }
      }
    }
  } finally {
    await stopping;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
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

export { type ReplicaSet, startReplicaSet };

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
  shapes: ['sp-150x5', 'sp-32x32', 'multi-turn-chat', 'one-system-prompt', 'unique-prompts', 'conversation', 'long-context'], replicas: [3, 8], loads: [0.7, 1.0], durationS: 20,
  routerShapes: {
    'prefix-router/4-workers': ['sp-32x32', 'multi-turn-chat'],
    'prefix-router/2-gateways': ['sp-32x32', 'multi-turn-chat', 'conversation', 'long-context'],
  } as Record<string, string[]>,
  shapeReplicas: { conversation: [8], 'long-context': [8] } as Record<string, number[]>,
};

/** The smoke run's warm-up: the probe's path, in seconds. */
const SMOKE_PROBE_WARMUP = 50;
/**
 * The idle measure: seconds of no traffic before it (a fleet's poller goes back to its slow tick
 * after a full tick with nothing in flight), and seconds measured. What a gateway costs while
 * nobody sends anything is the floor of what it costs in service.
 */
const IDLE_SETTLE_S = 2;
const IDLE_CPU_S = 5;

/** Starting a point's replicas and router, s, and one request of the idle latency probe (measured: 72 took 3.4-3.7 s). */
const POINT_START_S = 1.1;
const PROBE_REQUEST_S = 0.048;
/** Warm-up requests (both paths) a second, WARMUP_CONCURRENCY in flight (measured: 6000 took 20.7-21.0 s on 3 replicas, 15.3-15.6 on 8). */
const WARMUP_REQUESTS_PER_S = 285;

const USAGE = `usage: npm run bench:peers -- [options]
  (no option)          7 shapes, 3 and 8 replicas (the session shapes on 8 only), loads 0.7/1, 20 s each
                       (a session shape's point: minutes), every router (prefix-router/4-workers on sp-32x32 and
                       multi-turn-chat, /2-gateways on those and the session shapes): about 3.5 h
  --quick              sp-32x32, 3 replicas, loads 0.4/0.7/1.0, 25 s each, every router (~15 min)
  --smoke              two tiny shapes (shared prefixes, conversations) for seconds (the test suite's run)
  --routers A,B        routers to run, each on every shape (default all: ${ROUTERS.map((r) => r.name).join(', ')};
                       prefix-router/start, the control plane in the gateway's process, when named)
  --shapes A,B         sp-150x5, sp-32x32, multi-turn-chat, one-system-prompt, unique-prompts,
                       conversation, long-context (sessions whose every request is the whole session so far)
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
  --baseline BUNDLE    also run each prefix-router layout named (prefix-router, /4-workers, /2-gateways,
                       /4-gateways, /start) from another build's dist/prefix-router.js, as NAME${BASELINE_SUFFIX}
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
