// GET /healthz: the process answers.
import type { Route } from '../http.js';
import { sendJson } from '../http.js';

export function healthzRoute(): Route {
  return { path: '/healthz', methods: ['GET'], handle: (_req, res) => sendJson(res, 200, { ok: true }) };
}
