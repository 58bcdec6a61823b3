// GET /v1/replicas: every known replica, what discovery and the last scrapes say of it.
import type { Discovery } from '../discovery.js';
import type { Route } from '../http.js';
import { sendJson } from '../http.js';
import type { StateStore } from '../stateStore.js';

export function replicasRoute(o: { store: StateStore; discovery: Discovery }): Route {
  const { store } = o;
  return {
    path: '/v1/replicas',
    methods: ['GET'],
    handle(_req, res) {
      const list = [...store.replicas.values()].sort((a, b) => (a.address < b.address ? -1 : 1)).map((r) => {
        const stale = store.isStale(r);
        return {
          address: r.address,
          source: r.source,
          ready: r.discoveryReady && !stale,
          discoveryReady: r.discoveryReady,
          stale,
          metricsAgeMs: store.metricsAgeMs(r),
          metrics: r.metrics,
          observedHitRate: store.observedHitRate(r),
          kvCapacityTokens: r.metrics?.kvCapacityTokens ?? null,
          lora: r.lora,
          maxModelLen: r.maxModelLen,
          consecutiveFailures: r.consecutiveFailures,
          lastError: r.lastError,
        };
      });
      sendJson(res, 200, { version: store.version.toString(), discovery: o.discovery.description, replicas: list });
    },
  };
}
