// What a routing policy is to the simulation, and the three policies written in
// TypeScript: round robin, least load, and the GIE-style picker. prefix-router
// itself (the real wasm) is in filterPolicy.ts.
import type { XXHashAPI } from 'xxhash-wasm';
import type { ReplicaEngine } from '../../simulator/engine.js';
import type { LoraInfo } from '../../control-plane/loraMetrics.js';
import { GieRouter, lowerIsBetter, pickMax } from './gie.js';
import type { Rng } from './random.js';
import { MODEL, type SimRequest } from './workloads.js';

/** One replica as the control plane last scraped it. */
export interface ReplicaMetrics {
  waiting: number;
  running: number;
  /** 0..1 */
  kvUsage: number;
  kvCapacityTokens: number;
  /** LoRA adapters, when the engines run them (vllm:lora_requests_info). */
  lora?: LoraInfo;
  /** The engine's max_model_len, as its /v1/models lists it. */
  maxModelLen?: number;
}

/** Which gateway process and worker VM a request enters through (only prefix-router has more than one). */
export interface Entry { gateway: number; worker: number }

export interface Decision {
  /** -1: not routed yet (held by admission, see RoutingPolicy.takeSettled) or refused. */
  replica: number;
  /** Held by the router's admission: routed or refused later. */
  held?: boolean;
  /** Refused by the router (429). */
  refused?: boolean;
  /** Prefix blocks the router believed the replica holds / blocks it hashed (when the router says). */
  matched?: number;
  total?: number;
  /** Router-private per-request state (e.g. the filter's stream). */
  handle?: unknown;
}

export interface RoutingPolicy {
  readonly name: string;
  /** A scrape finished at nowUs: what every replica reports. */
  onScrape(nowUs: number, metrics: readonly ReplicaMetrics[]): void;
  /** Virtual time moves to nowUs (never backwards). */
  advanceTo(nowUs: number): void;
  route(req: SimRequest, entry: Entry, nowUs: number): Decision;
  /** The replica sent the first token (response headers reach the gateway). */
  onFirstToken(d: Decision, nowUs: number): void;
  /** The request finished; the stream ends. */
  onFinish(d: Decision, nowUs: number): void;
  close(): Promise<void>;
  /** The replica engines, for a router that reads their caches exactly (the `precise` bound). */
  bindEngines?(engines: readonly ReplicaEngine[]): void;
  /** Router-side counters worth reporting (the filter's own metrics), read after the run. */
  stats?(): Record<string, number>;
  /** Held decisions settled since the last call (routed: replica >= 0; refused: refused set). */
  takeSettled?(): Array<{ req: SimRequest; decision: Decision }>;
}

/** Shared no-ops for policies without time or per-request state. */
abstract class StatelessPolicy implements RoutingPolicy {
  abstract readonly name: string;
  protected metrics: readonly ReplicaMetrics[] = [];
  onScrape(_nowUs: number, metrics: readonly ReplicaMetrics[]): void { this.metrics = metrics; }
  advanceTo(): void {}
  abstract route(req: SimRequest, entry: Entry, nowUs: number): Decision;
  onFirstToken(): void {}
  onFinish(): void {}
  async close(): Promise<void> {}
}

export class RoundRobinPolicy extends StatelessPolicy {
  readonly name = 'round-robin';
  private next = 0;
  constructor(private readonly n: number) { super(); }
  route(): Decision {
    const replica = this.next;
    this.next = (this.next + 1) % this.n;
    return { replica };
  }
}

/** Queue 1, KV 1: the GIE scorers without the prefix scorer, on the scraped metrics; random tie-break. */
export class LeastLoadPolicy extends StatelessPolicy {
  readonly name = 'least-load';
  constructor(private readonly n: number, private readonly rng: Rng) { super(); }
  route(): Decision {
    if (this.metrics.length === 0) return { replica: this.rng.int(this.n) }; // before the first scrape
    const queue = lowerIsBetter(this.metrics.map((m) => m.waiting));
    const scores = this.metrics.map((m, i) => queue[i]! + (1 - Math.min(1, Math.max(0, m.kvUsage))));
    return { replica: pickMax(scores, this.rng) };
  }
}

export class GiePolicy extends StatelessPolicy {
  readonly name = 'gie-style';
  private readonly router: GieRouter;
  constructor(x: XXHashAPI, private readonly n: number, rng: Rng) {
    super();
    this.router = new GieRouter(x, n, rng, MODEL);
  }
  route(req: SimRequest): Decision {
    const metrics = this.metrics.length ? this.metrics : Array.from({ length: this.n }, () => ({ waiting: 0, kvUsage: 0 }));
    const r = this.router.route(req.prompt, metrics);
    return { replica: r.server, matched: r.matched, total: r.total };
  }
}
