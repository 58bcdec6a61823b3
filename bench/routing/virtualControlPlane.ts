// The control plane the simulated gateways poll, on the simulation's clock:
// the real StateStore, FleetExchange and long-poll logic (control-plane/),
// served to each gateway's filter as an in-process Envoy cluster. The filter's
// own poller sends its fleet report and receives its state exactly as it would
// over HTTP; only the socket is left out, and time is virtual: the scrape
// feeds the store (as the scraper would), held polls wait on virtual timers,
// and answers are delivered at the simulation's next step, never inside a
// call into the filter.
import { FleetExchange } from '../../control-plane/fleetExchange.js';
import { decodeReport, type PollReport } from '../../control-plane/fleetWire.js';
import { pollState } from '../../control-plane/statePoll.js';
import { StateStore, type PollTimers } from '../../control-plane/stateStore.js';
import { STATE_CONTENT_TYPE, type Weights } from '../../control-plane/stateWire.js';
import type { HttpCallHandler, HttpCallRequest, HttpCallResponse } from '../../host/index.js';
import type { ReplicaMetrics } from './policy.js';

/** The control plane's staleness default (control-plane/config.ts). */
const STALENESS_MS = 2000;

interface Timer { dueMs: number; fn: () => void; live: boolean }

export class VirtualControlPlane {
  readonly store: StateStore;
  readonly fleet: FleetExchange;
  private nowMs = 0;
  private timers: Timer[] = [];
  private pending: Array<() => void> = [];
  private lastFleetPublishMs = -Infinity;
  /** Fleet reports taken in, and answers with a state. */
  reports = 0;
  states = 0;

  /** `fleet` false: POST polls are refused (405), as by a control plane from before the exchange; the filters then poll with GET. */
  constructor(weights: Weights, private readonly addresses: readonly string[], hashAddress: (a: string) => bigint, private readonly fleetExchange = true) {
    const timers: PollTimers = {
      set: (fn, ms) => { const t: Timer = { dueMs: this.nowMs + ms, fn, live: true }; this.timers.push(t); return t; },
      clear: (h) => { (h as Timer).live = false; },
    };
    this.store = new StateStore(weights, { stalenessMs: STALENESS_MS, hitRateWindowMs: 60_000, now: () => this.nowMs, timers });
    this.fleet = new FleetExchange({ hashAddress, now: () => this.nowMs });
    this.store.onPublish((s) => this.fleet.setReplicas(s.replicas));
    this.store.setMembers(addresses.map((address) => ({ address, ready: true, source: 'simulation' })));
  }

  /** The in-process cluster one gateway's filter polls. */
  readonly cluster: HttpCallHandler = (req, deliver) => {
    let live = true;
    const send = (res: HttpCallResponse) => this.pending.push(() => { if (live) deliver(res); });
    const cancel = this.poll(req, send);
    return { cancel: () => { live = false; cancel(); } };
  };

  private poll(req: HttpCallRequest, send: (res: HttpCallResponse) => void): () => void {
    const header = (k: string) => req.headers.find(([hk]) => hk === k)?.[1] ?? '';
    const url = new URL(header(':path'), 'http://control-plane');
    const after = BigInt(url.searchParams.get('after') ?? '0');
    const waitMs = Number(url.searchParams.get('waitMs') ?? '0');
    let report: PollReport | null = null;
    if (header(':method') === 'POST') {
      if (!this.fleetExchange) {
        send({ headers: [[':status', '405'], ['allow', 'GET']], body: new Uint8Array(0), trailers: [] });
        return () => {};
      }
      report = decodeReport(req.body);
      this.reports++;
    }
    return pollState(this.store, this.fleet, after, waitMs, report, (a) => {
      if (a.status === 200) this.states++;
      send(a.status === 200
        ? { headers: [[':status', '200'], ['content-type', STATE_CONTENT_TYPE]], body: a.body, trailers: [] }
        : { headers: [[':status', '304']], body: new Uint8Array(0), trailers: [] });
    });
  }

  /** A scrape of every replica at `nowMs`: the store takes the metrics (and context length: modelInfo.ts) in and publishes, as the control plane's tick does. */
  scrape(nowMs: number, metrics: readonly ReplicaMetrics[]): void {
    this.advance(nowMs);
    metrics.forEach((m, i) => {
      this.store.recordSuccess(this.addresses[i]!, { waiting: m.waiting, running: m.running, kvUsage: m.kvUsage, kvCapacityTokens: m.kvCapacityTokens }, m.lora ?? null);
      if (m.maxModelLen !== undefined) this.store.recordModelInfo(this.addresses[i]!, m.maxModelLen);
    });
    if (!this.publishFleetNews()) this.store.publish();
  }

  /** As the control plane's publish timer does (app.ts): a new version for the fleet's news once it is due (fleetExchange.ts, newsDelayMs). */
  private publishFleetNews(): boolean {
    if (this.nowMs - this.lastFleetPublishMs < this.fleet.newsDelayMs || !this.fleet.takeChanged()) return false;
    this.lastFleetPublishMs = this.nowMs;
    this.store.publish(true);
    return true;
  }

  /** Moves the clock: the fleet's news is published when due, held polls whose wait ran out are answered 304. */
  advance(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
    this.publishFleetNews();
    if (this.timers.length === 0) return;
    const due = this.timers.filter((t) => t.live && t.dueMs <= this.nowMs);
    if (due.length === 0) return;
    this.timers = this.timers.filter((t) => t.live && t.dueMs > this.nowMs);
    for (const t of due) { t.live = false; t.fn(); }
  }

  /** Delivers the answers waiting (each may start the filter's next poll, answered in turn). */
  flush(): void {
    for (let rounds = 0; this.pending.length > 0; rounds++) {
      if (rounds > 1000) throw new Error('the filters and the control plane kept answering each other at one instant');
      const p = this.pending;
      this.pending = [];
      for (const f of p) f();
    }
  }
}
