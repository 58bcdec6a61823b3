// GET /v1/state?after=V&waitMs=MS: the binary state (plugin/STATE_FORMAT.md) as soon as its version
// differs from `after`, else held up to waitMs (at most maxLongPollMs) and answered 304.
// POST, same query, with a gateway's fleet report as the body: the report is taken in first, and the
// state answered carries that gateway's sections (what the other gateways placed and queued).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FleetExchange } from '../fleetExchange.js';
import { decodeReport, FleetWireError, MAX_REPORT_BYTES, REPORT_CONTENT_TYPE, type PollReport } from '../fleetWire.js';
import type { Route } from '../http.js';
import { errorBody, sendJson } from '../http.js';
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
      let behind = false;
      if (req.method === 'POST') {
        const body = await readReportBody(req, res);
        if (!body) return;
        try {
          report = decodeReport(body);
        } catch (e) {
          if (!(e instanceof FleetWireError)) throw e;
          telemetry.fleetReports.inc({ outcome: 'rejected' });
          return sendJson(res, 400, errorBody(`fleet report rejected: ${e.message}`, '(body)'));
        }
        telemetry.fleetReports.inc({ outcome: 'ok' });
        behind = fleet.ingest(report);
      }
      let answered = false;
      const answer = (changed: boolean) => {
        if (answered || res.destroyed) return;
        answered = true;
        const version = store.version.toString();
        if (changed) {
          const bytes = report ? store.payloadFor(fleet.sectionsFor(store.state, report)) : store.bytes;
          telemetry.stateDeliveries.inc({ status: '200' });
          res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': bytes.length, [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end(bytes);
        } else {
          telemetry.stateDeliveries.inc({ status: '304' });
          res.writeHead(304, { [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
          res.end();
        }
      };
      if (behind) return answer(true);
      const cancel = store.waitForChange(after, waitMs, answer);
      if (!answered) res.on('close', cancel);
    },
  };
}

/** The report's bytes, or undefined when the request was answered with an error (415, 413). */
function readReportBody(req: IncomingMessage, res: ServerResponse): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== REPORT_CONTENT_TYPE) {
      req.resume();
      sendJson(res, 415, errorBody(`Content-Type must be ${REPORT_CONTENT_TYPE} (got ${type ? JSON.stringify(type) : 'none'})`));
      return resolve(undefined);
    }
    const tooLarge = () => {
      sendJson(res, 413, errorBody(`fleet report larger than ${MAX_REPORT_BYTES} bytes`), { connection: 'close' });
      resolve(undefined);
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_REPORT_BYTES) { req.resume(); return tooLarge(); }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > MAX_REPORT_BYTES) { failed = true; req.resume(); tooLarge(); return; }
      chunks.push(c);
    });
    req.on('error', () => { if (!failed) { failed = true; resolve(undefined); } });
    req.on('end', () => { if (!failed) resolve(new Uint8Array(Buffer.concat(chunks))); });
  });
}
