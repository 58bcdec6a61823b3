// GET /v1/observability: the run-time observability settings every filter gets in its state
// (section 32). PUT /v1/observability: new settings, for a caller the write guard admits; 400
// naming the field. Not persisted: decision records are turned on to debug, and a restart
// turns them back to the configured value (decisionLogEvery, --decision-log-every).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../http.js';
import { errorBody, readJsonBody, sendJson } from '../http.js';
import type { Logger } from '../log.js';
import { observabilityProblem, type ObservabilitySettings } from '../observabilitySection.js';
import type { StateStore } from '../stateStore.js';

export interface ObservabilityRouteOptions {
  store: StateStore;
  settings(): ObservabilitySettings;
  /** Applies valid settings (publishes a new state version). */
  setSettings(s: ObservabilitySettings): void;
  /** answers 401/403 itself and returns false when the caller may not write */
  mayWrite(req: IncomingMessage, res: ServerResponse): boolean;
  maxBodyBytes: number;
  log: Logger;
}

export function observabilityRoute(o: ObservabilityRouteOptions): Route {
  const describe = () => ({ ...o.settings(), version: o.store.version.toString() });
  return {
    path: '/v1/observability',
    methods: ['GET', 'PUT'],
    async handle(req, res) {
      if (req.method === 'GET') return sendJson(res, 200, describe());
      if (!o.mayWrite(req, res)) { req.resume(); return; }
      const body = await readJsonBody(req, res, o.maxBodyBytes);
      if (!body) return;
      const problem = observabilityProblem(body.value);
      if (problem) return sendJson(res, 400, errorBody(problem.error, problem.field));
      const next = body.value as ObservabilitySettings;
      o.setSettings({ decisionLogEvery: next.decisionLogEvery });
      o.log.info('observability settings changed', { ...o.settings(), version: o.store.version.toString() });
      sendJson(res, 200, describe());
    },
  };
}
