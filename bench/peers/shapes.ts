// The shapes bench:peers runs: bench:routing's shared-prefix, conversation and hot-spot shapes and
// unique prompts, each with its reference rate, KV sizing and TTFT SLO, and the smoke test's tiny one.
import { join } from 'node:path';
import { readSharedPrefixShape, sharedPrefixWorkload, uniqueWorkload, type SharedPrefixShape, type Workload } from '../routing/workloads.js';
import { SHAPES, UNIQUE, tightKvBlocks } from '../routing/scenarios.js';
import { T4_QWEN25_3B } from '../../simulator/latency.js';

export interface PeerShape {
  name: string;
  label: string;
  kind: 'shared-prefix' | 'conversation' | 'hot-spot' | 'unique';
  /** Offered load at load fraction 1 for 3 replicas (scaled with replicas), req/s. */
  rate3: number;
  build(n: number, rateRps: number, seed: number): Workload;
  /** Mean prompt tokens, for the SLO. */
  promptTokens: number;
  /** Output tokens per request, for the time a run takes. */
  outputTokens: number;
  /** KV blocks per replica for a replica count, or null for the simulator's default. */
  kvBlocks(replicas: number): number | null;
  /** The inference-perf shared_prefix shape, when it is one. */
  sharedPrefix(): SharedPrefixShape | null;
}


/**
 * Reference rates (load 1.0, 3 replicas) where a shape's KV is sized here, unlike bench:routing's:
 * sp-32x32 with the shared prefixes at 75% of the cache holds about 11 running requests per
 * replica, and round robin served 2.5-2.7 req/s when offered 4.4 and 7.7 (measured with --quick).
 */
const PEER_RATE3: Record<string, number> = { 'sp-32x32': 3.0 };

function fromRoutingShape(name: string, kind: PeerShape['kind'], sizeKv: boolean, workloadDir: string): PeerShape {
  const def = SHAPES.find((s) => s.name === name);
  if (!def) throw new Error(`no shape ${name} in bench/routing/scenarios.ts`);
  const rate3 = PEER_RATE3[name] ?? def.rate3;
  let shape: SharedPrefixShape | null = null;
  const load = () => (shape ??= (() => { const f = readSharedPrefixShape(join(workloadDir, def.file)); return def.override ? def.override(f) : f; })());
  return {
    name, kind, label: def.label, rate3,
    get promptTokens() { const s = load(); return s.systemPromptLen + s.questionLen; },
    get outputTokens() { return load().outputLen; },
    build: (n, rate, seed) => sharedPrefixWorkload(name, def.label, load(), n, rate, seed),
    sharedPrefix: () => load(),
    kvBlocks: (replicas) => (sizeKv ? tightKvBlocks(load(), replicas) : null),
  };
}

export function peerShapes(workloadDir: string): PeerShape[] {
  return [
    fromRoutingShape('sp-150x5', 'shared-prefix', true, workloadDir),
    fromRoutingShape('sp-32x32', 'shared-prefix', true, workloadDir),
    fromRoutingShape('multi-turn-chat', 'conversation', false, workloadDir),
    fromRoutingShape('one-system-prompt', 'hot-spot', false, workloadDir),
    {
      name: UNIQUE.name, kind: 'unique', label: `unique prompts: ${UNIQUE.promptTokens} / ${UNIQUE.outputTokens}`, rate3: UNIQUE.rate3, promptTokens: UNIQUE.promptTokens, outputTokens: UNIQUE.outputTokens,
      build: (n, rate, seed) => uniqueWorkload(UNIQUE.name, UNIQUE.promptTokens, UNIQUE.outputTokens, n, rate, seed),
      kvBlocks: () => null,
      sharedPrefix: () => null,
    },
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

/** What a lone request with `promptTokens` uncached waits for its first token in the simulator's T4 model, ms. */
const loneTtftMs = (promptTokens: number) => T4_QWEN25_3B.prefillOverheadMs + T4_QWEN25_3B.prefillTimePerTokenMs * promptTokens;

/** TTFT p95 SLO of a shape: 3x what a lone request with the mean prompt, nothing cached, waits. */
export function ttftSloMs(promptTokens: number): number {
  return Math.max(300, Math.round((3 * loneTtftMs(promptTokens)) / 100) * 100);
}

/** A lone request of the shape, start to end, in the simulator's T4 model: the least a point's drain takes, s. */
export const loneRequestS = (shape: PeerShape) => (loneTtftMs(shape.promptTokens) + T4_QWEN25_3B.interTokenLatencyMs * (shape.outputTokens - 1)) / 1000;
