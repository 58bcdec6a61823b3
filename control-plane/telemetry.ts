// The control plane's own Prometheus metrics (GET /metrics), on a registry of
// its own so several instances can live in one process (tests, `npm start`).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'prefix_router_cp_' });
  }

  forgetReplica(address: string): void {
    this.scrapeSeconds.remove({ replica: address });
    for (const reason of ['timeout', 'connect', 'status', 'too_large', 'no_metrics']) this.scrapeErrors.remove({ replica: address, reason });
  }
}
