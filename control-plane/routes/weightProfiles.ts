// GET /v1/weights/profiles: the named weight profiles PUT /v1/weights accepts.
import type { Route } from '../http.js';
import { sendJson } from '../http.js';
import { WEIGHT_PROFILES } from '../weights.js';

export function weightProfilesRoute(): Route {
  return {
    path: '/v1/weights/profiles',
    methods: ['GET'],
    handle(_req, res) {
      sendJson(res, 200, { profiles: Object.fromEntries(Object.entries(WEIGHT_PROFILES).map(([k, v]) => [k, { ...v.weights, description: v.description }])) });
    },
  };
}
