// GET /v1/weights: the weights served and where they are kept. PUT /v1/weights: a profile or
// (partial) weights, for a caller the write guard admits; 400 naming the field, 500 when the
// store cannot save them (the weights then stay as they were).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from '../http.js';
import { errorBody, readJsonBody, sendJson } from '../http.js';
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
  const describe = () => {
    const r = o.weights();
    return { ...r.weights, profile: r.profile, version: o.store.version.toString(), persistedIn: o.weightsStore.description };
  };
  return {
    path: '/v1/weights',
    methods: ['GET', 'PUT'],
    async handle(req, res) {
      if (req.method === 'GET') return sendJson(res, 200, describe());
      if (!o.mayWrite(req, res)) { req.resume(); return; }
      const body = await readJsonBody(req, res, o.maxBodyBytes);
      if (!body) return;
      try {
        await o.setWeights(body.value);
      } catch (e) {
        if (e instanceof WeightsInputError) return sendJson(res, 400, errorBody(e.message, e.field));
        o.log.error('saving weights failed; weights unchanged', { store: o.weightsStore.description, error: e as Error });
        return sendJson(res, 500, errorBody(`could not save the weights (${o.weightsStore.description}); weights unchanged`));
      }
      sendJson(res, 200, describe());
    },
  };
}
