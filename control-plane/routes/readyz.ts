// GET /readyz: 200 when there is a ready replica to hand out, else 503 and why.
import type { Route } from '../http.js';
import { sendJson } from '../http.js';

export function readyzRoute(readiness: () => { ready: boolean; reason: string }): Route {
  return {
    path: '/readyz',
    methods: ['GET'],
    handle(_req, res) {
      const r = readiness();
      sendJson(res, r.ready ? 200 : 503, r);
    },
  };
}
