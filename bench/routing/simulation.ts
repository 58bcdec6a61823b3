// The discrete-event simulation: one workload's arrivals, N replica engines in
// virtual time, a routing policy deciding every request, the control plane's
// 50 ms scrape feeding the policy. Deterministic: no wall clock, seeded
// randomness, events handled in (time, replica, request) order.
import { ReplicaEngine, type EngineEvent, type MetricsSnapshot } from '../../simulator/engine.js';
import { Rng } from './random.js';
import type { Decision, ReplicaMetrics, RoutingPolicy } from './policy.js';
import { MODEL, type SimRequest, type Workload } from './workloads.js';

/** The control plane's scrape interval (control-plane default: 20 states a second). */
export const SCRAPE_INTERVAL_US = 50_000;
/** Replica engines as the seed deployment runs them: T4, Qwen2.5-3B, gpu_memory_utilization 0.75 (simulator defaults). */
export const ENGINE_BLOCKS = 8400;
export const ENGINE_BLOCK_SIZE = 16;
/** Longest prompt + output: 64k, so the long-context shape's 60k-token prompts fit (Qwen2.5 serves 32k natively, 128k with YaRN). */
export const ENGINE_MAX_MODEL_LEN = 65536;

export interface SimulationOptions {
  replicas: number;
  /** Gateway processes (each with its own shared data) and worker VMs per gateway. */
  gateways: number;
  workers: number;
  seed: number;
  /** LoRA slots of every engine (0 or absent: LoRA off). */
  maxLoras?: number;
  /** KV blocks of every engine (default ENGINE_BLOCKS). */
  kvBlocks?: number;
  /** TTFT bound for `withinSloRps` (ms). */
  sloMs?: number;
  /** Called for every served request when it finishes: where it went, its TTFT from arrival, the prompt tokens its engine found cached, the entry point it came in through. */
  onServed?: (served: { req: SimRequest; replica: number; ttftMs: number; cachedTokens: number; entry: { gateway: number; worker: number } }) => void;
}

export interface PolicyResult {
  name: string;
  /** Prompt-token prefix-cache hit rate from the engines' counters (hits / queries). */
  hitRate: number;
  /**
   * Prompt tokens found cached when each request was first admitted, over all prompt tokens:
   * the counters' rate without recomputation after preemption (which the counters count again).
   * This is the rate comparable with the oracle.
   */
  firstAdmissionHitRate: number;
  throughputRps: number;
  ttftP50Ms: number;
  ttftP95Ms: number;
  ttftMeanMs: number;
  e2eP95Ms: number;
  /** Busiest replica's request count over the mean. */
  maxOverMeanLoad: number;
  /** Fraction of requests each replica took. */
  shares: number[];
  /** Time-averaged requests in each engine (running + waiting), sampled at every scrape. */
  meanOutstanding: number[];
  /** Measured requests completed (warm-up ones are not measured). */
  completed: number;
  /** Requests an engine refused (too long for it): not served, not in the latency figures. */
  rejected: number;
  makespanS: number;
  preemptions: number;
  /** Prefix blocks the router believed matched / hashed, summed (routers that say). */
  routerMatchedBlocks?: number;
  routerTotalBlocks?: number;
  /**
   * Agreement (more than one entry point): for each request, whether it went to the same replica
   * as the last request of its group (system prompt, conversation, first trace block) that came
   * in through another gateway (crossGateway), another worker VM of the same gateway (crossWorker),
   * or the same worker of the same gateway (sameEntry, the baseline: how sticky one router is).
   */
  crossGatewayAgreement?: number;
  crossWorkerAgreement?: number;
  sameEntryAgreement?: number;
  /** The router's own counters (the filter's metrics), when it has them. */
  routerStats?: Record<string, number>;
  /** Requests the router refused (429): not served, not in the latency figures. */
  refused?: number;
  /** Served requests whose TTFT (from arrival, time held by the router included) met `sloMs`, per second of the run. */
  withinSloRps?: number;
  /** Adapters the engines loaded into a slot (LoRA runs). */
  loraLoads?: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

function toMetrics(s: MetricsSnapshot): ReplicaMetrics {
  const m: ReplicaMetrics = { waiting: s.numRequestsWaiting, running: s.numRequestsRunning, kvUsage: s.kvCacheUsage, kvCapacityTokens: s.numGpuBlocks * s.blockSize, maxModelLen: ENGINE_MAX_MODEL_LEN };
  if (s.maxLoras > 0) m.lora = { maxLora: s.maxLoras, running: s.runningLoraAdapters, waiting: s.waitingLoraAdapters, baseModel: MODEL };
  return m;
}

interface Open { req: SimRequest; decision: Decision; replica: number; entry: { gateway: number; worker: number }; heldMs: number }

/** Runs one policy over one workload; the policy is closed by the caller. */
export function simulate(workload: Workload, policy: RoutingPolicy, opts: SimulationOptions): PolicyResult {
  const n = opts.replicas;
  const engines = Array.from({ length: n }, () => new ReplicaEngine({ numGpuBlocks: opts.kvBlocks ?? ENGINE_BLOCKS, blockSize: ENGINE_BLOCK_SIZE, maxModelLen: ENGINE_MAX_MODEL_LEN, maxLoras: opts.maxLoras ?? 0 }, 0));
  policy.bindEngines?.(engines);
  // Which gateway/worker each request enters through: the same for every policy on this workload.
  const entryRng = Rng.of(opts.seed, workload.name, 'entry');
  const open = new Map<string, Open>(); // `${replica}:${engine id}`
  const reqs = workload.requests;
  const counts = new Array<number>(n).fill(0);
  const outstandingSum = new Array<number>(n).fill(0);
  let samples = 0;
  const ttft: number[] = [];
  const e2e: number[] = [];
  let completed = 0, rejected = 0, refused = 0, withinSlo = 0, lastFinishUs = 0, firstHitTokens = 0, finishedPromptTokens = 0;
  let routerMatched = 0, routerTotal = 0, anyRouterPrefix = false;
  // agreement: last replica per (group, gateway)
  const lastByGroup = new Map<string, Array<number | undefined>>(); // per (group), last replica per entry point
  let crossAgree = 0, crossPairs = 0, sameAgree = 0, samePairs = 0, workerAgree = 0, workerPairs = 0;
  const entries = opts.gateways * opts.workers;
  /** Decisions the router holds (admission), with the entry point they came through. */
  const held = new Map<Decision, { gateway: number; worker: number }>();

  // The loop runs on the engines' clock (ms, fractional: step times come from the latency
  // model); the policy sees whole microseconds, rounded, which never go backwards either.
  let nextArrival = 0;
  let scrapes = 0;
  let nowUs = 0;
  const usOf = (ms: number) => Math.round(ms * 1000);
  const arrivalMs = (r: SimRequest) => r.arrivalUs / 1000;
  const scrapeMs = () => (scrapes * SCRAPE_INTERVAL_US) / 1000;

  // What the router believed it matched (the filter says so in a response header, so read at the end).
  const tallyPrefix = (d: Decision) => {
    if (d.total !== undefined) { anyRouterPrefix = true; routerMatched += d.matched ?? 0; routerTotal += d.total; }
  };
  const handle = (replica: number, ev: EngineEvent) => {
    const key = `${replica}:${ev.id}`;
    const o = open.get(key);
    if (!o) return;
    const atUs = Math.max(nowUs, usOf(ev.atMs));
    policy.advanceTo(atUs);
    if (ev.kind === 'first_token') {
      policy.onFirstToken(o.decision, atUs);
    } else if (ev.kind === 'finished') {
      open.delete(key);
      policy.onFinish(o.decision, atUs);
      lastFinishUs = Math.max(lastFinishUs, atUs);
      opts.onServed?.({ req: o.req, replica, ttftMs: ev.ttftMs + o.heldMs, cachedTokens: ev.cachedTokens, entry: o.entry });
      // A warm-up request brings the replicas and the router to the state measured from: not measured.
      if (o.req.warmup) return;
      completed++;
      tallyPrefix(o.decision);
      firstHitTokens += ev.cachedTokens;
      finishedPromptTokens += ev.promptTokens;
      // Latency from arrival: time the router held the request counts.
      ttft.push(ev.ttftMs + o.heldMs);
      e2e.push(ev.e2eMs + o.heldMs);
      if (opts.sloMs !== undefined && ev.ttftMs + o.heldMs <= opts.sloMs) withinSlo++;
    }
  };

  for (;;) {
    const tArrival = nextArrival < reqs.length ? arrivalMs(reqs[nextArrival]!) : Infinity;
    let tEngine = Infinity;
    for (const e of engines) tEngine = Math.min(tEngine, e.nextEventTime());
    const working = nextArrival < reqs.length || open.size > 0 || held.size > 0;
    if (!working) break;
    const tMs = Math.min(tArrival, tEngine, scrapeMs());
    // Engine events up to t, in (time, replica, id) order.
    const batch: Array<{ replica: number; ev: EngineEvent }> = [];
    for (let i = 0; i < n; i++) for (const ev of engines[i]!.advance(tMs)) batch.push({ replica: i, ev });
    batch.sort((a, b) => a.ev.atMs - b.ev.atMs || a.replica - b.replica || a.ev.id - b.ev.id || (a.ev.kind === 'first_token' ? -1 : 1));
    for (const { replica, ev } of batch) handle(replica, ev);
    const t = Math.max(nowUs, usOf(tMs));
    nowUs = t;
    policy.advanceTo(t);
    if (tMs === scrapeMs()) {
      const snaps = engines.map((e) => e.metricsSnapshot());
      policy.onScrape(t, snaps.map(toMetrics));
      for (let i = 0; i < n; i++) outstandingSum[i]! += snaps[i]!.numRequestsRunning + snaps[i]!.numRequestsWaiting;
      samples++;
      scrapes++;
    }
    while (nextArrival < reqs.length && arrivalMs(reqs[nextArrival]!) === tMs) {
      const req = reqs[nextArrival++]!;
      const entry = { gateway: opts.gateways > 1 ? entryRng.int(opts.gateways) : 0, worker: opts.workers > 1 ? entryRng.int(opts.workers) : 0 };
      const decision = policy.route(req, entry, t);
      if (decision.refused) { refused++; continue; }
      if (decision.held) { held.set(decision, entry); continue; }
      submit(req, decision, entry, tMs);
    }
    settle(tMs);
  }

  function settle(tMs: number): void {
    for (const { req, decision } of policy.takeSettled?.() ?? []) {
      const entry = held.get(decision) ?? { gateway: 0, worker: 0 };
      held.delete(decision);
      if (decision.refused) refused++;
      else submit(req, decision, entry, tMs);
    }
  }

  function submit(req: SimRequest, decision: Decision, entry: { gateway: number; worker: number }, tMs: number): void {
    {
      const replica = decision.replica;
      if (!(replica >= 0 && replica < n)) throw new Error(`${policy.name}: routed request ${req.id} to replica ${replica} of ${n}`);
      if (!req.warmup) counts[replica]!++;
      if (entries > 1) {
        // Agreement: the replica this request went to against the last one each other entry point
        // (gateway, worker VM) sent the same group to.
        let last = lastByGroup.get(req.group);
        if (!last) lastByGroup.set(req.group, (last = new Array(entries).fill(undefined)));
        const mine = entry.gateway * opts.workers + entry.worker;
        for (let e = 0; e < entries; e++) {
          const prev = last[e];
          if (prev === undefined) continue;
          const agree = prev === replica ? 1 : 0;
          if (e === mine) { samePairs++; sameAgree += agree; }
          else if (Math.floor(e / opts.workers) !== entry.gateway) { crossPairs++; crossAgree += agree; }
          else { workerPairs++; workerAgree += agree; }
        }
        last[mine] = replica;
      }
      let id: number;
      try {
        id = engines[replica]!.submit({ promptTokens: req.promptTokens, blockHashes: req.blockHashes, outputTokens: req.outputTokens, ...(req.lora !== undefined ? { lora: req.lora } : {}) }, tMs);
      } catch (e) {
        rejected++;
        policy.onFinish(decision, usOf(tMs));
        return;
      }
      open.set(`${replica}:${id}`, { req, decision, replica, entry, heldMs: Math.max(0, tMs - arrivalMs(req)) });
    }
  }

  let queries = 0, hits = 0, preemptions = 0, loraLoads = 0;
  for (const e of engines) {
    const s = e.metricsSnapshot();
    queries += s.prefixCacheQueries;
    hits += s.prefixCacheHits;
    preemptions += s.preemptions;
    loraLoads += s.loraLoads;
  }
  ttft.sort((a, b) => a - b);
  e2e.sort((a, b) => a - b);
  const routed = counts.reduce((a, b) => a + b, 0);
  const mean = routed / n;
  const firstMeasured = reqs.find((r) => !r.warmup);
  const firstArrivalUs = firstMeasured ? firstMeasured.arrivalUs : 0;
  const makespanS = (lastFinishUs - firstArrivalUs) / 1e6;
  const result: PolicyResult = {
    name: policy.name,
    hitRate: queries > 0 ? hits / queries : 0,
    firstAdmissionHitRate: finishedPromptTokens > 0 ? firstHitTokens / finishedPromptTokens : 0,
    throughputRps: makespanS > 0 ? completed / makespanS : 0,
    ttftP50Ms: percentile(ttft, 50),
    ttftP95Ms: percentile(ttft, 95),
    ttftMeanMs: ttft.length ? ttft.reduce((a, b) => a + b, 0) / ttft.length : 0,
    e2eP95Ms: percentile(e2e, 95),
    maxOverMeanLoad: mean > 0 ? Math.max(...counts) / mean : 0,
    shares: counts.map((c) => (routed > 0 ? c / routed : 0)),
    meanOutstanding: outstandingSum.map((s) => (samples > 0 ? s / samples : 0)),
    completed,
    rejected,
    makespanS,
    preemptions,
  };
  if (refused > 0 || held.size > 0 || policy.takeSettled) result.refused = refused;
  if (opts.sloMs !== undefined) result.withinSloRps = makespanS > 0 ? withinSlo / makespanS : 0;
  if (opts.maxLoras) result.loraLoads = loraLoads;
  if (anyRouterPrefix) { result.routerMatchedBlocks = routerMatched; result.routerTotalBlocks = routerTotal; }
  const stats = policy.stats?.();
  if (stats) result.routerStats = stats;
  if (opts.gateways > 1) result.crossGatewayAgreement = crossPairs > 0 ? crossAgree / crossPairs : NaN;
  if (opts.workers > 1) result.crossWorkerAgreement = workerPairs > 0 ? workerAgree / workerPairs : NaN;
  if (entries > 1) result.sameEntryAgreement = samePairs > 0 ? sameAgree / samePairs : NaN;
  return result;
}
