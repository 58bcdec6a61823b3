// GET /metrics: the control plane's own metrics in Prometheus text.
import type { Route } from '../http.js';
import type { Telemetry } from '../telemetry.js';

/** `refresh` sets the gauges that are read, not pushed, before each scrape. */
export function metricsRoute(telemetry: Telemetry, refresh: () => void): Route {
  return {
    path: '/metrics',
    methods: ['GET'],
    async handle(_req, res) {
      refresh();
      const text = await telemetry.registry.metrics();
      res.writeHead(200, { 'content-type': telemetry.registry.contentType });
      res.end(text);
    },
  };
}
