// The shapes bench:peers runs: bench:routing's shared-prefix, multi-turn, hot-spot (one system
// prompt from the start, and a new one on a warm router) and session (conversation, long-context)
// shapes, unique prompts and Mooncake's production conversation trace, each with its reference
// rate, KV sizing and TTFT SLO, and the smoke test's tiny one.
import { sharedPrefixWorkload, uniqueWorkload, type SharedPrefixShape, type Workload } from '../routing/workloads.js';
import { NEW_SYSTEM_PROMPT, NEW_SYSTEM_PROMPT_LABEL, SESSION_SHAPES, UNIQUE, newSystemPromptWarmup, newSystemPromptWorkload, readShapeDef, shapeDef, tightKvBlocks } from '../routing/scenarios.js';
import { sessionTemplate, sessionWindowWorkload, type SessionShape, type SessionTemplate } from '../routing/sessions.js';
import { DEFAULT_LONG_CONTEXT_SLO_MS, DEFAULT_SLO_MS, DEFAULT_TRACE_SLO_MS } from '../routing/ladder.js';
import { MOONCAKE_CONVERSATION_TRACE, mooncakeWorkload, readMooncakeTrace, traceAtRate } from '../routing/mooncake.js';
import { ENGINE_MAX_MODEL_LEN } from '../routing/simulation.js';
import { T4_QWEN25_3B } from '../../simulator/latency.js';

interface PeerShapeBase {
  name: string;
  label: string;
  kind: 'shared-prefix' | 'conversation' | 'long-context' | 'hot-spot' | 'unique';
  /** Offered load at load fraction 1 for 3 replicas (scaled with replicas), req/s. */
  rate3: number;
  /** Offered load at load fraction 1 on `replicas` replicas, req/s, where not rate3 scaled. */
  referenceRps?(replicas: number): number;
  /** TTFT p95 SLO, where not ttftSloMs of the mean prompt. */
  sloMs?: number;
  /** The replicas' context limit, where the simulator's (Qwen2.5's native 32k) is too short. */
  maxModelLen?: number;
  /** Mean prompt tokens, for the SLO. */
  promptTokens: number;
  /** Output tokens per request, for the time a run takes. */
  outputTokens: number;
  /** KV blocks per replica for a replica count, or null for the simulator's default. */
  kvBlocks(replicas: number): number | null;
  /** The inference-perf shared_prefix shape, when it is one. */
  sharedPrefix(): SharedPrefixShape | null;
}

/** A shape whose point is a number of independent requests. */
interface RequestsPeerShape extends PeerShapeBase {
  /** `n` requests arriving at `rateRps` (after warmupRequests(n) more at half of it, not measured, where it has them). */
  build(n: number, rateRps: number, seed: number): Workload;
  warmupRequests?(n: number): number;
  sessions?: undefined;
}

/**
 * A session shape, whose point is `warmupS` of the sessions' turns sent unmeasured, then a window
 * of at least `windowS` measured (sessionWindowWorkload).
 */
interface SessionsPeerShape extends PeerShapeBase {
  sessions: { warmupS: number; windowS: number; build(rateRps: number, windowS: number, seed: number): Workload };
  build?: undefined;
}

export type PeerShape = RequestsPeerShape | SessionsPeerShape;


/**
 * Reference rates (load 1.0, 3 replicas) where a shape's KV is sized here, unlike bench:routing's:
 * sp-32x32 with the shared prefixes at 75% of the cache holds about 11 running requests per
 * replica, and round robin served 2.5-2.7 req/s when offered 4.4 and 7.7 (measured with --quick).
 */
const PEER_RATE3: Record<string, number> = { 'sp-32x32': 3.0 };

function fromRoutingShape(name: string, kind: PeerShape['kind'], sizeKv: boolean, workloadDir: string): PeerShape {
  const def = shapeDef(name);
  const rate3 = PEER_RATE3[name] ?? def.rate3;
  let shape: SharedPrefixShape | null = null;
  const load = () => (shape ??= readShapeDef(def, workloadDir));
  return {
    name, kind, label: def.label, rate3,
    get promptTokens() { const s = load(); return s.systemPromptLen + s.questionLen; },
    get outputTokens() { return load().outputLen; },
    build: (n, rate, seed) => sharedPrefixWorkload(name, def.label, load(), n, rate, seed),
    sharedPrefix: () => load(),
    kvBlocks: (replicas) => (sizeKv ? tightKvBlocks(load(), replicas) : null),
  };
}

/**
 * Round robin's capacity on a session shape, req/s by replica count: bench/routing's measureCapacity
 * (seed 1), calculated from the latency model with round robin's hit rate, which falls as replicas
 * are added (so the rate does not scale with them). tests/peers/benchPeers.test.ts checks it.
 */
export const SESSION_REFERENCE_RPS: Record<string, Record<number, number>> = {
  conversation: { 3: 2.51, 8: 4.15, 16: 7.05 },
  'long-context': { 3: 0.62, 8: 1.11, 16: 2.01 },
};

/**
 * A session shape's point: a warm-up as long as nine sessions in ten last (a conversation lasts 102 s
 * at the median and 164 s at the 90th percentile, a long-context task 29 s and 48 s), so the window
 * sees running sessions at every age, then a window holding (seed 1, 8 replicas, load 0.7) 272
 * conversation requests or 76 long-context ones, whose prefills take seconds each.
 */
const SESSION_POINT: Record<string, { warmupS: number; windowS: number }> = {
  conversation: { warmupS: 150, windowS: 80 },
  'long-context': { warmupS: 60, windowS: 120 },
};
/** Requests in a session shape's template: its sessions start over the warm-up and window up to a load of about 2.5 on 8 replicas. */
const SESSION_TEMPLATE_REQUESTS: Record<string, number> = { conversation: 2500, 'long-context': 600 };

interface SessionPeerShape {
  name: string;
  kind: 'conversation' | 'long-context';
  label: string;
  shape: SessionShape;
  /** Round robin's capacity by replica count, req/s. */
  referenceRps: Record<number, number>;
  warmupS: number;
  windowS: number;
  templateRequests: number;
  sloMs: number;
}

function sessionPeerShape(d: SessionPeerShape): PeerShape {
  // One template a seed, so every load replays the same sessions, only sooner or later.
  let tpl: { seed: number; t: SessionTemplate } | undefined;
  const template = (seed: number) => {
    if (tpl?.seed !== seed) tpl = { seed, t: sessionTemplate(d.name, d.label, d.shape, d.templateRequests, seed) };
    return tpl.t;
  };
  const mean = (pick: (r: { promptTokens: number; outputTokens: number }) => number) => {
    const reqs = template(1).sessions.flat();
    return Math.round(reqs.reduce((a, r) => a + pick(r), 0) / reqs.length);
  };
  const counts = Object.keys(d.referenceRps).map(Number);
  return {
    name: d.name, kind: d.kind, label: d.label, rate3: d.referenceRps[3] ?? (d.referenceRps[counts[0]!]! * 3) / counts[0]!,
    referenceRps(replicas) {
      const r = d.referenceRps[replicas];
      if (r === undefined) throw new Error(`${d.name}: round robin's capacity is known for ${counts.slice(0, -1).join(', ')}${counts.length > 1 ? ' and ' : ''}${counts[counts.length - 1]} replicas, not ${replicas} (measure it with bench/routing/ladder.ts's measureCapacity and add it to SESSION_REFERENCE_RPS)`);
      return r;
    },
    sloMs: d.sloMs,
    maxModelLen: ENGINE_MAX_MODEL_LEN,
    sessions: { warmupS: d.warmupS, windowS: d.windowS, build: (rate, windowS, seed) => sessionWindowWorkload(template(seed), rate, d.warmupS, windowS) },
    get promptTokens() { return mean((r) => r.promptTokens); },
    get outputTokens() { return mean((r) => r.outputTokens); },
    kvBlocks: () => null,
    sharedPrefix: () => null,
  };
}

/**
 * Round robin's capacity on the Mooncake conversation trace by replica count, req/s: bench/routing's
 * measureCapacity (seed 1, by saturation). tests/peers/benchPeers.test.ts checks it.
 */
export const TRACE_REFERENCE_RPS: Record<number, number> = { 3: 0.81, 8: 2.08, 16: 3.93 };

/**
 * A trace point: the trace from its start at the point's rate, its first warmupS seconds sent
 * unmeasured (the replicas' caches fill with the conversations under way, as in a service that
 * has run for minutes), then a window of windowS. On 16 replicas at 0.7 the warm-up replays the
 * trace's first 275 s and the window the next 165 s, 433 requests.
 */
const TRACE_POINT = { warmupS: 300, windowS: 180 };

/**
 * Mooncake's conversation trace (data/traces): each request the conversation so far, 512 tokens a
 * hash id. Requests longer than the replicas' context (65,536 tokens with the output; 71 of 1986)
 * are left out: vLLM refuses them before any router's choice matters.
 */
function mooncakeConversationShape(file: string): PeerShape {
  const name = 'mooncake-conversation';
  let trace: { seed: number; w: Workload } | undefined;
  const at = (seed: number) => {
    if (trace?.seed !== seed) {
      const w = mooncakeWorkload(name, readMooncakeTrace(file), seed);
      trace = { seed, w: { ...w, requests: w.requests.filter((r) => r.promptTokens + r.outputTokens <= ENGINE_MAX_MODEL_LEN) } };
    }
    return trace.w;
  };
  const mean = (pick: (r: { promptTokens: number; outputTokens: number }) => number) => Math.round(at(1).requests.reduce((a, r) => a + pick(r), 0) / at(1).requests.length);
  const counts = Object.keys(TRACE_REFERENCE_RPS).map(Number);
  return {
    name, kind: 'conversation', label: 'Mooncake conversation trace (Kimi), its first 11 minutes: each request the conversation so far', rate3: TRACE_REFERENCE_RPS[3]!,
    referenceRps(replicas) {
      const r = TRACE_REFERENCE_RPS[replicas];
      if (r === undefined) throw new Error(`${name}: round robin's capacity is known for ${counts.join(', ')} replicas, not ${replicas} (measure it with bench/routing/ladder.ts's measureCapacity and add it to TRACE_REFERENCE_RPS)`);
      return r;
    },
    sloMs: DEFAULT_TRACE_SLO_MS,
    maxModelLen: ENGINE_MAX_MODEL_LEN,
    sessions: {
      ...TRACE_POINT,
      build: (rate, windowS, seed) => {
        const w = traceAtRate(at(seed), rate);
        const warmUs = TRACE_POINT.warmupS * 1e6, endUs = warmUs + windowS * 1e6;
        const lastUs = w.requests[w.requests.length - 1]!.arrivalUs;
        if (lastUs < endUs) throw new Error(`${name}: the trace's ${w.requests.length} requests arrive within ${(lastUs / 1e6).toFixed(0)} s at ${rate} req/s, short of the ${(endUs / 1e6).toFixed(0)} s asked for`);
        return { ...w, requests: w.requests.filter((r) => r.arrivalUs < endUs).map((r) => (r.arrivalUs < warmUs ? { ...r, warmup: true } : r)) };
      },
    },
    get promptTokens() { return mean((r) => r.promptTokens); },
    get outputTokens() { return mean((r) => r.outputTokens); },
    kvBlocks: () => null,
    sharedPrefix: () => null,
  };
}

/** bench:routing's new-system-prompt: one-system-prompt's traffic and rate after sp-32x32's at half of it, which warms the router. */
function newSystemPromptShape(workloadDir: string): PeerShape {
  const hot = shapeDef('one-system-prompt');
  let shapes: { warm: SharedPrefixShape; hot: SharedPrefixShape } | undefined;
  const load = () => (shapes ??= { warm: readShapeDef(shapeDef('sp-32x32'), workloadDir), hot: readShapeDef(hot, workloadDir) });
  return {
    name: NEW_SYSTEM_PROMPT, kind: 'hot-spot', label: NEW_SYSTEM_PROMPT_LABEL, rate3: hot.rate3,
    get promptTokens() { const s = load().hot; return s.systemPromptLen + s.questionLen; },
    get outputTokens() { return load().hot.outputLen; },
    build: (n, rate, seed) => newSystemPromptWorkload(load().warm, load().hot, n, rate, seed),
    warmupRequests: newSystemPromptWarmup,
    sharedPrefix: () => null,
    kvBlocks: () => null,
  };
}

function sessionShape(name: string): PeerShape {
  const def = SESSION_SHAPES.find((s) => s.name === name);
  if (!def) throw new Error(`no session shape ${name} in bench/routing/scenarios.ts`);
  const longContext = def.kind === 'long-context';
  return sessionPeerShape({
    name, kind: longContext ? 'long-context' : 'conversation', label: def.label, shape: def.shape, referenceRps: SESSION_REFERENCE_RPS[name]!,
    ...SESSION_POINT[name]!, templateRequests: SESSION_TEMPLATE_REQUESTS[name]!, sloMs: longContext ? DEFAULT_LONG_CONTEXT_SLO_MS : DEFAULT_SLO_MS,
  });
}

export function peerShapes(workloadDir: string): PeerShape[] {
  return [
    fromRoutingShape('sp-150x5', 'shared-prefix', true, workloadDir),
    fromRoutingShape('sp-32x32', 'shared-prefix', true, workloadDir),
    fromRoutingShape('multi-turn-chat', 'conversation', false, workloadDir),
    fromRoutingShape('one-system-prompt', 'hot-spot', false, workloadDir),
    newSystemPromptShape(workloadDir),
    {
      name: UNIQUE.name, kind: 'unique', label: `unique prompts: ${UNIQUE.promptTokens} / ${UNIQUE.outputTokens}`, rate3: UNIQUE.rate3, promptTokens: UNIQUE.promptTokens, outputTokens: UNIQUE.outputTokens,
      build: (n, rate, seed) => uniqueWorkload(UNIQUE.name, UNIQUE.promptTokens, UNIQUE.outputTokens, n, rate, seed),
      kvBlocks: () => null,
      sharedPrefix: () => null,
    },
    sessionShape('conversation'),
    sessionShape('long-context'),
    mooncakeConversationShape(MOONCAKE_CONVERSATION_TRACE),
  ];
}

/** A tiny shared-prefix shape for the smoke test: seconds, not minutes. */
const SMOKE_SHARED_PREFIX: SharedPrefixShape = { numGroups: 4, promptsPerGroup: 3, systemPromptLen: 200, questionLen: 20, outputLen: 8, multiTurn: false };
export const SMOKE_SHAPE: PeerShape = {
  name: 'smoke-shared-prefix', kind: 'shared-prefix', label: 'smoke: 4x3 / 200 / 20 / 8', rate3: 12, promptTokens: 220, outputTokens: SMOKE_SHARED_PREFIX.outputLen,
  build: (n, rate, seed) => sharedPrefixWorkload('smoke-shared-prefix', 'smoke', SMOKE_SHARED_PREFIX, n, rate, seed),
  kvBlocks: () => null,
  sharedPrefix: () => SMOKE_SHARED_PREFIX,
};

/** Tiny conversations for the smoke test: 2-4 turns on two 200-token system prompts, 0.1 s of think time, 1 s of warm-up and 2 measured. */
export const SMOKE_SESSION_SHAPE: PeerShape = sessionPeerShape({
  name: 'smoke-sessions', kind: 'conversation', label: 'smoke: conversations of 2-4 turns',
  shape: { preambles: 2, preambleTokens: 200, documents: 0, documentTokens: [0, 0], turns: [2, 4], appendTokens: [20, 60], outputTokens: [4, 8], maxPromptTokens: 2000, thinkMs: 100 },
  referenceRps: { 2: 12 }, warmupS: 1, windowS: 2, templateRequests: 200, sloMs: 300,
});

/** What a lone request with `promptTokens` uncached waits for its first token in the simulator's T4 model, ms. */
const loneTtftMs = (promptTokens: number) => T4_QWEN25_3B.prefillOverheadMs + T4_QWEN25_3B.prefillTimePerTokenMs * promptTokens;

/** TTFT p95 SLO of a shape: 3x what a lone request with the mean prompt, nothing cached, waits. */
export function ttftSloMs(promptTokens: number): number {
  return Math.max(300, Math.round((3 * loneTtftMs(promptTokens)) / 100) * 100);
}

/**
 * A shape's TTFT p95 SLO: its own where it has one (the session shapes take bench:routing's, since
 * most of a late turn's long prompt is cached where it is routed well), else ttftSloMs.
 */
export const shapeSloMs = (shape: PeerShape) => shape.sloMs ?? ttftSloMs(shape.promptTokens);

/** A lone request of the shape, start to end, in the simulator's T4 model: the least a point's drain takes, s. */
export const loneRequestS = (shape: PeerShape) => (loneTtftMs(shape.promptTokens) + T4_QWEN25_3B.interTokenLatencyMs * (shape.outputTokens - 1)) / 1000;
