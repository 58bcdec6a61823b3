// GET /v1/state?after=V&waitMs=MS: the binary state (plugin/STATE_FORMAT.md) as soon as its version
// differs from `after`, else held up to waitMs (at most maxLongPollMs) and answered 304.
import type { Route } from '../http.js';
import { errorBody, sendJson } from '../http.js';
import type { StateStore } from '../stateStore.js';
import { STATE_CONTENT_TYPE, STATE_VERSION_HEADER } from '../stateWire.js';
import type { Telemetry } from '../telemetry.js';

export function stateRoute(o: { store: StateStore; telemetry: Telemetry; maxLongPollMs: number }): Route {
  const { store, telemetry } = o;
  return {
    path: '/v1/state',
    methods: ['GET'],
    handle(_req, res, url) {
      const afterRaw = url.searchParams.get('after') ?? '0';
      const waitRaw = url.searchParams.get('waitMs') ?? '0';
      if (!/^\d{1,20}$/.test(afterRaw) || BigInt(afterRaw) > 0xffffffffffffffffn) return sendJson(res, 400, errorBody('after must be a non-negative integer (a state version)', 'after'));
      if (!/^\d{1,9}$/.test(waitRaw)) return sendJson(res, 400, errorBody('waitMs must be a non-negative integer (milliseconds)', 'waitMs'));
      const after = BigInt(afterRaw);
      const waitMs = Math.min(Number(waitRaw), o.maxLongPollMs);
      let answered = false;
      const cancel = store.waitForChange(after, waitMs, (changed) => {
        if (answered || res.destroyed) return;
        answered = true;
        const version = store.version.toString();
        if (changed) {
          const bytes = store.bytes;
          telemetry.stateDeliveries.inc({ status: '200' });
          res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': bytes.length, [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end(bytes);
        } else {
          telemetry.stateDeliveries.inc({ status: '304' });
          res.writeHead(304, { [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end();
        }
      });
      if (!answered) res.on('close', cancel);
    },
  };
}
