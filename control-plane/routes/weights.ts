// GET /v1/weights: the weights served and where they are kept. PUT /v1/weights: a profile or
// (partial) weights, for a caller the write guard admits; 400 naming the field, 500 when the
// store cannot save them (the weights then stay as they were).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../http.js';
import { errorBody, getPutRoute, sendJson } from '../http.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../stateStore.js';
import { WeightsInputError, type WeightsRecord, type WeightsStore } from '../weights.js';

export interface WeightsRouteOptions {
  store: StateStore;
  weightsStore: WeightsStore;
  weights(): WeightsRecord;
  /** throws WeightsInputError on bad input, anything else when saving failed */
  setWeights(update: unknown): Promise<WeightsRecord>;
  /** answers 401/403 itself and returns false when the caller may not write */
  mayWrite(req: IncomingMessage, res: ServerResponse): boolean;
  maxBodyBytes: number;
  log: Logger;
}

export function weightsRoute(o: WeightsRouteOptions): Route {
  return getPutRoute({
    path: '/v1/weights',
    mayWrite: o.mayWrite,
    maxBodyBytes: o.maxBodyBytes,
    describe: () => {
      const r = o.weights();
      return { ...r.weights, profile: r.profile, version: o.store.version.toString(), persistedIn: o.weightsStore.description };
    },
    async put(value, res) {
      try {
        await o.setWeights(value);
        return true;
      } catch (e) {
        if (e instanceof WeightsInputError) sendJson(res, 400, errorBody(e.message, e.field));
        else {
          o.log.error('saving weights failed; weights unchanged', { store: o.weightsStore.description, error: e as Error });
          sendJson(res, 500, errorBody(`could not save the weights (${o.weightsStore.description}); weights unchanged`));
        }
        return false;
      }
    },
  });
}
