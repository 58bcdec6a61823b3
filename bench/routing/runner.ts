// Runs scenarios: builds each workload once, then every policy on the same arrivals.
import type { XXHashAPI } from 'xxhash-wasm';
import { FilterPolicy } from './filterPolicy.js';
import { loadXxhash } from './gie.js';
import { oracleHitRate } from './oracle.js';
import { GiePolicy, LeastLoadPolicy, RoundRobinPolicy, type RoutingPolicy } from './policy.js';
import { Rng } from './random.js';
import { BASE_POLICIES, VARIANT_POLICIES, type PolicySpec, type Scenario, type ScenarioKind } from './scenarios.js';
import { ENGINE_BLOCKS, simulate, type PolicyResult } from './simulation.js';
import { SglangStylePolicy } from './sglangStyle.js';
import { WorkPolicy } from './workPolicy.js';

/** The work picker's guard: queued work may pass the mean by half (the filter's load-bound epsilon). */
export const WORK_EPSILON = 0.5;

export interface WorkloadResult {
  name: string;
  kind: ScenarioKind;
  description: string;
  replicas: number;
  requests: number;
  offeredRps: number;
  promptTokens: number;
  oracleHitRate: number;
  policies: PolicyResult[];
  /** Filter log lines at warn or above other than the expected failing poll (should be empty). */
  filterWarnings: string[];
}

export async function makePolicy(spec: PolicySpec, replicas: number, seed: number, workload: string, x: XXHashAPI, wasm?: Uint8Array, kvBlocks = ENGINE_BLOCKS): Promise<RoutingPolicy> {
  switch (spec.kind) {
    case 'round-robin': return new RoundRobinPolicy(replicas);
    case 'least-load': return new LeastLoadPolicy(replicas, Rng.of(seed, workload, spec.name));
    case 'gie-style': return new GiePolicy(x, replicas, Rng.of(seed, workload, spec.name));
    case 'sglang-style': return new SglangStylePolicy(replicas);
    case 'prefix-router':
      return FilterPolicy.create({ name: spec.name, replicas, weights: spec.weights!, gateways: spec.gateways, workers: spec.workers, seed, wasm, fleet: spec.fleet ?? true });
    case 'precise': return WorkPolicy.precise({ name: spec.name, replicas, gateways: spec.gateways, epsilon: spec.epsilon ?? WORK_EPSILON });
    case 'proto-work':
      return WorkPolicy.proto({ name: spec.name, replicas, gateways: spec.gateways, epsilon: spec.epsilon ?? WORK_EPSILON, guard: spec.guard, capacityBlocks: kvBlocks, maxBlocks: spec.maxBlocks ?? Infinity, fleet: spec.fleet ?? true });
  }
}

export interface RunOptions {
  seed: number;
  /** Restrict to policies whose name contains one of these. */
  policyFilter?: string[];
  wasm?: Uint8Array;
  onProgress?: (msg: string) => void;
}

export async function runScenario(sc: Scenario, o: RunOptions): Promise<WorkloadResult> {
  const x = await loadXxhash();
  const w = sc.build();
  const specs = [...BASE_POLICIES, ...(sc.variants ? VARIANT_POLICIES : [])]
    .filter((p) => !o.policyFilter || o.policyFilter.some((f) => p.name.includes(f)));
  const result: WorkloadResult = {
    name: w.name, kind: sc.kind, description: w.description, replicas: sc.replicas, requests: w.requests.length,
    offeredRps: w.rateRps, promptTokens: w.requests.reduce((a, r) => a + r.promptTokens, 0),
    oracleHitRate: oracleHitRate(w.requests), policies: [], filterWarnings: [],
  };
  for (const spec of specs) {
    const policy = await makePolicy(spec, sc.replicas, o.seed, w.name, x, o.wasm);
    try {
      const t0 = performance.now();
      const r = simulate(w, policy, { replicas: sc.replicas, gateways: spec.gateways, workers: spec.workers, seed: o.seed });
      o.onProgress?.(`${w.name} ${spec.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      result.policies.push(r);
      if (policy instanceof FilterPolicy) for (const e of policy.unexpectedLogs()) result.filterWarnings.push(`${spec.name} worker ${e.worker} ${e.level}: ${e.message}`);
    } finally {
      await policy.close();
    }
  }
  return result;
}
