// The picker's Prometheus metrics (GET /metrics on its metrics port): its own, on a registry of
// its own so several pickers can live in one process (tests, benchmarks), followed by the
// filter's metrics summed over its VMs, under the same names the embedded gateway's admin uses.
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProxyWasmHost } from '../host/index.js';
import { StatsStore, renderPrometheus } from '../host/statsStore.js';
import { closeServer, listen } from '../host/listen.js';

export class PickerMetrics {
  readonly registry = new Registry();
  readonly streams = new Counter({ name: 'prefix_router_picker_streams_total', help: 'ext_proc streams opened (one per proxied request).', registers: [this.registry] });
  readonly openStreams = new Gauge({ name: 'prefix_router_picker_open_streams', help: 'ext_proc streams open now.', registers: [this.registry] });
  readonly decisions = new Counter({
    name: 'prefix_router_picker_decisions_total',
    help: 'How each request left the picker: picked (endpoint named), immediate_response (by status), no_endpoint (the filter released it without one).',
    labelNames: ['outcome', 'status'], registers: [this.registry],
  });
  readonly decisionSeconds = new Histogram({
    name: 'prefix_router_picker_decision_seconds',
    help: 'From the ext_proc message that completed what the filter needed to the decision being written, in seconds.',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1], registers: [this.registry],
  });
  readonly served = new Counter({
    name: 'prefix_router_picker_served_total',
    help: 'Responses whose served endpoint the proxy reported (envoy.lb x-gateway-destination-endpoint-served), by whether it was the picked one, the runner-up or another.',
    labelNames: ['served'], registers: [this.registry],
  });
  readonly subsetOverrides = new Counter({
    name: 'prefix_router_picker_subset_overrides_total',
    help: 'Requests whose subset hint held no replica the filter could pick; they went to the hint\'s endpoints in its order.',
    registers: [this.registry],
  });
  readonly streamErrors = new Counter({
    name: 'prefix_router_picker_stream_errors_total', help: 'ext_proc streams ended by an error, by reason.', labelNames: ['reason'], registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'prefix_router_picker_' });
  }

  /** The Prometheus text: the picker's own metrics, then the filter's. */
  async render(host: ProxyWasmHost): Promise<string> {
    return (await this.registry.metrics()) + renderPrometheus(new StatsStore(), host.metrics());
  }
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics. */
export async function startMetricsServer(metrics: PickerMetrics, host: ProxyWasmHost, at: { host: string; port: number }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; GET /metrics\n');
      return;
    }
    metrics.render(host).then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  const { url, port } = await listen(server, at.host, at.port);
  return { url, port, close: () => closeServer(server) };
}
