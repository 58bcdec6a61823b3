// The scenarios of a routing run: which workload, how many replicas, which
// policies. Offered loads are fixed per shape (requests/s per 3 replicas, scaled
// with the replica count): about 1.25x what round robin sustains on that shape
// in this simulator (measured once with seed 1 under heavy overload: 150x5 0.81,
// 32x32 8.6, 256x16 high-cache 4.1, low-cache 3.8, multi-turn 5.9, one system
// prompt 10.9, unique prompts 3.7 req/s), so every run is past round robin's
// capacity: throughput then measures what the replicas can serve, which is what
// routing changes. The same rates are used for every policy.
import { join } from 'node:path';
import type { Weights } from '../../control-plane/stateWire.js';
import type { LadderShape } from './ladder.js';
import { mooncakeWorkload, readMooncakeTrace, traceAtRate } from './mooncake.js';
import { ENGINE_BLOCK_SIZE } from './simulation.js';
import { CONVERSATION, LONG_CONTEXT, sessionTemplate, sessionWorkload, type SessionShape, type SessionTemplate } from './sessions.js';
import {
  afterWarmup, readSharedPrefixShape, sharedPrefixWorkload, uniqueWorkload, type SharedPrefixShape, type Workload,
} from './workloads.js';

export type ScenarioKind = 'shared-prefix' | 'conversation' | 'long-context' | 'hot-spot' | 'unique' | 'trace';

export interface Scenario {
  name: string;
  kind: ScenarioKind;
  replicas: number;
  /** Also run prefix-router with 4 worker VMs and with 2 independent gateways. */
  variants: boolean;
  build(): Workload;
}

export type PolicyKind = 'round-robin' | 'least-load' | 'gie-style' | 'sglang-style' | 'prefix-router' | 'precise' | 'proto-work';
export interface PolicySpec {
  name: string;
  kind: PolicyKind;
  weights?: Weights;
  workers: number;
  gateways: number;
  /** proto-work: deepest block hashed (Infinity: every block); proto-work and prefix-router: whether gateways exchange placements and work counts (default true). */
  maxBlocks?: number;
  fleet?: boolean;
  /** precise / proto-work: the guard's epsilon on work (default runner.ts WORK_EPSILON). */
  epsilon?: number;
  /** proto-work: guard on predicted work (default) or on requests in flight, as prefix-router today. */
  guard?: 'work' | 'count' | 'both';
}

/** The seed's weights and its three published profiles (prefix / queue / KV), in-flight 1 throughout. */
export const BASE_POLICIES: PolicySpec[] = [
  { name: 'round-robin', kind: 'round-robin', workers: 1, gateways: 1 },
  { name: 'least-load', kind: 'least-load', workers: 1, gateways: 1 },
  { name: 'gie-style', kind: 'gie-style', workers: 1, gateways: 1 },
  { name: 'prefix-router', kind: 'prefix-router', weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, workers: 1, gateways: 1 },
  { name: 'prefix-router/latency', kind: 'prefix-router', weights: { prefix: 5, queue: 1, kvCache: 1, inflight: 1 }, workers: 1, gateways: 1 },
  { name: 'prefix-router/throughput', kind: 'prefix-router', weights: { prefix: 1, queue: 3, kvCache: 2, inflight: 1 }, workers: 1, gateways: 1 },
  { name: 'prefix-router/capacity', kind: 'prefix-router', weights: { prefix: 1, queue: 1, kvCache: 5, inflight: 1 }, workers: 1, gateways: 1 },
];
export const VARIANT_POLICIES: PolicySpec[] = [
  { name: 'prefix-router/4-workers', kind: 'prefix-router', weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, workers: 4, gateways: 1 },
  { name: 'prefix-router/2-gateways', kind: 'prefix-router', weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, workers: 1, gateways: 2 },
];

export interface ShapeDef {
  name: string;
  /** Config file in the workload directory, and what it is. */
  file: string;
  label: string;
  /** Offered load for 3 replicas, req/s. */
  rate3: number;
  /** Requests for 3 replicas (scaled with replicas). */
  requests3: number;
  /** Changes to the shape read from the file (the synthetic edge cases). */
  override?: (s: SharedPrefixShape) => SharedPrefixShape;
  kind: ScenarioKind;
}

export const SHAPES: ShapeDef[] = [
  { name: 'sp-150x5', kind: 'shared-prefix', file: 'gie_00c298a4_short-questions__many-system-prompts-values.yaml', label: 'GIE/llm-d "many system prompts": 150x5 / 6000 / 1200 / 1000', rate3: 1.0, requests3: 1200 },
  { name: 'sp-32x32', kind: 'shared-prefix', file: 'llm-d-benchmark_shared_prefix_synthetic.yaml.in', label: 'llm-d shared_prefix_synthetic: 32x32 / 2048 / 256 / 256', rate3: 11, requests3: 2000 },
  { name: 'sp-256x16-high-cache', kind: 'shared-prefix', file: 'gie_79457c79_high-cache-values.yaml', label: 'GIE high-cache: 256x16 / 2048 / 256 / 256', rate3: 5.2, requests3: 2000 },
  { name: 'sp-256x16-low-cache', kind: 'shared-prefix', file: 'gie_79457c79_low-cache-values.yaml', label: 'GIE low-cache: 256x16 / 256 / 2048 / 256', rate3: 4.8, requests3: 2000 },
  { name: 'multi-turn-chat', kind: 'shared-prefix', file: 'llm-d-benchmark_shared_prefix_multi_turn_chat.yaml.in', label: 'llm-d shared_prefix_multi_turn_chat: 1x20 / 1000 / 200 / 200, multi-turn', rate3: 7.5, requests3: 840 },
  {
    name: 'one-system-prompt', kind: 'hot-spot', file: 'llm-d-benchmark_shared_prefix_synthetic.yaml.in', label: 'one system prompt for all (the seed\'s hot spot): 1x1024 / 2048 / 256 / 256',
    rate3: 13.5, requests3: 2000, override: (s) => ({ ...s, numGroups: 1, promptsPerGroup: s.numGroups * s.promptsPerGroup, multiTurn: false }),
  },
];
/** The shape named `name` in SHAPES. */
export function shapeDef(name: string): ShapeDef {
  const def = SHAPES.find((s) => s.name === name);
  if (!def) throw new Error(`no shape ${name} in bench/routing/scenarios.ts`);
  return def;
}

/** The inference-perf shape `def` names, read from `workloadDir`, with its changes (override) made. */
export function readShapeDef(def: ShapeDef, workloadDir: string): SharedPrefixShape {
  const file = readSharedPrefixShape(join(workloadDir, def.file));
  return def.override ? def.override(file) : file;
}

/**
 * An application's new system prompt: every request starts sending it at once, on replicas and a
 * router warmed by sp-32x32's traffic at half the rate (not measured: at the full rate a router
 * that serves sp-32x32 worse would start the measured requests behind its own backlog). A router
 * that reads a prefix's demand from its recent requests must see the new prompt's within a few
 * requests, not after the hundreds during which its first holders queue.
 */
export const NEW_SYSTEM_PROMPT = 'new-system-prompt';
export const NEW_SYSTEM_PROMPT_LABEL = 'a new system prompt for all (one-system-prompt\'s) after sp-32x32\'s traffic at half the rate';
/** Warm-up requests at least: more than a router's moving count of requests (prefix-router's is about 370), as on a gateway that has been serving. */
export const NEW_SYSTEM_PROMPT_WARMUP = 400;

/** The warm-up requests before `n` of the new system prompt. */
export const newSystemPromptWarmup = (n: number) => Math.max(NEW_SYSTEM_PROMPT_WARMUP, Math.round(n / 2));

/** `n` requests of `hot` at `rateRps` after newSystemPromptWarmup(n) of `warm`'s at half of it, not measured. */
export function newSystemPromptWorkload(warm: SharedPrefixShape, hot: SharedPrefixShape, n: number, rateRps: number, seed: number): Workload {
  const before = sharedPrefixWorkload(`${NEW_SYSTEM_PROMPT}:warm-up`, '', warm, newSystemPromptWarmup(n), rateRps / 2, seed);
  return afterWarmup(NEW_SYSTEM_PROMPT, `${NEW_SYSTEM_PROMPT_LABEL}; Poisson ${rateRps} req/s, ${before.requests.length} warm-up requests not measured`, before,
    sharedPrefixWorkload(NEW_SYSTEM_PROMPT, '', hot, n, rateRps, seed));
}

export const UNIQUE = { name: 'unique-prompts', promptTokens: 2304, outputTokens: 256, rate3: 4.6, requests3: 1200 };

export interface ScenarioOptions {
  workloadDir: string;
  seed: number;
  /** Scales request counts (--quick uses a fraction). */
  requestScale: number;
  /** Replica counts to run the scaling scenarios at, beyond 3. */
  scaleReplicas: number[];
  /** Which shapes also run at the larger replica counts. */
  scaleShapes: string[];
  /** Which scenarios get the 4-worker and 2-gateway variants. */
  variantShapes: string[];
  trace?: { file: string; replicas: number; limit: number };
}

export const DEFAULT_SCENARIO_OPTIONS: Omit<ScenarioOptions, 'workloadDir' | 'seed'> = {
  requestScale: 1,
  scaleReplicas: [8, 16],
  scaleShapes: ['sp-150x5', 'sp-32x32', 'one-system-prompt'],
  variantShapes: ['sp-150x5', 'sp-32x32', 'one-system-prompt', 'multi-turn-chat'],
};

export function buildScenarios(o: ScenarioOptions): Scenario[] {
  const out: Scenario[] = [];
  const counts = (replicas: number, base: number) => Math.max(20, Math.round((base * replicas / 3) * o.requestScale));
  const add = (name: string, kind: ScenarioKind, replicas: number, build: () => Workload) =>
    out.push({ name: replicas === 3 ? name : `${name}@${replicas}`, kind, replicas, variants: replicas === 3 && o.variantShapes.includes(name), build });
  for (const replicas of [3, ...o.scaleReplicas]) {
    for (const s of SHAPES) {
      if (replicas !== 3 && !o.scaleShapes.includes(s.name)) continue;
      add(s.name, s.kind, replicas, () => {
        const shape = readShapeDef(s, o.workloadDir);
        const name = replicas === 3 ? s.name : `${s.name}@${replicas}`;
        const rate = (s.rate3 * replicas) / 3;
        const w = sharedPrefixWorkload(name, `${s.label} (${s.file}); Poisson ${rate} req/s`, shape, counts(replicas, s.requests3), rate, o.seed);
        return w;
      });
    }
    if (replicas === 3 || o.scaleShapes.includes(UNIQUE.name)) {
      add(UNIQUE.name, 'unique', replicas, () => {
        const rate = (UNIQUE.rate3 * replicas) / 3;
        const name = replicas === 3 ? UNIQUE.name : `${UNIQUE.name}@${replicas}`;
        const w = uniqueWorkload(name, UNIQUE.promptTokens, UNIQUE.outputTokens, counts(replicas, UNIQUE.requests3), rate, o.seed);
        w.description += `; Poisson ${rate} req/s`;
        return w;
      });
    }
  }
  if (o.trace) {
    const t = o.trace;
    out.push({
      name: 'trace', kind: 'trace', replicas: t.replicas, variants: true,
      build: () => mooncakeWorkload(`trace:${t.file.split('/').pop()}`, readMooncakeTrace(t.file), o.seed, t.limit),
    });
  }
  return out;
}

// ---- The load ladder (the headline run) ----

/** Requests at round robin's capacity, per replica: enough for a TTFT p95 at each rung. */
export const LADDER_REQUESTS_PER_REPLICA = 100;
/** Session shapes need more: a session lasts minutes, and the rate must hold past the ramp-up. */
export const SESSION_REQUESTS_PER_REPLICA = 150;

export const SESSION_SHAPES: Array<{ name: string; kind: ScenarioKind; shape: SessionShape; label: string }> = [
  { name: 'conversation', kind: 'conversation', shape: CONVERSATION, label: 'conversations: 8 system prompts of 768 tokens, 2-20 turns, each turn the whole conversation so far (1k-30k tokens), think time 4 s' },
  { name: 'long-context', kind: 'long-context', shape: LONG_CONTEXT, label: 'agentic long context: 4 tool preambles of 4k tokens + 12 shared documents of 16k-40k, 2-8 steps appending 1k-4k of tool output (20k-60k tokens)' },
];

/** The policies of every rung: the baselines, the precise bound, prefix-router (the wasm), and the prototypes. */
export const LADDER_POLICIES: PolicySpec[] = [
  BASE_POLICIES[0]!, BASE_POLICIES[1]!, BASE_POLICIES[2]!,
  { name: 'sglang-style', kind: 'sglang-style', workers: 1, gateways: 1 },
  { name: 'precise', kind: 'precise', workers: 1, gateways: 1 },
  BASE_POLICIES[3]!,
  { name: 'proto-work', kind: 'proto-work', workers: 1, gateways: 1, maxBlocks: Infinity, fleet: true },
  { name: 'proto-work/256-blocks', kind: 'proto-work', workers: 1, gateways: 1, maxBlocks: 256, fleet: true },
  { name: 'proto-work/count-guard', kind: 'proto-work', workers: 1, gateways: 1, maxBlocks: Infinity, fleet: true, guard: 'count' },
  { name: 'proto-work/both-guards', kind: 'proto-work', workers: 1, gateways: 1, maxBlocks: Infinity, fleet: true, guard: 'both' },
];

/** Entry-point variants, run at one rung: prefix-router with 4 and 16 worker VMs, 2 and 4 gateways (4 also exchanging nothing); the prototype with 4 gateways, sharing and not. */
export const LADDER_VARIANTS: PolicySpec[] = [
  { ...BASE_POLICIES[3]!, name: 'prefix-router/4-workers', workers: 4 },
  { ...BASE_POLICIES[3]!, name: 'prefix-router/16-workers', workers: 16 },
  { ...BASE_POLICIES[3]!, name: 'prefix-router/2-gateways', gateways: 2 },
  { ...BASE_POLICIES[3]!, name: 'prefix-router/4-gateways', gateways: 4 },
  { ...BASE_POLICIES[3]!, name: 'prefix-router/4-gateways-alone', gateways: 4, fleet: false },
  { name: 'proto-work/4-gateways', kind: 'proto-work', workers: 1, gateways: 4, maxBlocks: Infinity, fleet: true },
  { name: 'proto-work/4-gateways-alone', kind: 'proto-work', workers: 1, gateways: 4, maxBlocks: Infinity, fleet: false },
];

export interface LadderShapeOptions {
  workloadDir: string;
  seed: number;
  replicas: number;
  /** Multiplies every request count. */
  requestScale: number;
  /** The most load any rung offers (sizes session templates). */
  maxLoad: number;
  /** A Mooncake trace on the ladder: at its capacity fractions, or at `rates` multiples of its own rate. */
  trace?: { file: string; replicas: number; limit: number; rates?: number[] };
}

/** The tight-KV shape: the shared prefixes' share of the cluster's cache (llm-d's published runs: ~73%; bench:peers uses the same). */
export const TIGHT_KV_PREFIX_SHARE = 0.75;
const TIGHT_KV_MAX_REPLICAS = 8;

/** KV blocks per replica so that the shape's shared prefixes fill TIGHT_KV_PREFIX_SHARE of `replicas` replicas' cache. */
export function tightKvBlocks(s: SharedPrefixShape, replicas: number): number {
  return Math.ceil((s.numGroups * Math.ceil(s.systemPromptLen / ENGINE_BLOCK_SIZE)) / TIGHT_KV_PREFIX_SHARE / replicas);
}

export function buildLadderShapes(o: LadderShapeOptions): LadderShape[] {
  const out: LadderShape[] = [];
  const n100 = (perReplica: number, replicas = o.replicas) => Math.max(40, Math.round(perReplica * replicas * o.requestScale));
  const read = new Map<string, SharedPrefixShape>();
  const readShape = (s: ShapeDef): SharedPrefixShape => {
    let shape = read.get(s.name);
    if (!shape) read.set(s.name, (shape = readShapeDef(s, o.workloadDir)));
    return shape;
  };
  // Multi-turn: a user's context grows with every turn, so users scale with the replicas and each
  // reaches about the length it has in the 3-replica fixed-overload run (42 turns of 400 tokens).
  const usersFor = (sh: SharedPrefixShape): SharedPrefixShape => sh.multiTurn ? { ...sh, promptsPerGroup: Math.max(sh.promptsPerGroup, Math.round((sh.promptsPerGroup * o.replicas) / 3)) } : sh;
  for (const s of SHAPES) {
    out.push({
      name: s.name, kind: s.kind, replicas: o.replicas, label: `${s.label} (${s.file})`, requestsAtCapacity: n100(LADDER_REQUESTS_PER_REPLICA),
      make: (rate, n) => sharedPrefixWorkload(s.name, 'Poisson arrivals', usersFor(readShape(s)), n, rate, o.seed),
    });
  }
  // The same shape where the cache is scarce, as in llm-d's published runs (the shared prefixes
  // fill ~73% of the cluster's KV) and bench:peers: on at most 8 replicas, so each still runs a
  // batch of several requests beside its share of the prefixes. Every copy of a prefix evicts another.
  const tight = shapeDef('sp-32x32');
  const tightReplicas = Math.min(o.replicas, TIGHT_KV_MAX_REPLICAS);
  out.push({
    name: 'sp-32x32-tight-kv', kind: tight.kind, replicas: tightReplicas,
    label: `${tight.label}, KV sized so the shared prefixes fill ${Math.round(TIGHT_KV_PREFIX_SHARE * 100)}% of the cluster's cache (${tight.file})`,
    requestsAtCapacity: n100(LADDER_REQUESTS_PER_REPLICA, tightReplicas),
    get kvBlocks() { return tightKvBlocks(readShape(tight), tightReplicas); },
    make: (rate, n) => sharedPrefixWorkload('sp-32x32-tight-kv', 'Poisson arrivals', readShape(tight), n, rate, o.seed),
  });
  const hot = shapeDef('one-system-prompt');
  out.push({
    name: NEW_SYSTEM_PROMPT, kind: 'hot-spot', replicas: o.replicas, label: NEW_SYSTEM_PROMPT_LABEL, requestsAtCapacity: n100(LADDER_REQUESTS_PER_REPLICA),
    make: (rate, n) => newSystemPromptWorkload(readShape(tight), readShape(hot), n, rate, o.seed),
  });
  out.push({
    name: UNIQUE.name, kind: 'unique', replicas: o.replicas, label: 'unique prompts:', requestsAtCapacity: n100(LADDER_REQUESTS_PER_REPLICA),
    make: (rate, n) => uniqueWorkload(UNIQUE.name, UNIQUE.promptTokens, UNIQUE.outputTokens, n, rate, o.seed),
  });
  for (const s of SESSION_SHAPES) {
    let tpl: SessionTemplate | undefined;
    const requestsAtCapacity = n100(SESSION_REQUESTS_PER_REPLICA);
    out.push({
      name: s.name, kind: s.kind, replicas: o.replicas, label: s.label, requestsAtCapacity,
      make: (rate, n) => sessionWorkload((tpl ??= sessionTemplate(s.name, s.label, s.shape, Math.ceil(requestsAtCapacity * o.maxLoad) + 1, o.seed)), rate, n),
    });
  }
  if (o.trace) {
    const t = o.trace;
    let base: Workload | undefined;
    // The first requestScale of the trace, at most t.limit records.
    const load = () => {
      if (base) return base;
      const records = readMooncakeTrace(t.file);
      return (base = mooncakeWorkload(`trace:${t.file.split('/').pop()}`, records, o.seed, Math.min(t.limit, Math.max(1, Math.round(records.length * o.requestScale)))));
    };
    out.push({
      name: 'trace', kind: 'trace', replicas: t.replicas, label: `trace ${t.file}`, traceRates: t.rates,
      get requestsAtCapacity() { return load().requests.length; },
      get ownRateRps() { return load().rateRps; },
      // The first n records at `rate` req/s.
      make: (rate, n) => {
        const w = traceAtRate(load(), rate);
        return n < w.requests.length ? { ...w, requests: w.requests.slice(0, n) } : w;
      },
    });
  }
  return out;
}
