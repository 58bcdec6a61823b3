// GET /v1/state?after=V&waitMs=MS: the binary state (plugin/STATE_FORMAT.md) as soon as its version
// differs from `after`, else held up to waitMs (at most maxLongPollMs) and answered 304.
// POST, same query, with a gateway's fleet report as the body: the report is taken in first, and the
// state answered carries that gateway's sections (what the other gateways placed and queued).
import type { FleetExchange } from '../fleetExchange.js';
import { decodeReport, FleetWireError, MAX_REPORT_BYTES, REPORT_CONTENT_TYPE, type PollReport } from '../fleetWire.js';
import type { Route } from '../http.js';
import { errorBody, readBody, sendJson } from '../http.js';
import { pollState } from '../statePoll.js';
import type { StateStore } from '../stateStore.js';
import { STATE_CONTENT_TYPE, STATE_VERSION_HEADER } from '../stateWire.js';
import type { Telemetry } from '../telemetry.js';

export function stateRoute(o: { store: StateStore; fleet: FleetExchange; telemetry: Telemetry; maxLongPollMs: number }): Route {
  const { store, fleet, telemetry } = o;
  return {
    path: '/v1/state',
    methods: ['GET', 'POST'],
    async handle(req, res, url) {
      const afterRaw = url.searchParams.get('after') ?? '0';
      const waitRaw = url.searchParams.get('waitMs') ?? '0';
      if (!/^\d{1,20}$/.test(afterRaw) || BigInt(afterRaw) > 0xffffffffffffffffn) { req.resume(); return sendJson(res, 400, errorBody('after must be a non-negative integer (a state version)', 'after')); }
      if (!/^\d{1,9}$/.test(waitRaw)) { req.resume(); return sendJson(res, 400, errorBody('waitMs must be a non-negative integer (milliseconds)', 'waitMs')); }
      const after = BigInt(afterRaw);
      const waitMs = Math.min(Number(waitRaw), o.maxLongPollMs);
      let report: PollReport | null = null;
      if (req.method === 'POST') {
        const body = await readBody(req, res, MAX_REPORT_BYTES, REPORT_CONTENT_TYPE);
        if (!body) return;
        try {
          report = decodeReport(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
        } catch (e) {
          if (!(e instanceof FleetWireError)) throw e;
          telemetry.fleetReports.inc({ outcome: 'rejected' });
          return sendJson(res, 400, errorBody(`fleet report rejected: ${e.message}`, '(body)'));
        }
        telemetry.fleetReports.inc({ outcome: 'ok' });
      }
      let answered = false;
      const cancel = pollState(store, fleet, after, waitMs, report, (a) => {
        if (answered || res.destroyed) return;
        answered = true;
        const version = a.version.toString();
        telemetry.stateDeliveries.inc({ status: String(a.status) });
        if (a.status === 200) {
          res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': a.body.length, [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end(a.body);
        } else {
          res.writeHead(304, { [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end();
        }
      });
      if (!answered) res.on('close', cancel);
    },
  };
}
