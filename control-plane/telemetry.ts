// The control plane's own Prometheus metrics (GET /metrics), on a registry of
// its own so several instances can live in one process (tests, `npm start`).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StateStore } from './stateStore.js';

/** How often the event-loop lag (nodejs_eventloop_lag_*) is sampled. */
const EVENT_LOOP_SAMPLE_MS = 100;

export class Telemetry {
  readonly registry = new Registry();
  readonly scrapeSeconds = new Histogram({
    name: 'prefix_router_cp_scrape_duration_seconds', help: 'Duration of replica /metrics scrapes (successful and failed).',
    labelNames: ['replica'], registers: [this.registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly scrapeErrors = new Counter({
    name: 'prefix_router_cp_scrape_errors_total', help: 'Failed scrapes by replica and reason.',
    labelNames: ['replica', 'reason'], registers: [this.registry],
  });
  readonly stateVersion = new Gauge({ name: 'prefix_router_cp_state_version', help: 'Version of the served scorer state.', registers: [this.registry] });
  readonly stateDeliveries = new Counter({
    name: 'prefix_router_cp_state_deliveries_total', help: 'Answers to GET /v1/state by status (200 state, 304 unchanged).',
    labelNames: ['status'], registers: [this.registry],
  });
  readonly fleetReports = new Counter({
    name: 'prefix_router_cp_fleet_reports_total', help: 'Gateway fleet reports (POST /v1/state bodies) by outcome (ok, rejected).',
    labelNames: ['outcome'], registers: [this.registry],
  });
  readonly fleetPlacements = new Gauge({ name: 'prefix_router_cp_fleet_placements', help: 'Placements the gateway fleet exchange holds.', registers: [this.registry] });
  readonly fleetGateways = new Gauge({ name: 'prefix_router_cp_fleet_gateways', help: 'Gateways that reported within the expiry.', registers: [this.registry] });
  readonly longPollsWaiting = new Gauge({ name: 'prefix_router_cp_long_polls_waiting', help: 'State long polls being held open.', registers: [this.registry] });
  readonly weightChanges = new Counter({ name: 'prefix_router_cp_weight_changes_total', help: 'Accepted weight changes.', registers: [this.registry] });
  readonly replicas = new Gauge({ name: 'prefix_router_cp_replicas', help: 'Known replicas by routing state.', labelNames: ['state'], registers: [this.registry] });
  readonly stateAgeSeconds = new Gauge({ name: 'prefix_router_cp_state_age_seconds', help: 'Seconds since the served state version was published.', registers: [this.registry] });
  readonly decisionLogEvery = new Gauge({
    name: 'prefix_router_cp_decision_log_every', help: 'Filters log the decision record of one request in this many per worker VM (0: off).', registers: [this.registry],
  });
  // What the last good scrape of each replica said, re-exported so one Prometheus job sees the fleet as routed.
  readonly replicaWaiting = new Gauge({ name: 'prefix_router_cp_replica_waiting', help: 'Requests waiting in the replica\'s engine queue, as last scraped.', labelNames: ['replica'], registers: [this.registry] });
  readonly replicaRunning = new Gauge({ name: 'prefix_router_cp_replica_running', help: 'Requests running on the replica, as last scraped.', labelNames: ['replica'], registers: [this.registry] });
  readonly replicaKvUsage = new Gauge({ name: 'prefix_router_cp_replica_kv_usage', help: 'Fraction (0..1) of the replica\'s KV cache in use, as last scraped.', labelNames: ['replica'], registers: [this.registry] });
  readonly replicaPrefixCacheQueries = new Gauge({
    name: 'prefix_router_cp_replica_prefix_cache_queries', help: 'The replica\'s own prefix-cache lookup counter (vllm:prefix_cache_queries_total, tokens), as last scraped; rate() it.',
    labelNames: ['replica'], registers: [this.registry],
  });
  readonly replicaPrefixCacheHits = new Gauge({
    name: 'prefix_router_cp_replica_prefix_cache_hits', help: 'The replica\'s own prefix-cache hit counter (vllm:prefix_cache_hits_total, tokens), as last scraped; rate() it.',
    labelNames: ['replica'], registers: [this.registry],
  });
  readonly replicaHitRate = new Gauge({
    name: 'prefix_router_cp_replica_prefix_cache_hit_rate', help: 'Prefix-cache hit rate (0..1) of the replica over the control plane\'s hit-rate window, from its own counters (or its hit-rate gauge).',
    labelNames: ['replica'], registers: [this.registry],
  });
  readonly replicaMetricsAgeSeconds = new Gauge({
    name: 'prefix_router_cp_replica_metrics_age_seconds', help: 'Seconds since the replica\'s last good scrape.', labelNames: ['replica'], registers: [this.registry],
  });

  constructor() {
    // The event-loop lag histogram samples on a timer of its own: every 10 ms by default, about a
    // fifth of an idle control plane's CPU; every 100 ms still catches a loop held up.
    collectDefaultMetrics({ register: this.registry, prefix: 'prefix_router_cp_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  forgetReplica(address: string): void {
    this.scrapeSeconds.remove({ replica: address });
    for (const reason of ['timeout', 'connect', 'status', 'too_large', 'no_metrics']) this.scrapeErrors.remove({ replica: address, reason });
    for (const g of this.replicaGauges()) g.remove({ replica: address });
  }

  /** The per-replica gauges set from the replicas' scrapes. */
  replicaGauges(): Gauge[] {
    return [this.replicaWaiting, this.replicaRunning, this.replicaKvUsage, this.replicaPrefixCacheQueries, this.replicaPrefixCacheHits, this.replicaHitRate, this.replicaMetricsAgeSeconds];
  }

  /** Sets the read-not-pushed gauges from the store (before each scrape of /metrics). */
  observeStore(store: StateStore, now: number): void {
    this.stateAgeSeconds.set(Math.max(0, now - store.publishedAt) / 1000);
    for (const g of this.replicaGauges()) g.reset();
    for (const r of store.replicas.values()) {
      const replica = r.address;
      const m = r.metrics;
      const age = store.metricsAgeMs(r);
      if (age !== null) this.replicaMetricsAgeSeconds.set({ replica }, Math.max(0, age) / 1000);
      if (m?.waiting !== undefined) this.replicaWaiting.set({ replica }, m.waiting);
      if (m?.running !== undefined) this.replicaRunning.set({ replica }, m.running);
      if (m?.kvUsage !== undefined) this.replicaKvUsage.set({ replica }, m.kvUsage);
      if (m?.prefixCacheQueries !== undefined) this.replicaPrefixCacheQueries.set({ replica }, m.prefixCacheQueries);
      if (m?.prefixCacheHits !== undefined) this.replicaPrefixCacheHits.set({ replica }, m.prefixCacheHits);
      const hit = store.observedHitRate(r);
      if (hit !== null) this.replicaHitRate.set({ replica }, hit);
    }
  }
}
