// The scenarios of a routing run: which workload, how many replicas, which
// policies. Offered loads are fixed per shape (requests/s per 3 replicas, scaled
// with the replica count): about 1.25x what round robin sustains on that shape
// in this simulator (measured once with seed 1 under heavy overload: 150x5 0.81,
// 32x32 8.6, 256x16 high-cache 4.1, low-cache 3.8, multi-turn 5.9, one system
// prompt 10.9, unique prompts 3.7 req/s), so every run is past round robin's
// capacity: throughput then measures what the replicas can serve, which is what
// routing changes. The same rates are used for every policy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Weights } from '../../control-plane/stateWire.js';
import { mooncakeWorkload, parseMooncake } from './mooncake.js';
import {
  readSharedPrefixShape, sharedPrefixWorkload, uniqueWorkload, type SharedPrefixShape, type Workload,
} from './workloads.js';

export type ScenarioKind = 'shared-prefix' | 'hot-spot' | 'unique' | 'trace';

export interface Scenario {
  name: string;
  kind: ScenarioKind;
  replicas: number;
  /** Also run prefix-router with 4 worker VMs and with 2 independent gateways. */
  variants: boolean;
  build(): Workload;
}

export type PolicyKind = 'round-robin' | 'least-load' | 'gie-style' | 'prefix-router';
export interface PolicySpec {
  name: string;
  kind: PolicyKind;
  weights?: Weights;
  workers: number;
  gateways: number;
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

interface ShapeDef {
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
        const file = readSharedPrefixShape(join(o.workloadDir, s.file));
        const shape = s.override ? s.override(file) : file;
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
      build: () => mooncakeWorkload(`trace:${t.file.split('/').pop()}`, parseMooncake(readFileSync(t.file, 'utf8'), t.file), o.seed, t.limit),
    });
  }
  return out;
}
