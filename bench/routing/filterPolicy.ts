// prefix-router itself as a routing policy: the real plugin/prefix-router.wasm
// in our proxy-wasm host (host/), one host per gateway process, each with its
// own shared-data store and `workers` worker VMs, on a manual clock that the
// simulation moves (ticks fire in virtual time). Every routing decision is the
// filter's: the first value of x-gateway-destination-endpoint after it ran.
//
// State delivery: host/ serves proxy_http_call clusters over node:http in real
// time only, so the filter's long poll cannot be answered in virtual time.
// Each scrape's state is therefore published the way the filter's own poller
// publishes what it receives (assembly/state/sharedState.ts publishState, then
// the stamp): `prefix_router.state` = [u64 LE receivedAtNs][payload], and the
// stamp [u64 version][u64 controlPlaneSeenNs] at the head of
// `prefix_router.inflight` (plugin/sharedData.ts), written into each gateway's
// shared-data store; worker VMs pick it up exactly as they pick up a state
// another VM polled (on every request and tick).
// The poll itself fails (no such cluster in the host) and is retried, as it
// would against an unreachable control plane; its failure does not age the
// state, because the stamp's controlPlaneSeenNs is refreshed every scrape.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManualClock, ProxyWasmHost, SharedDataStore, type LogEvent, type Stream } from '../../host/index.js';
import { encodeState, type ReplicaState, type Weights } from '../../control-plane/stateWire.js';
import { encodeLoraSection } from '../../control-plane/loraSection.js';
import type { Decision, Entry, ReplicaMetrics, RoutingPolicy } from './policy.js';
import { MODEL, type SimRequest } from './workloads.js';
import { writeStamp } from '../../plugin/sharedData.js';

export const WASM_PATH = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
/** The filter's vm_id (plugin/CONFIG.md): shared-data keys live under it. */
const VM_ID = 'prefix_router';
const KEY_STATE = 'prefix_router.state';
const CONTROL_PLANE_CLUSTER = 'prefix_router_control_plane';
/** The filter's staleness bound in the simulated gateway. */
export const STALENESS_MS = 2000;
/** Virtual time starts at a plausible Unix time: the filter keeps in-flight heartbeats in whole seconds since the epoch. */
const EPOCH_NS = 1_700_000_000_000_000_000n;
const DESTINATION = 'x-gateway-destination-endpoint';
const PREFIX_HEADER = 'x-prefix-router-prefix';

export const DEFAULT_WEIGHTS: Weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };

/** Replica i's address in the simulated cluster. */
export function replicaAddress(i: number): string {
  return `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}:8000`;
}

/** `extra`: more of the filter's configuration (admission, sessionAffinity, lora). */
export function pluginConfig(weights: Weights, extra: object = {}): string {
  return JSON.stringify({ controlPlane: { cluster: CONTROL_PLANE_CLUSTER }, stalenessMs: STALENESS_MS, weights, ...extra });
}

const enc = new TextEncoder();

/** The body a client sends: an OpenAI completion (the inference-perf `completion` API), streamed. */
export function completionBody(req: SimRequest): Uint8Array {
  return enc.encode(JSON.stringify({ model: req.lora ?? MODEL, prompt: req.prompt, max_tokens: req.outputTokens, stream: true }));
}

export interface FilterPolicyOptions {
  name: string;
  replicas: number;
  weights: Weights;
  gateways: number;
  workers: number;
  /** Module bytes (default: plugin/prefix-router.wasm). */
  wasm?: Uint8Array;
  seed: number;
  /** More of the filter's configuration (admission, sessionAffinity, lora). */
  config?: object;
}

interface FilterHandle { gateway: number; stream: Stream }

export class FilterPolicy implements RoutingPolicy {
  readonly name: string;
  /** Filter log lines at warn and above (the missing poll cluster is expected; anything else is reported). */
  readonly logs: LogEvent[] = [];
  private readonly clock = new ManualClock(EPOCH_NS);
  private readonly addresses: string[];
  private readonly replicaOf = new Map<string, number>();
  private version = 0n;
  private lastReplicas = '';
  private bodies = new WeakMap<SimRequest, Uint8Array>();
  /** Requests the filter holds (admission), until a tick lets them go or refuses them. */
  private readonly held: Array<{ req: SimRequest; decision: Decision; stream: Stream }> = [];
  private readonly settled: Array<{ req: SimRequest; decision: Decision }> = [];

  private constructor(private readonly opts: FilterPolicyOptions, private readonly hosts: ProxyWasmHost[], private readonly stores: SharedDataStore[]) {
    this.name = opts.name;
    this.addresses = Array.from({ length: opts.replicas }, (_, i) => replicaAddress(i));
    this.addresses.forEach((a, i) => this.replicaOf.set(a, i));
  }

  static async create(opts: FilterPolicyOptions): Promise<FilterPolicy> {
    const wasm = opts.wasm ?? readFileSync(WASM_PATH);
    const stores = Array.from({ length: opts.gateways }, () => new SharedDataStore());
    const hosts: ProxyWasmHost[] = [];
    const policy = new FilterPolicy(opts, hosts, stores);
    for (let g = 0; g < opts.gateways; g++) {
      hosts.push(await ProxyWasmHost.create({
        wasm,
        workers: opts.workers,
        pluginConfig: pluginConfig(opts.weights, opts.config),
        clock: policy.clock,
        sharedData: stores[g],
        logLevel: 'warn',
        onLog: (e) => policy.logs.push(e),
        randomSeed: (opts.seed + g * 7919) >>> 0,
      }));
    }
    return policy;
  }

  private nsOf(us: number): bigint { return EPOCH_NS + BigInt(us) * 1000n; }

  advanceTo(nowUs: number): void {
    const ns = this.nsOf(nowUs);
    for (const h of this.hosts) h.advanceTo(ns);
    if (this.held.length > 0) this.settleHeld();
  }

  /** Held streams a tick let go (routed) or refused. */
  private settleHeld(): void {
    for (let i = 0; i < this.held.length; i++) {
      const h = this.held[i]!;
      if (h.stream.localResponse) {
        h.stream.complete();
        h.decision.refused = true;
      } else if (h.stream.continued) {
        h.decision.replica = this.destinationOf(h.stream, h.req);
        h.stream.drainRequestData();
      } else continue;
      h.decision.held = false;
      this.settled.push({ req: h.req, decision: h.decision });
      this.held.splice(i--, 1);
    }
  }

  takeSettled(): Array<{ req: SimRequest; decision: Decision }> {
    return this.settled.splice(0);
  }

  onScrape(nowUs: number, metrics: readonly ReplicaMetrics[]): void {
    const replicas: ReplicaState[] = metrics.map((m, i) => ({
      address: this.addresses[i]!, ready: true, metricsKnown: true, waiting: m.waiting, running: m.running,
      kvUsage: m.kvUsage, kvCapacityTokens: m.kvCapacityTokens, metricsAgeMs: 0,
    }));
    const lora = encodeLoraSection(metrics.map((m) => m.lora));
    const key = JSON.stringify(replicas) + (lora ? JSON.stringify(metrics.map((m) => m.lora)) : '');
    const changed = key !== this.lastReplicas;
    if (changed) { this.version++; this.lastReplicas = key; }
    const nowNs = this.nsOf(nowUs);
    let state: Uint8Array | null = null;
    if (changed) {
      const payload = encodeState({ version: this.version, weights: this.opts.weights, replicas, ...(lora ? { sections: [lora] } : {}) });
      state = new Uint8Array(8 + payload.length);
      new DataView(state.buffer).setBigUint64(0, nowNs, true);
      state.set(payload, 8);
    }
    for (const store of this.stores) {
      if (state) store.set(VM_ID, KEY_STATE, state, 0);
      writeStamp(store, { version: this.version, seenNs: nowNs }, VM_ID);
    }
  }

  route(req: SimRequest, entry: Entry): Decision {
    let body = this.bodies.get(req);
    if (!body) this.bodies.set(req, (body = completionBody(req)));
    const s = this.hosts[entry.gateway]!.newStream({ worker: entry.worker });
    s.requestHeaders([
      [':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gateway'], [':scheme', 'http'],
      ['content-type', 'application/json'], ['content-length', String(body.length)],
      ...(req.session !== undefined ? [['x-session-id', req.session] as [string, string]] : []),
    ], false);
    if (!s.localResponse) s.requestBody(body, true);
    const handle: FilterHandle = { gateway: entry.gateway, stream: s };
    if (s.localResponse?.status === 429) {
      s.complete();
      return { replica: -1, refused: true };
    }
    if (s.localResponse) {
      s.complete();
      throw new Error(`${this.name}: the filter answered ${s.localResponse.status} for request ${req.id}: ${new TextDecoder().decode(s.localResponse.body)}`);
    }
    if (!s.continued) {
      // Admission holds it: a tick lets it go or refuses it (settleHeld).
      const decision: Decision = { replica: -1, held: true, handle };
      this.held.push({ req, decision, stream: s });
      return decision;
    }
    s.drainRequestData();
    return { replica: this.destinationOf(s, req), handle };
  }

  private destinationOf(s: Stream, req: SimRequest): number {
    const endpoint = s.requestHeaderList().find(([k]) => k === DESTINATION)?.[1];
    const replica = endpoint === undefined ? -1 : this.replicaOf.get(endpoint) ?? -1;
    if (replica < 0) {
      s.complete();
      throw new Error(`${this.name}: the filter chose '${endpoint}' for request ${req.id}, not a simulated replica`);
    }
    return replica;
  }

  onFirstToken(d: Decision): void {
    const { stream } = d.handle as FilterHandle;
    stream.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
    const v = stream.responseHeaderList().find(([k]) => k === PREFIX_HEADER)?.[1];
    const m = v ? /^(\d+)\/(\d+)$/.exec(v) : null;
    if (m) { d.matched = Number(m[1]); d.total = Number(m[2]); }
  }

  onFinish(d: Decision): void {
    const { stream } = d.handle as FilterHandle;
    if (stream.responseContinued) stream.responseBody(new Uint8Array(0), true);
    stream.complete();
  }

  /** Log lines other than the expected failing poll of the absent control-plane cluster. */
  unexpectedLogs(): LogEvent[] {
    return this.logs.filter((e) => !(e.message.includes(CONTROL_PLANE_CLUSTER) || e.message.includes('routing on the last state')));
  }

  /** The filter's own counters, summed over gateways: requests routed, load-bound spills, state installs. */
  stats(): Record<string, number> {
    const sum = (name: string) => this.hosts.reduce((a, h) => a + (h.metrics().get(name)?.value ?? 0), 0);
    return {
      routed: sum('prefix_router.requests_routed'),
      prefixHits: sum('prefix_router.requests_prefix_hit'),
      loadBoundSpills: sum('prefix_router.load_bound_spills'),
      loadOnly: sum('prefix_router.fallback_load_only'),
      stateUpdates: sum('prefix_router.state_updates'),
      admissionHeld: sum('prefix_router.admission_held'),
      admissionRefused: sum('prefix_router.admission_refused'),
      sessionRouted: sum('prefix_router.session_affinity_routed'),
      loraRouted: sum('prefix_router.lora_affinity_routed'),
    };
  }

  async close(): Promise<void> {
    for (const h of this.hosts) await h.close();
  }
}
