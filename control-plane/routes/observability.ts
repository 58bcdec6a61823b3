// GET /v1/observability: the run-time observability settings every filter gets in its state
// (section 32). PUT /v1/observability: new settings, for a caller the write guard admits; 400
// naming the field. Not persisted: decision records are turned on to debug, and a restart
// turns them back to the configured value (decisionLogEvery, --decision-log-every).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../http.js';
import { errorBody, getPutRoute, sendJson } from '../http.js';
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
  return getPutRoute({
    path: '/v1/observability',
    mayWrite: o.mayWrite,
    maxBodyBytes: o.maxBodyBytes,
    describe: () => ({ ...o.settings(), version: o.store.version.toString() }),
    put(value, res) {
      const problem = observabilityProblem(value);
      if (problem) {
        sendJson(res, 400, errorBody(problem.error, problem.field));
        return false;
      }
      o.setSettings({ decisionLogEvery: (value as ObservabilitySettings).decisionLogEvery });
      o.log.info('observability settings changed', { ...o.settings(), version: o.store.version.toString() });
      return true;
    },
  });
}
