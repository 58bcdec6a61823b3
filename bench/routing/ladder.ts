// The load ladder: every workload at fractions of round robin's capacity on
// that shape (30, 50, 70, 90, 110% by default), every policy on the same
// arrivals at each rung, and per policy its goodput: the highest offered rate
// whose TTFT p95 stays under the SLO.
//
// Round robin's capacity is measured, not tuned. Poisson shapes: round robin
// runs the shape at an offered rate well past what the replicas can serve
// (starting at twice the no-cache estimate from the latency model, doubled
// until its throughput falls below 85% of the rate that arrived), and its
// throughput there (completed over first arrival to last completion) is the
// capacity. A trace is measured so too, its timestamps scaled to the rate,
// and every rung replays all of it. Session shapes cannot be overloaded that
// way (a session's turns come at its own pace, so the arrival rate is bounded
// by how many sessions there are), so their capacity is calculated: round
// robin runs at half the no-cache estimate, its prompt-token hit rate h at
// first admission is measured, and capacity = replicas / mean engine time per request with
// (1 - h) of every prompt prefilled (latency model: 38 ms + 0.228 ms per
// prefilled token + 0.87 ms per output token at a saturated batch).
// Each rung then offers `load x capacity`, with `load x requestsAtCapacity`
// requests, so every rung spans about the same simulated time. The offered
// rate reported is the rate that arrived (requests over the arrival span),
// which for session shapes is below the nominal rate (sessions ramp up and
// down at the ends of the run).
import { T4_QWEN25_3B } from '../../simulator/latency.js';
import { oracleHitRate } from './oracle.js';
import { makePolicy } from './runner.js';
import { loadXxhash } from './gie.js';
import type { PolicySpec, ScenarioKind } from './scenarios.js';
import { simulate, type PolicyResult } from './simulation.js';
import type { Workload } from './workloads.js';

/** The ladder's defaults (bench:routing's flags): replicas, rungs as fractions of round robin's capacity, the extra rungs, the variants' rung. */
export const LADDER_REPLICAS = 16;
export const DEFAULT_LOADS = [0.3, 0.5, 0.7, 0.9, 1.1];
export const DEFAULT_EXTRA_LOADS = [1.3, 1.6, 2.0];
export const DEFAULT_VARIANT_LOAD = 0.7;

export interface LadderShape {
  name: string;
  kind: ScenarioKind;
  replicas: number;
  /** The shape and where it comes from. */
  label: string;
  /** `n` requests offered at `rateRps` (the same requests, in the same order, at any rate). */
  make(rateRps: number, n: number): Workload;
  /** Requests at the 100% rung. */
  requestsAtCapacity: number;
  /** A trace replayed at `--trace-rate` factors of its own rate (ownRateRps) instead of the ladder's capacity fractions. */
  traceRates?: number[];
  /** A trace's own rate, req/s, at its timestamps. */
  readonly ownRateRps?: number;
  /** KV blocks of every engine, where the shape sizes the cache (default: the simulator's). */
  kvBlocks?: number;
}

export interface Capacity {
  /** Round robin's throughput past saturation, req/s. */
  rps: number;
  /** Offered rate of the run that measured it, and whether round robin fell behind it (false: the search gave up). */
  offeredRps: number;
  saturated: boolean;
  /** 'saturation': measured past saturation; 'calculated': session shapes (see above), with round robin's measured hit rate. */
  method: 'saturation' | 'calculated' | 'trace';
  roundRobinHitRate?: number;
}

export interface LadderRung {
  /** Fraction of round robin's capacity (or the trace-rate factor). */
  load: number;
  /** The rate that arrived: requests over the arrival span (at most the nominal rate). */
  offeredRps: number;
  /** load x capacity. */
  nominalRps: number;
  requests: number;
  oracleHitRate: number;
  policies: PolicyResult[];
}

export interface Goodput {
  /** Highest offered rate with TTFT p95 <= SLO, interpolated (log TTFT) between the rungs around the crossing. */
  rps: number;
  /** The same over round robin's capacity. */
  load: number;
  /** 'crossed': interpolated; 'below-ladder': even the lowest rung missed (rps = 0); 'above-ladder': no rung missed (rps = the highest rung). */
  how: 'crossed' | 'below-ladder' | 'above-ladder';
}

/** The TTFT p95 SLO of goodput: what an interactive user waits for a first token. */
export const DEFAULT_SLO_MS = 2000;
/** The long-context shape's: a cold 40k-token prefill alone takes 9 s. */
export const DEFAULT_LONG_CONTEXT_SLO_MS = 10000;
/** A trace's: production conversation traces (Mooncake's) run to tens of thousands of tokens a prompt, as long context does. */
export const DEFAULT_TRACE_SLO_MS = DEFAULT_LONG_CONTEXT_SLO_MS;

export interface LadderResult {
  name: string;
  kind: ScenarioKind;
  description: string;
  replicas: number;
  /** KV blocks of every engine, where the shape sizes the cache. */
  kvBlocks?: number;
  capacity: Capacity;
  sloMs: number;
  rungs: LadderRung[];
  goodput: Record<string, Goodput>;
  /** Entry-point variants (worker VMs, gateways), run at one rung. */
  variantLoad: number;
  variants: PolicyResult[];
  filterWarnings: string[];
}

export interface LadderOptions {
  seed: number;
  loads: number[];
  /** Extra rungs tried for a policy still under the SLO at the top of the ladder. */
  extraLoads: number[];
  sloMs: number;
  /** The SLO of the long-context shape, whose cold 40k-token prefill alone takes 9 s. */
  longContextSloMs: number;
  /** The SLO of a trace (DEFAULT_TRACE_SLO_MS). */
  traceSloMs: number;
  policies: PolicySpec[];
  variants: PolicySpec[];
  variantLoad: number;
  wasm?: Uint8Array;
  onProgress?: (msg: string) => void;
}

/** Requests/s one replica serves with no cache hit, from the latency model: prefill and batched decode time per request. */
export function noCacheRps(w: Workload, hitRate = 0): number {
  const p = T4_QWEN25_3B;
  const decodeMsPerToken = (p.interTokenLatencyMs + p.decodeTimePerSeqMs * (p.saturationNumSeqs - 1)) / p.saturationNumSeqs;
  let ms = 0;
  for (const r of w.requests) ms += p.prefillOverheadMs + p.prefillTimePerTokenMs * r.promptTokens * (1 - hitRate) + decodeMsPerToken * r.outputTokens;
  return w.requests.length / (ms / 1000);
}

export function arrivedRps(w: Workload): number {
  const reqs = w.requests;
  const span = (reqs[reqs.length - 1]!.arrivalUs - reqs[0]!.arrivalUs) / 1e6;
  return span > 0 ? reqs.length / span : Infinity;
}

/** One policy on workload `w` of `shape`; the filter's unexpected log lines go to `warnings`. */
export async function runPolicy(spec: PolicySpec, w: Workload, shape: LadderShape, o: Pick<LadderOptions, 'seed' | 'wasm'>, warnings: string[]): Promise<PolicyResult> {
  const x = await loadXxhash();
  const replicas = shape.replicas;
  const policy = await makePolicy(spec, replicas, o.seed, w.name, x, o.wasm, shape.kvBlocks);
  try {
    const r = simulate(w, policy, { replicas, gateways: spec.gateways, workers: spec.workers, seed: o.seed, kvBlocks: shape.kvBlocks });
    const logs = (policy as { unexpectedLogs?: () => Array<{ worker: number; level: string; message: string }> }).unexpectedLogs?.() ?? [];
    for (const e of logs) warnings.push(`${spec.name} worker ${e.worker} ${e.level}: ${e.message}`);
    return r;
  } finally {
    await policy.close();
  }
}

const RR: PolicySpec = { name: 'round-robin', kind: 'round-robin', workers: 1, gateways: 1 };

export async function measureCapacity(shape: LadderShape, o: Pick<LadderOptions, 'seed' | 'wasm'>): Promise<Capacity> {
  const probe = shape.make(1, Math.min(shape.requestsAtCapacity, 200));
  if (shape.kind === 'conversation' || shape.kind === 'long-context') {
    const rate = 0.5 * noCacheRps(probe) * shape.replicas;
    const w = shape.make(rate, Math.round(shape.requestsAtCapacity / 2));
    const h = (await runPolicy(RR, w, shape, o, [])).firstAdmissionHitRate;
    return { rps: noCacheRps(w, h) * shape.replicas, offeredRps: rate, saturated: false, method: 'calculated', roundRobinHitRate: h };
  }
  let rate = 2 * noCacheRps(probe) * shape.replicas;
  let last: Capacity = { rps: 0, offeredRps: rate, saturated: false, method: 'saturation' };
  for (let attempt = 0; attempt < 5; attempt++, rate *= 2) {
    const w = shape.make(rate, shape.requestsAtCapacity);
    const r = await runPolicy(RR, w, shape, o, []);
    const arrived = arrivedRps(w);
    last = { rps: r.throughputRps, offeredRps: rate, saturated: r.throughputRps < 0.85 * arrived, method: 'saturation' };
    if (last.saturated) break;
  }
  return last;
}

/** The arrivals of the rung at `load`: `load x capacity` req/s, `load x requestsAtCapacity` requests (a trace: all of it, its timestamps scaled to the rate). */
export function rungWorkload(shape: LadderShape, capacity: Capacity, load: number): Workload {
  const n = shape.kind === 'trace' ? shape.requestsAtCapacity : Math.max(20, Math.round(load * shape.requestsAtCapacity));
  return shape.make(load * capacity.rps, n);
}

/** Goodput from a policy's rungs (ascending offered rate). */
export function goodputOf(points: ReadonlyArray<{ offeredRps: number; ttftP95Ms: number }>, sloMs: number, capacityRps: number): Goodput {
  for (let i = 0; i < points.length; i++) {
    const p = points[i]!;
    if (p.ttftP95Ms <= sloMs) continue;
    if (i === 0) return { rps: 0, load: 0, how: 'below-ladder' };
    const q = points[i - 1]!;
    const f = (Math.log(sloMs) - Math.log(q.ttftP95Ms)) / (Math.log(p.ttftP95Ms) - Math.log(q.ttftP95Ms));
    const rps = q.offeredRps + (p.offeredRps - q.offeredRps) * Math.min(1, Math.max(0, f));
    return { rps, load: rps / capacityRps, how: 'crossed' };
  }
  const top = points[points.length - 1];
  return top ? { rps: top.offeredRps, load: top.offeredRps / capacityRps, how: 'above-ladder' } : { rps: 0, load: 0, how: 'below-ladder' };
}

export async function runLadder(shape: LadderShape, o: LadderOptions): Promise<LadderResult> {
  const warnings: string[] = [];
  const sloMs = shape.kind === 'long-context' ? o.longContextSloMs : shape.kind === 'trace' ? o.traceSloMs : o.sloMs;
  const t0 = performance.now();
  const atTraceRates = shape.traceRates !== undefined;
  const capacity: Capacity = atTraceRates ? { rps: shape.ownRateRps!, offeredRps: 0, saturated: false, method: 'trace' } : await measureCapacity(shape, o);
  o.onProgress?.(`${shape.name}: round robin capacity ${capacity.rps.toFixed(3)} req/s${capacity.method === 'saturation' && !capacity.saturated ? ' (not saturated)' : ` (${capacity.method})`} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const rungAt = async (load: number, specs: PolicySpec[]): Promise<LadderRung> => {
    const rate = load * capacity.rps;
    const w = rungWorkload(shape, capacity, load);
    const rung: LadderRung = { load, offeredRps: Math.min(rate, arrivedRps(w)), nominalRps: rate, requests: w.requests.filter((r) => !r.warmup).length, oracleHitRate: oracleHitRate(w.requests), policies: [] };
    for (const spec of specs) {
      const t = performance.now();
      rung.policies.push(await runPolicy(spec, w, shape, o, warnings));
      o.onProgress?.(`${shape.name} @${Math.round(load * 100)}% ${spec.name}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    return rung;
  };
  const loads = atTraceRates ? shape.traceRates! : o.loads;
  const rungs: LadderRung[] = [];
  for (const load of loads) rungs.push(await rungAt(load, o.policies));
  // Policies still under the SLO at the top rung climb the extra rungs until they miss it.
  if (!atTraceRates) {
    let climbing = o.policies.filter((s) => (rungs[rungs.length - 1]?.policies.find((p) => p.name === s.name)?.ttftP95Ms ?? Infinity) <= sloMs);
    for (const load of o.extraLoads) {
      if (climbing.length === 0) break;
      const rung = await rungAt(load, climbing);
      rungs.push(rung);
      climbing = climbing.filter((s) => rung.policies.find((p) => p.name === s.name)!.ttftP95Ms <= sloMs);
    }
  }
  const goodput: Record<string, Goodput> = {};
  for (const spec of o.policies) {
    const pts = rungs.flatMap((r) => r.policies.filter((p) => p.name === spec.name).map((p) => ({ offeredRps: r.offeredRps, ttftP95Ms: p.ttftP95Ms })));
    goodput[spec.name] = goodputOf(pts, sloMs, capacity.rps);
  }
  const variantLoad = atTraceRates ? loads[0]! : o.variantLoad;
  const variants = o.variants.length ? (await rungAt(variantLoad, o.variants)).policies : [];
  const w0 = shape.make(shape.ownRateRps ?? 1, 1); // a trace at its own rate: its description unscaled
  return {
    name: shape.name, kind: shape.kind, description: w0.description.startsWith(shape.label) ? w0.description : `${shape.label}; ${w0.description}`, replicas: shape.replicas, ...(shape.kvBlocks !== undefined ? { kvBlocks: shape.kvBlocks } : {}), capacity, sloMs,
    rungs, goodput, variantLoad, variants, filterWarnings: warnings,
  };
}
