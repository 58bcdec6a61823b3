// Workloads for the filter's admission, session affinity and LoRA affinity,
// each run with the feature and without it, beside the baselines, on the same
// arrivals (`npm run bench:routing -- --features`).
//
// - overload: the 32x32 shared-prefix shape offered well past what the
//   replicas serve. Without admission every request queues in an engine and
//   TTFT grows with the run; with it, requests past the saturation bound wait
//   in the filter (at most waitMs) or are refused with 429, and those served
//   meet the SLO. Goodput: served requests whose TTFT from arrival met the
//   SLO, per second.
// - sessions: the conversation shape, every request carrying its
//   conversation as x-session-id, through 4 independent gateways: session
//   affinity puts every turn where the conversation is, whichever gateway it
//   came through.
// - lora: unique prompts, each naming one of 12 LoRA adapters, on engines
//   with 2 adapter slots each: without LoRA affinity requests of many
//   adapters meet on every replica and wait for slots.
import type { XXHashAPI } from 'xxhash-wasm';
import type { Weights } from '../../control-plane/stateWire.js';
import { FilterPolicy } from './filterPolicy.js';
import { loadXxhash } from './gie.js';
import { GiePolicy, LeastLoadPolicy, RoundRobinPolicy, type RoutingPolicy } from './policy.js';
import { Rng } from './random.js';
import { CONVERSATION, sessionTemplate, sessionWorkload } from './sessions.js';
import { simulate, type PolicyResult } from './simulation.js';
import { readSharedPrefixShape, sharedPrefixConfigPath, sharedPrefixWorkload, uniqueWorkload, type Workload } from './workloads.js';

const WEIGHTS: Weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
export const FEATURE_REPLICAS = 4;
/** Adapter slots per engine and adapters in the LoRA workload. */
export const LORA_SLOTS = 2;
export const LORA_ADAPTERS = 12;

interface FeaturePolicy {
  name: string;
  make(x: XXHashAPI, seed: number, workload: string, wasm?: Uint8Array): Promise<RoutingPolicy>;
  gateways: number;
}

const baseline = (name: string, make: (x: XXHashAPI, seed: number, workload: string) => RoutingPolicy): FeaturePolicy =>
  ({ name, gateways: 1, make: async (x, seed, workload) => make(x, seed, workload) });
const filter = (name: string, config: object, gateways = 1): FeaturePolicy =>
  ({ name, gateways, make: (_x, seed, _w, wasm) => FilterPolicy.create({ name, replicas: FEATURE_REPLICAS, weights: WEIGHTS, gateways, workers: 1, seed, wasm, config }) });

const BASELINES: FeaturePolicy[] = [
  baseline('round-robin', () => new RoundRobinPolicy(FEATURE_REPLICAS)),
  baseline('least-load', (_x, seed, w) => new LeastLoadPolicy(FEATURE_REPLICAS, Rng.of(seed, w, 'least-load'))),
  baseline('gie-style', (x, seed, w) => new GiePolicy(x, FEATURE_REPLICAS, Rng.of(seed, w, 'gie-style'))),
];

export interface FeatureExperiment {
  name: string;
  /** What the feature changes, in one line. */
  question: string;
  build(seed: number, workloadDir: string, scale: number): Workload;
  policies: FeaturePolicy[];
  maxLoras?: number;
  sloMs: number;
}

export const FEATURE_EXPERIMENTS: FeatureExperiment[] = [
  {
    name: 'overload',
    question: 'admission: hold then refuse (429) past the saturation bound, against queueing everything',
    sloMs: 2000,
    build: (seed, dir, scale) => {
      const shape = readSharedPrefixShape(sharedPrefixConfigPath(dir, 'llm-d-benchmark_shared_prefix_synthetic.yaml.in'));
      return sharedPrefixWorkload('overload-32x32', 'llm-d shared_prefix_synthetic 32x32 / 2048 / 256 / 256 at 40 req/s on 4 replicas (about 2.6x the 15 req/s prefix-router serves)', shape, Math.round(2400 * scale), 40, seed);
    },
    policies: [
      ...BASELINES,
      filter('prefix-router', {}),
      filter('prefix-router+admission', { admission: { enabled: true } }),
    ],
  },
  {
    name: 'sessions',
    question: 'session affinity: every turn of a conversation to one replica, from 4 independent gateways',
    sloMs: 2000,
    build: (seed, _dir, scale) => {
      const tpl = sessionTemplate('sessions-conversation', 'conversation', CONVERSATION, Math.round(600 * scale), seed);
      const w = sessionWorkload(tpl, 1.4, Math.round(600 * scale));
      for (const r of w.requests) r.session = r.group;
      return { ...w, name: 'sessions-conversation', description: `${w.description}; x-session-id = the conversation; 1.4 req/s on 4 replicas` };
    },
    policies: [
      ...BASELINES,
      filter('prefix-router/4-gateways', { sessionAffinity: { enabled: false } }, 4),
      filter('prefix-router/4-gateways+sessions', {}, 4),
    ],
  },
  {
    name: 'lora',
    question: `LoRA affinity: ${LORA_ADAPTERS} adapters on ${FEATURE_REPLICAS} replicas of ${LORA_SLOTS} slots, prefer the replica running the adapter`,
    sloMs: 2000,
    maxLoras: LORA_SLOTS,
    build: (seed, _dir, scale) => {
      const w = uniqueWorkload('lora-unique', 1024, 128, Math.round(1600 * scale), 5, seed);
      const rng = Rng.of(seed, 'lora-unique', 'adapter');
      for (const r of w.requests) r.lora = `adapter-${rng.int(LORA_ADAPTERS)}`;
      return { ...w, description: `${w.description}; each names one of ${LORA_ADAPTERS} adapters; 5 req/s on 4 replicas of ${LORA_SLOTS} adapter slots` };
    },
    policies: [
      ...BASELINES,
      filter('prefix-router/no-lora', { lora: { weight: 0 } }),
      filter('prefix-router', {}),
    ],
  },
];

export interface FeatureResult {
  name: string;
  question: string;
  description: string;
  requests: number;
  offeredRps: number;
  sloMs: number;
  policies: PolicyResult[];
  filterWarnings: string[];
}

export async function runFeature(e: FeatureExperiment, o: { seed: number; workloadDir: string; scale: number; wasm?: Uint8Array; onProgress?: (m: string) => void }): Promise<FeatureResult> {
  const x = await loadXxhash();
  const w = e.build(o.seed, o.workloadDir, o.scale);
  const out: FeatureResult = { name: e.name, question: e.question, description: w.description, requests: w.requests.length, offeredRps: w.rateRps, sloMs: e.sloMs, policies: [], filterWarnings: [] };
  for (const p of e.policies) {
    const policy = await p.make(x, o.seed, w.name, o.wasm);
    try {
      const t0 = performance.now();
      out.policies.push(simulate(w, policy, { replicas: FEATURE_REPLICAS, gateways: p.gateways, workers: 1, seed: o.seed, sloMs: e.sloMs, ...(e.maxLoras ? { maxLoras: e.maxLoras } : {}) }));
      o.onProgress?.(`${e.name} ${p.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (policy instanceof FilterPolicy) for (const l of policy.unexpectedLogs()) out.filterWarnings.push(`${p.name} ${l.level}: ${l.message}`);
    } finally {
      await policy.close();
    }
  }
  return out;
}

const f0 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(0));
const f2 = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(2));

export function featureTable(results: FeatureResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`\n${r.name}: ${r.question}`, `  ${r.description} (${r.requests} requests, SLO TTFT <= ${r.sloMs} ms)`);
    lines.push('  policy                              served  429  goodput/s  thru/s  TTFT p50  TTFT p95  hit%   lora loads');
    for (const p of r.policies) {
      lines.push(`  ${p.name.padEnd(34)} ${String(p.completed).padStart(6)} ${String(p.refused ?? 0).padStart(4)} ${f2(p.withinSloRps).padStart(10)} ${f2(p.throughputRps).padStart(7)} ${f0(p.ttftP50Ms).padStart(9)} ${f0(p.ttftP95Ms).padStart(9)} ${(p.firstAdmissionHitRate * 100).toFixed(1).padStart(5)} ${String(p.loraLoads ?? '-').padStart(11)}`);
    }
    for (const w of r.filterWarnings) lines.push(`  filter warning: ${w}`);
  }
  return lines.join('\n') + '\n';
}
