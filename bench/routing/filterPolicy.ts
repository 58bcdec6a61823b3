// prefix-router itself as a routing policy: the real plugin/prefix-router.wasm
// in our proxy-wasm host (host/), one host per gateway process, each with its
// own shared-data store and `workers` worker VMs, on a manual clock that the
// simulation moves (ticks fire in virtual time). Every routing decision is the
// filter's: the first value of x-gateway-destination-endpoint after it ran.
//
// State delivery: every gateway's filter long-polls one control plane, the
// real store, fleet exchange and poll logic on the simulation's clock
// (virtualControlPlane.ts), served as an in-process Envoy cluster. Each scrape
// feeds it the replicas' metrics; the filters' polls carry their fleet reports
// (placements, work) and bring back the state with the other gateways' news.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ManualClock, ProxyWasmHost, SharedDataStore, type LogEvent, type Stream } from '../../host/index.js';
import type { Weights } from '../../control-plane/stateWire.js';
import { addressHasher } from '../../control-plane/app.js';
import type { Decision, Entry, ReplicaMetrics, RoutingPolicy } from './policy.js';
import { MODEL, type SimRequest } from './workloads.js';
import { VirtualControlPlane } from './virtualControlPlane.js';

export const WASM_PATH = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
const CONTROL_PLANE_CLUSTER = 'prefix_router_control_plane';
/** The filter's staleness bound in the simulated gateway. */
export const STALENESS_MS = 2000;
/** Virtual time starts at a plausible Unix time: the filter keeps in-flight heartbeats in whole seconds since the epoch. */
const EPOCH_NS = 1_700_000_000_000_000_000n;
/** The gateways start this long before the first request: their first poll brings the first state. */
const WARM_UP_MS = 300;
const DESTINATION = 'x-gateway-destination-endpoint';
const PREFIX_HEADER = 'x-prefix-router-prefix';
/** The first server-sent event of a streamed completion: what carries the first token. */
const FIRST_CHUNK = new TextEncoder().encode('data: {"choices":[{"text":"x"}]}\n\n');

export const DEFAULT_WEIGHTS: Weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };

/** Replica i's address in the simulated cluster. */
export function replicaAddress(i: number): string {
  return `10.1.${Math.floor(i / 200)}.${(i % 200) + 1}:8000`;
}

/**
 * `extra`: more of the filter's configuration (admission, sessionAffinity, lora). The debug
 * headers carry matched/total blocks, which the benchmark reads.
 */
export function pluginConfig(weights: Weights, extra: object = {}): string {
  return JSON.stringify({ controlPlane: { cluster: CONTROL_PLANE_CLUSTER }, stalenessMs: STALENESS_MS, weights, debugHeaders: true, ...extra });
}

const enc = new TextEncoder();

/** The body a client sends: an OpenAI completion (the inference-perf `completion` API), streamed. */
export function completionBody(req: SimRequest): Uint8Array {
  return enc.encode(JSON.stringify({ model: req.lora ?? MODEL, prompt: req.prompt, max_tokens: req.outputTokens, stream: true }));
}

/** Tokens per block of the filter's hash (64 characters, 4 a token): what a decision's `matched` counts. */
export const FILTER_BLOCK_TOKENS = 16;

/**
 * What the filter believed each request's pick held, in prompt tokens (its debug header, read at the
 * first token): wraps `policy`'s route and onFirstToken, which fill the map returned as they run.
 */
export function believedTokens(policy: RoutingPolicy): Map<SimRequest, number> {
  const requestOf = new Map<Decision, SimRequest>(), believed = new Map<SimRequest, number>();
  const route = policy.route.bind(policy), firstToken = policy.onFirstToken.bind(policy);
  policy.route = (req, entry, nowUs) => { const d = route(req, entry, nowUs); requestOf.set(d, req); return d; };
  policy.onFirstToken = (d, nowUs) => { firstToken(d, nowUs); believed.set(requestOf.get(d)!, (d.matched ?? 0) * FILTER_BLOCK_TOKENS); };
  return believed;
}

export interface FilterPolicyOptions {
  name: string;
  replicas: number;
  weights: Weights;
  gateways: number;
  workers: number;
  /** The gateways exchange placements and work through the control plane (false: it refuses their reports, as one from before the exchange). */
  fleet?: boolean;
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
  private readonly clock = new ManualClock(EPOCH_NS - BigInt(WARM_UP_MS) * 1_000_000n);
  private readonly addresses: string[];
  private readonly replicaOf = new Map<string, number>();
  private bodies = new WeakMap<SimRequest, Uint8Array>();
  /** Requests the filter holds (admission), until a tick lets them go or refuses them. */
  private readonly held: Array<{ req: SimRequest; decision: Decision; stream: Stream }> = [];
  private readonly settled: Array<{ req: SimRequest; decision: Decision }> = [];

  private constructor(private readonly opts: FilterPolicyOptions, private readonly hosts: ProxyWasmHost[], readonly controlPlane: VirtualControlPlane) {
    this.name = opts.name;
    this.addresses = Array.from({ length: opts.replicas }, (_, i) => replicaAddress(i));
    this.addresses.forEach((a, i) => this.replicaOf.set(a, i));
  }

  static async create(opts: FilterPolicyOptions): Promise<FilterPolicy> {
    const wasm = opts.wasm ?? readFileSync(WASM_PATH);
    const addresses = Array.from({ length: opts.replicas }, (_, i) => replicaAddress(i));
    const controlPlane = new VirtualControlPlane(opts.weights, addresses, await addressHasher(), opts.fleet ?? true);
    const hosts: ProxyWasmHost[] = [];
    const policy = new FilterPolicy(opts, hosts, controlPlane);
    // The control plane has scraped once (idle replicas) before the gateways start.
    controlPlane.scrape(-WARM_UP_MS, addresses.map(() => ({ waiting: 0, running: 0, kvUsage: 0, kvCapacityTokens: 0 })));
    for (let g = 0; g < opts.gateways; g++) {
      hosts.push(await ProxyWasmHost.create({
        wasm,
        workers: opts.workers,
        pluginConfig: pluginConfig(opts.weights, opts.config),
        clock: policy.clock,
        sharedData: new SharedDataStore(),
        clusters: { [CONTROL_PLANE_CLUSTER]: controlPlane.cluster },
        logLevel: 'warn',
        onLog: (e) => policy.logs.push(e),
        randomSeed: (opts.seed + g * 7919) >>> 0,
      }));
    }
    // The warm-up: the gateways' ticks start their polls, which bring the first state.
    policy.advanceTo(0);
    return policy;
  }

  private nsOf(us: number): bigint { return EPOCH_NS + BigInt(us) * 1000n; }

  /** Milliseconds from `nowUs` to gateway `g`'s next tick (its worker VMs' earliest); Infinity when none ticks. */
  msToNextTick(g: number, nowUs: number): number {
    const next = this.hosts[g]!.nextTickAt();
    return next === null ? Infinity : Number(next - this.nsOf(nowUs)) / 1e6;
  }

  advanceTo(nowUs: number): void {
    const ns = this.nsOf(nowUs);
    // A request a tick let go may wake its gateway's poller (proxy_on_queue_ready): delivered at this instant.
    for (const h of this.hosts) { h.advanceTo(ns); h.runPending(); }
    this.controlPlane.advance(nowUs / 1000);
    this.controlPlane.flush();

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
        this.startResponse(h.decision);
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
    this.controlPlane.scrape(nowUs / 1000, metrics);
    this.controlPlane.flush();
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
    // Its placement wakes the gateway's poller to report it (proxy_on_queue_ready), at this instant.
    this.hosts[entry.gateway]!.runPending();
    const d: Decision = { replica: this.destinationOf(s, req), handle };
    this.startResponse(d);
    return d;
  }

  /**
   * The engine took the request: as vLLM and SGLang do for a streamed
   * completion, the response headers go out at once, before the prefill; the
   * first token comes with the first body bytes (onFirstToken).
   */
  private startResponse(d: Decision): void {
    const { stream } = d.handle as FilterHandle;
    stream.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
    const v = stream.responseHeaderList().find(([k]) => k === PREFIX_HEADER)?.[1];
    const m = v ? /^(\d+)\/(\d+)$/.exec(v) : null;
    if (m) { d.matched = Number(m[1]); d.total = Number(m[2]); }
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
    if (stream.responseContinued) stream.responseBody(FIRST_CHUNK, false);
  }

  onFinish(d: Decision): void {
    const { stream } = d.handle as FilterHandle;
    if (stream.responseContinued) stream.responseBody(new Uint8Array(0), true);
    stream.complete();
  }

  /** Log lines at warn and above, but for the expected fallback to GET when the exchange is off. */
  unexpectedLogs(): LogEvent[] {
    return this.opts.fleet === false ? this.logs.filter((e) => !e.message.includes('does not take fleet reports')) : this.logs;
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
      fleetReports: this.controlPlane.reports,
      fleetPlacements: this.controlPlane.fleet.placementCount,
    };
  }

  async close(): Promise<void> {
    for (const h of this.hosts) await h.close();
  }
}
