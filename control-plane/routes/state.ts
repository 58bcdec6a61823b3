// GET /v1/state?after=V&waitMs=MS: the binary state (plugin/STATE_FORMAT.md) as soon as its version
// differs from `after`, else held up to waitMs (at most maxLongPollMs) and answered 304.
// POST, same query, with a gateway's fleet report as the body: the report is taken in first, and the
// state answered carries that gateway's sections (what the other gateways placed and queued).
// The same poll reaches a gateway in this process without a socket (statePollCall, below).
import type { FleetExchange } from '../fleetExchange.js';
import { decodeReport, FleetWireError, MAX_REPORT_BYTES, REPORT_CONTENT_TYPE, type PollReport } from '../fleetWire.js';
import type { Route } from '../http.js';
import { allowHeader, bodyTooLarge, contentTypeRefusal, errorBody, jsonText, methodNotAllowed, noSuchEndpoint, readBody, sendJson, type Json } from '../http.js';
import { pollState, type PollAnswer } from '../statePoll.js';
import type { StateStore } from '../stateStore.js';
import { STATE_CONTENT_TYPE, STATE_VERSION_HEADER } from '../stateWire.js';
import type { Telemetry } from '../telemetry.js';
import type { HttpCallRequest, HttpCallResponse } from '../../host/httpCaller.js';

const STATE_PATH = '/v1/state';
const STATE_METHODS = ['GET', 'POST'] as const;

export interface StateRouteDeps { store: StateStore; fleet: FleetExchange; telemetry: Telemetry; maxLongPollMs: number }

/** A refused poll: its status and what the body says. */
interface PollRefusal { status: number; error: string; field?: string }

/** `after` and `waitMs` of a poll's query (waitMs capped at maxLongPollMs), or why they are refused. */
function pollQuery(params: URLSearchParams, maxLongPollMs: number): { after: bigint; waitMs: number } | PollRefusal {
  const afterRaw = params.get('after') ?? '0';
  const waitRaw = params.get('waitMs') ?? '0';
  if (!/^\d{1,20}$/.test(afterRaw) || BigInt(afterRaw) > 0xffffffffffffffffn) return { status: 400, error: 'after must be a non-negative integer (a state version)', field: 'after' };
  if (!/^\d{1,9}$/.test(waitRaw)) return { status: 400, error: 'waitMs must be a non-negative integer (milliseconds)', field: 'waitMs' };
  return { after: BigInt(afterRaw), waitMs: Math.min(Number(waitRaw), maxLongPollMs) };
}

/** A fleet report's bytes decoded and counted, or why it is refused. */
function takeReport(body: Uint8Array, telemetry: Telemetry): PollReport | PollRefusal {
  try {
    const report = decodeReport(body);
    telemetry.fleetReports.inc({ outcome: 'ok' });
    return report;
  } catch (e) {
    if (!(e instanceof FleetWireError)) throw e;
    telemetry.fleetReports.inc({ outcome: 'rejected' });
    return { status: 400, error: `fleet report rejected: ${e.message}`, field: '(body)' };
  }
}

const refused = (x: object): x is PollRefusal => 'error' in x;

/** Holds the poll until pollState answers it once (unless the poller is `gone`); counts the answer. Returns the cancel function. */
function holdPoll(o: StateRouteDeps, after: bigint, waitMs: number, report: PollReport | null, gone: () => boolean, reply: (a: PollAnswer) => void): () => void {
  let answered = false;
  return pollState(o.store, o.fleet, after, waitMs, report, (a) => {
    if (answered || gone()) return;
    answered = true;
    o.telemetry.stateDeliveries.inc({ status: String(a.status) });
    reply(a);
  });
}

export function stateRoute(o: StateRouteDeps): Route {
  return {
    path: STATE_PATH,
    methods: STATE_METHODS,
    async handle(req, res, url) {
      const q = pollQuery(url.searchParams, o.maxLongPollMs);
      if (refused(q)) { req.resume(); return sendJson(res, q.status, errorBody(q.error, q.field)); }
      let report: PollReport | null = null;
      if (req.method === 'POST') {
        const body = await readBody(req, res, MAX_REPORT_BYTES, REPORT_CONTENT_TYPE);
        if (!body) return;
        const r = takeReport(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), o.telemetry);
        if (refused(r)) return sendJson(res, r.status, errorBody(r.error, r.field));
        report = r;
      }
      let answered = false;
      const cancel = holdPoll(o, q.after, q.waitMs, report, () => res.destroyed, (a) => {
        answered = true;
        const version = a.version.toString();
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

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** A JSON answer as sendJson writes it over HTTP. */
function jsonReply(status: number, body: Json, extra: Array<[string, string]> = []): HttpCallResponse {
  const bytes = enc.encode(jsonText(body));
  return { headers: [[':status', String(status)], ['content-type', 'application/json; charset=utf-8'], ['content-length', String(bytes.length)], ['cache-control', 'no-store'], ...extra], body: bytes, trailers: [] };
}

/**
 * The state poll as a proxy_http_call target in this process (a ProxyWasmHost cluster handler):
 * what a gateway embedded beside the control plane (prefix-router start) polls, answered as the
 * HTTP route answers it (same checks, statuses and headers), without the socket, the HTTP server's
 * request and response objects or the client's parser between them. Answers are delivered on a
 * later microtask, never inside the filter's proxy_http_call.
 */
export function statePollCall(o: StateRouteDeps): (req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void) => { cancel(): void } {
  return (req, deliver) => {
    let method = '', path = '', contentType = '';
    for (const [k, v] of req.headers) {
      if (k === ':method') method ||= v;
      else if (k === ':path') path ||= v;
      else if (k === 'content-type') contentType ||= v;
    }
    let live = true;
    const send = (r: HttpCallResponse) => queueMicrotask(() => { if (live) deliver(r); });
    const done = { cancel: () => { live = false; } };
    const qAt = path.indexOf('?');
    const pathname = qAt < 0 ? path : path.slice(0, qAt);
    if (pathname !== STATE_PATH) { send(jsonReply(404, noSuchEndpoint(pathname))); return done; }
    if (!(STATE_METHODS as readonly string[]).includes(method)) { send(jsonReply(405, methodNotAllowed(method, STATE_PATH, STATE_METHODS), [['allow', allowHeader(STATE_METHODS)]])); return done; }
    const q = pollQuery(new URLSearchParams(qAt < 0 ? '' : path.slice(qAt + 1)), o.maxLongPollMs);
    if (refused(q)) { send(jsonReply(q.status, errorBody(q.error, q.field))); return done; }
    let report: PollReport | null = null;
    if (method === 'POST') {
      const refusal = contentTypeRefusal(contentType, REPORT_CONTENT_TYPE);
      if (refusal) { send(jsonReply(415, refusal)); return done; }
      if (req.body.length > MAX_REPORT_BYTES) { send(jsonReply(413, bodyTooLarge(MAX_REPORT_BYTES))); return done; }
      const r = takeReport(req.body, o.telemetry);
      if (refused(r)) { send(jsonReply(r.status, errorBody(r.error, r.field))); return done; }
      report = r;
    }
    const cancel = holdPoll(o, q.after, q.waitMs, report, () => !live, (a) => {
      const version: [string, string] = [STATE_VERSION_HEADER, a.version.toString()];
      send(a.status === 200
        ? { headers: [[':status', '200'], ['content-type', STATE_CONTENT_TYPE], ['content-length', String(a.body.length)], version, ['cache-control', 'no-store']], body: a.body, trailers: [] }
        : { headers: [[':status', '304'], version, ['cache-control', 'no-store']], body: EMPTY, trailers: [] });
    });
    return { cancel: () => { live = false; cancel(); } };
  };
}
