// The embedded gateway's Endpoint Picker Protocol mode: for each request, one bidirectional
// ext_proc stream to the picker, driven as Envoy's ext_proc filter drives it with
// request_body_mode FULL_DUPLEX_STREAMED (headers, then body chunks as they come, the last one
// with end_of_stream), and response headers and body through the picker too unless turned off.
// The picker's answer names the endpoint: dynamic metadata envoy.lb/x-gateway-destination-endpoint
// (an ordered, comma-separated fallback list) or else the x-gateway-destination-endpoint header it
// set; the body that goes upstream is the one the picker streamed back. The response headers go to
// the picker with the endpoint that answered in metadata_context (envoy.lb/x-gateway-destination-
// endpoint-served), which the protocol requires since a fallback list leaves it open. An
// ImmediateResponse (503 no endpoint, 429 shed) goes to the client as it is. When the picker cannot
// be reached or does not answer within the message timeout, FailClose answers 500 (a gRPC error) or
// 504 (a timeout), as Envoy's filter does, and FailOpen sends the request to the pool's endpoints in
// turn.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { GatewayStats, MAX_SOCKETS_PER_UPSTREAM, serveGateway, type Gateway } from '../gateway.js';
import { HOP_BY_HOP, groupHeaders as toNodeHeaders, upstreamHeaders } from '../gatewayExchange.js';
import { UPSTREAM_ERRORS, UpstreamClient, type UpstreamCall, type UpstreamResponseHandler } from '../upstreamClient.js';
import { DESTINATION_HEADER, parseDestination } from '../upstreamSelector.js';
import { NO_HEALTHY_UPSTREAM, UPSTREAM_TIMEOUT, connectFailure, type RouterReply } from '../routerReplies.js';
import {
  BodySendMode, ExtProcClientConstructor, headerValueOf, toHeaderMap,
  type CommonResponse, type ExtProcClient, type HeaderMutation, type ProcessingResponse, type StructValue,
} from './protocol.js';

/** The dynamic-metadata namespace the protocol puts the destination in. */
export const LB_METADATA_NAMESPACE = 'envoy.lb';
/** Where, in that namespace of the response's metadata_context, the proxy reports the endpoint that served the request. */
export const SERVED_KEY = 'x-gateway-destination-endpoint-served';

export type FailureMode = 'FailOpen' | 'FailClose';

export interface PickerAccessLogEntry {
  method: string;
  path: string;
  status: number;
  endpoint: string | null;
  /** How the request was routed: picked, immediate_response, fail_open, ext_proc_error_..., no_healthy_upstream, upstream_... */
  details: string;
  /** From the end of the request to the picker's decision, in ms (null when there was none). */
  pickMs: number | null;
  durationMs: number;
}

export interface PickerGatewayOptions {
  /**
   * The picker: host:port, several (host:port,host:port: replicas of one picker, as the endpoints
   * of Envoy's ext_proc cluster) or a gRPC target (dns:///picker.ns.svc:9002 for a headless
   * Service); each stream goes to the next ready one (round robin).
   */
  picker: string;
  listen?: { host?: string; port?: number };
  /** InferencePool endpointPickerRef.failureMode; default FailClose, as the pool's. */
  failureMode?: FailureMode;
  /** The pool's endpoints (ip:port), used in turn when FailOpen routes around the picker. */
  poolEndpoints?: string[];
  /** Envoy ext_proc message_timeout: how long one answer from the picker may take (default 10000 ms). */
  messageTimeoutMs?: number;
  /** Route timeout until the upstream's response headers (default 15000 ms, Envoy's). */
  upstreamTimeoutMs?: number;
  /** Send response headers and body through the picker (FULL_DUPLEX_STREAMED), as the inference pool's gateways do; default true. */
  processResponse?: boolean;
  onAccessLog?: (e: PickerAccessLogEntry) => void;
}

export type PickerGateway = Gateway;

type Pairs = [string, string][];

/** The endpoints named in envoy.lb/x-gateway-destination-endpoint, in order. */
export function metadataEndpoints(md: StructValue | undefined): string[] {
  const ns = md?.fields?.[LB_METADATA_NAMESPACE];
  const inner = ns?.structValue ?? ns?.struct_value;
  const v = inner?.fields?.[DESTINATION_HEADER];
  const s = v?.stringValue ?? v?.string_value;
  return s ? s.split(',').map((x) => x.trim()).filter(Boolean) : [];
}

/** Applies an ext_proc HeaderMutation: pseudo-headers and host are not changed, as in Envoy. */
export function applyHeaderMutation(headers: Pairs, m: HeaderMutation | undefined): Pairs {
  if (!m) return headers;
  const protectedKey = (k: string) => k.startsWith(':') || k === 'host';
  let out = headers;
  for (const r of m.remove_headers ?? []) {
    const k = r.toLowerCase();
    if (!protectedKey(k)) out = out.filter(([hk]) => hk !== k);
  }
  for (const o of m.set_headers ?? []) {
    if (!o.header?.key) continue;
    const k = o.header.key.toLowerCase();
    if (protectedKey(k) || k.startsWith('x-envoy')) continue;
    const v = headerValueOf(o.header);
    // HeaderValueOption.append_action: 0 APPEND_IF_EXISTS_OR_ADD, 1 ADD_IF_ABSENT, 2 OVERWRITE_IF_EXISTS_OR_ADD, 3 OVERWRITE_IF_EXISTS;
    // the deprecated `append` wins when set. ext_proc's default is to overwrite.
    const action = o.append?.value !== undefined ? (o.append.value ? 0 : 2) : (o.append_action ?? 2);
    const exists = out.some(([hk]) => hk === k);
    if (action === 1 && exists) continue;
    if (action === 3 && !exists) continue;
    if (action === 0) out = [...out, [k, v]];
    else out = [...out.filter(([hk]) => hk !== k), [k, v]];
  }
  return out;
}

const ROUND_ROBIN: grpc.ChannelOptions = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };

/** A gRPC target for `picker`: a list of IPv4 host:port becomes an ipv4: target, anything else is used as it is. */
export function pickerTarget(picker: string): string {
  const parts = picker.split(',').map((x) => x.trim());
  if (parts.length > 1 && parts.every((x) => /^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(x))) return `ipv4:${parts.join(',')}`;
  return picker;
}

/** The gateway as a request handler. */
export function createPickerHandler(opts: PickerGatewayOptions): { handle: http.RequestListener; close(): void } {
  const client: ExtProcClient = new ExtProcClientConstructor(pickerTarget(opts.picker), grpc.credentials.createInsecure(), ROUND_ROBIN);
  const upstreams = new UpstreamClient(MAX_SOCKETS_PER_UPSTREAM);
  const failureMode = opts.failureMode ?? 'FailClose';
  const messageTimeoutMs = opts.messageTimeoutMs ?? 10_000;
  const upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 15_000;
  const processResponse = opts.processResponse ?? true;
  const pool = opts.poolEndpoints ?? [];
  let poolNext = 0;

  const handle: http.RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    let requestEndedAt: bigint | null = null;
    let pickMs: number | null = null;
    let endpoint: string | null = null;
    let details = 'picked';
    let finished = false;
    let decided = false;
    let timer: NodeJS.Timeout | null = null;
    let headers: Pairs = [
      [':method', req.method ?? 'GET'], [':path', req.url ?? '/'], [':authority', req.headers.host ?? ''], [':scheme', 'http'],
    ];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(k)) headers.push([k, req.rawHeaders[i + 1]!]);
    }
    if (!headers.some(([k]) => k === 'x-request-id')) headers.push(['x-request-id', randomUUID()]);
    const hasBody = !(req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined));
    const original: Buffer[] = []; // what the client sent (for FailOpen)
    const picked: Buffer[] = []; // what the picker streamed back (goes upstream)
    let targets: string[] = [];
    // The upstream attempt (its handler, and its call while the response is coming) and the response head it got.
    let upstream: UpstreamResponseHandler | null = null;
    let upstreamCall: UpstreamCall | null = null;
    let upstreamRes: { status: number; headers: Pairs } | null = null;
    let responseThroughPicker = false;

    const finish = () => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      // Served: half-close, as Envoy's filter closes its side when the request is done (a reset
      // per request would trip the picker's HTTP/2 rapid-reset limit). Cut short: reset.
      if (res.writableFinished) closeCall();
      else call.cancel();
      upstream = null;
      upstreamCall?.abort();
      opts.onAccessLog?.({
        method: req.method ?? '', path: req.url ?? '', status: res.statusCode, endpoint, details, pickMs,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      });
    };
    const reply = (status: number, body: string | Uint8Array, why: string, extra: Pairs = []) => {
      details = why;
      if (res.headersSent) { res.destroy(); return; }
      const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
      const hs = toNodeHeaders([['content-type', 'text/plain'], ...extra]);
      hs['content-length'] = String(b.length);
      res.writeHead(status, hs);
      res.end(b);
      req.resume();
    };
    const routerReply = (r: RouterReply) => reply(r.status, r.text, r.details);
    const armTimer = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => pickerFailed('timeout', null), messageTimeoutMs);
    };
    const disarm = () => {
      if (timer) clearTimeout(timer);
      timer = null;
    };

    const call = client.Process();
    let callClosed = false;
    let closeTimer: NodeJS.Timeout | null = null;
    call.on('status', () => {
      callClosed = true;
      if (closeTimer) clearTimeout(closeTimer);
    });
    /** Half-closes the stream; a picker that never ends its side is reset after the message timeout. */
    const closeCall = () => {
      if (callClosed) return;
      if (!call.writableEnded) call.end();
      closeTimer ??= setTimeout(() => call.cancel(), messageTimeoutMs);
      closeTimer.unref();
    };
    call.on('error', (e: grpc.ServiceError) => {
      if (finished || e.code === grpc.status.CANCELLED) return;
      pickerFailed('grpc', e);
    });
    call.on('end', () => {
      if (!finished && !decided) pickerFailed('grpc', null);
    });

    /** The picker failed before its decision, or while the response went through it. */
    function pickerFailed(kind: 'timeout' | 'grpc', e: grpc.ServiceError | null) {
      if (finished) return;
      disarm();
      const why = kind === 'timeout' ? 'ext_proc_error_timeout' : `ext_proc_error_gRPC_error_${e?.code ?? 'closed'}`;
      call.cancel();
      if (decided) {
        // The response was going through the picker: without it the exchange cannot finish intact.
        if (responseThroughPicker) { details = why; res.destroy(); }
        return;
      }
      decided = true;
      if (failureMode === 'FailOpen' && pool.length) {
        details = 'fail_open';
        targets = pool.map((_, i) => pool[(poolNext + i) % pool.length]!);
        poolNext = (poolNext + 1) % pool.length;
        whenRequestRead(() => connect(0, Buffer.concat(original), false));
        return;
      }
      reply(kind === 'timeout' ? 504 : 500, kind === 'timeout' ? 'ext_proc message timeout' : `ext_proc error: ${e?.details ?? 'stream closed'}`, why);
    }

    let requestRead = !hasBody;
    const waitingForRead: (() => void)[] = [];
    function whenRequestRead(fn: () => void) {
      if (requestRead) fn();
      else waitingForRead.push(fn);
    }

    function decide() {
      if (decided || finished) return;
      decided = true;
      disarm();
      pickMs = requestEndedAt === null ? null : Number(process.hrtime.bigint() - requestEndedAt) / 1e6;
      if (targets.length === 0) {
        const h = headers.find(([k]) => k === DESTINATION_HEADER)?.[1];
        if (h) targets = h.split(',').map((x) => x.trim()).filter(Boolean);
      }
      if (targets.length === 0) return routerReply(NO_HEALTHY_UPSTREAM);
      if (!processResponse) closeCall();
      whenRequestRead(() => connect(0, Buffer.concat(picked), processResponse));
    }

    const onCommon = (c: CommonResponse | undefined) => {
      if (c?.header_mutation) headers = applyHeaderMutation(headers, c.header_mutation);
    };

    call.on('data', (m: ProcessingResponse) => {
      if (finished) return;
      const md = metadataEndpoints(m.dynamic_metadata);
      if (md.length && !decided) targets = md;
      if (m.immediate_response) {
        disarm();
        decided = true;
        const ir = m.immediate_response;
        const extra = applyHeaderMutation([], ir.headers);
        return reply(ir.status?.code ?? 200, ir.body ?? new Uint8Array(0), 'immediate_response', extra);
      }
      if (m.request_headers) {
        onCommon(m.request_headers.response);
        if (!hasBody) decide();
        else armTimer();
        return;
      }
      if (m.request_body) {
        armTimer();
        const c = m.request_body.response;
        onCommon(c);
        const sr = c?.body_mutation?.streamed_response;
        if (sr?.body?.length) picked.push(Buffer.from(sr.body));
        else if (c?.body_mutation?.body?.length) picked.push(Buffer.from(c.body_mutation.body));
        if (sr?.end_of_stream) decide();
        return;
      }
      if (m.response_headers && upstreamRes) {
        disarm();
        const mutated = applyHeaderMutation(upstreamRes.headers, m.response_headers.response?.header_mutation);
        writeHead(upstreamRes.status, mutated);
        if (upstreamEndSeen && upstreamBodyless) { res.end(); closeCall(); }
        return;
      }
      if (m.response_body) {
        disarm();
        const sr = m.response_body.response?.body_mutation?.streamed_response;
        if (sr?.body?.length) res.write(Buffer.from(sr.body));
        if (sr?.end_of_stream) { res.end(); closeCall(); }
      }
    });

    // Request headers, with the protocol configuration the first message carries.
    call.write({
      request_headers: { headers: toHeaderMap(headers), end_of_stream: !hasBody },
      protocol_config: {
        request_body_mode: BodySendMode.FULL_DUPLEX_STREAMED,
        response_body_mode: processResponse ? BodySendMode.FULL_DUPLEX_STREAMED : BodySendMode.NONE,
      },
    });
    if (!hasBody) {
      requestEndedAt = process.hrtime.bigint();
      armTimer();
    }
    req.on('data', (chunk: Buffer) => {
      if (finished) return;
      original.push(chunk);
      if (!decided) call.write({ request_body: { body: chunk, end_of_stream: false } });
    });
    req.on('end', () => {
      if (finished) return;
      requestRead = true;
      if (hasBody) {
        requestEndedAt = process.hrtime.bigint();
        if (!decided) {
          call.write({ request_body: { body: Buffer.alloc(0), end_of_stream: true } });
          armTimer();
        }
      }
      for (const fn of waitingForRead.splice(0)) fn();
    });
    req.on('aborted', finish);
    res.on('close', finish);

    let upstreamEndSeen = false;
    let upstreamBodyless = false;
    const writeHead = (status: number, pairs: Pairs) => {
      if (res.headersSent) return;
      res.writeHead(status, toNodeHeaders(pairs));
      res.flushHeaders();
    };

    function connect(attempt: number, body: Buffer, throughPicker: boolean): void {
      if (finished) return;
      const dest = parseDestination(targets[attempt]);
      if (!dest) {
        return attempt + 1 < targets.length ? connect(attempt + 1, body, throughPicker) : routerReply(NO_HEALTHY_UPSTREAM);
      }
      const target = targets[attempt]!;
      endpoint = target;
      const get = (k: string) => headers.find(([hk]) => hk === k)?.[1];
      // What this attempt hears back, once it is the current one (a refused request fails inside request()).
      const attemptHandler: UpstreamResponseHandler = {
        onHeaders(status, raw) {
          if (finished || upstream !== attemptHandler) return;
          upstreamRes = { status, headers: responseHeaderPairs(status, raw) };
          upstreamBodyless = status === 204 || status === 304 || req.method === 'HEAD';
          if (!throughPicker) return writeHead(status, upstreamRes.headers);
          responseThroughPicker = true;
          call.write({
            response_headers: { headers: toHeaderMap(upstreamRes.headers), end_of_stream: upstreamBodyless },
            metadata_context: { filter_metadata: { [LB_METADATA_NAMESPACE]: { fields: { [SERVED_KEY]: { stringValue: target } } } } },
          });
          armTimer();
        },
        onData(chunk) {
          if (finished || upstream !== attemptHandler) return;
          if (!throughPicker) res.write(chunk);
          else call.write({ response_body: { body: chunk, end_of_stream: false } });
        },
        onComplete() {
          if (upstream !== attemptHandler) return;
          upstreamEndSeen = true;
          upstreamCall = null;
          if (finished) return;
          if (!throughPicker) { res.end(); return; }
          if (upstreamBodyless) {
            if (res.headersSent) { res.end(); closeCall(); }
            return;
          }
          call.write({ response_body: { body: Buffer.alloc(0), end_of_stream: true } });
          armTimer();
        },
        onError(e) {
          if (finished || upstream !== attemptHandler) return;
          upstreamCall = null;
          if (upstreamRes) { res.destroy(); return; }
          if (e.code === UPSTREAM_ERRORS.headersTimeout.code) return routerReply(UPSTREAM_TIMEOUT);
          if (attempt + 1 < targets.length) return connect(attempt + 1, body, throughPicker);
          routerReply(connectFailure(e));
        },
      };
      upstream = attemptHandler;
      const sent = upstreams.request({
        host: dest.host, port: dest.port, method: get(':method') ?? 'GET', path: get(':path') ?? '/',
        headers: upstreamHeaders(headers, target, true), body: body.length > 0 ? body : null, timeoutMs: upstreamTimeoutMs,
      }, attemptHandler);
      if (upstream === attemptHandler && !finished) upstreamCall = sent;
    }
  };

  return {
    handle,
    close: () => {
      upstreams.close();
      client.close();
    },
  };
}

function responseHeaderPairs(status: number, raw: string[]): Pairs {
  const out: Pairs = [[':status', String(status)]];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    // The body is re-framed by this gateway (the picker may change it): length and framing go.
    if (k === 'content-length' || HOP_BY_HOP.has(k)) continue;
    out.push([k, raw[i + 1]!]);
  }
  return out;
}

/** Starts the picker-mode gateway on a socket. */
export function startPickerGateway(opts: PickerGatewayOptions): Promise<PickerGateway> {
  return serveGateway({ ...createPickerHandler(opts), stats: new GatewayStats() }, opts.listen);
}
