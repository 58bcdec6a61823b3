// One client request through the embedded gateway, as Envoy's HTTP connection manager and
// router carry it: the request runs through the filter's stream, goes to the upstream the
// selector names once the filter releases it (retried on a connect failure), and the response
// comes back through the filter's response hooks, flushed as it arrives (SSE chunks included).
// The gateway's own replies (no healthy upstream, connect failure, timeout) are Envoy's router
// replies: they pass the response hooks too.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { HeaderPairs } from './abi.js';
import type { ProxyWasmHost } from './proxyWasmHost.js';
import type { LocalResponse, Stream } from './stream.js';
import type { GatewayStats } from './gatewayStats.js';
import type { Destination, UpstreamSelector } from './upstreamSelector.js';

/** Headers that belong to one connection, not to the request (Envoy strips them too). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

const enc = new TextEncoder();
const EMPTY = new Uint8Array(0);

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  /** Where the request went (ip:port), if anywhere. */
  endpoint: string | null;
  /** Envoy-style response code details: via_upstream, no_healthy_upstream, a filter's local-reply details... */
  details: string;
  durationMs: number;
  /** Time spent inside the Wasm module for this stream, in microseconds. */
  wasmUs: number;
  worker: number;
  bytesReceived: number;
  bytesSent: number;
}

/** What every exchange of one gateway shares. */
export interface ExchangeSettings {
  host: ProxyWasmHost;
  agent: http.Agent;
  upstream: UpstreamSelector;
  stats: GatewayStats;
  timeoutMs: number;
  connectRetries: number;
  onAccessLog?: (e: AccessLogEntry) => void;
}

/** Node's header object from pairs: pseudo-headers and hop-by-hop headers left out, repeats as arrays. */
export function groupHeaders(pairs: HeaderPairs): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    if (k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

function pairsOf(raw: string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

function socketAddress(address: string | undefined, port: number | undefined): string {
  const a = address ?? '127.0.0.1';
  return `${a.includes(':') ? `[${a}]` : a}:${port ?? 0}`;
}

export class GatewayExchange {
  private readonly started = process.hrtime.bigint();
  private stream!: Stream;
  private upstream: http.ClientRequest | null = null;
  private upstreamRes: http.IncomingMessage | null = null;
  private endpoint: string | null = null;
  private details = 'via_upstream';
  /** The client's request body has all arrived. */
  private downstreamEnded = false;
  private upstreamEnded = false;
  private responseStarted = false;
  /** The response head has been handed to the socket (alone, or with body bytes). */
  private headWritten = false;
  private responseFlushQueued = false;
  private responseEndSeen = false;
  private finished = false;
  private bytesReceived = 0;
  private bytesSent = 0;
  private pumpQueued = false;
  /** Trailers from the replica, for when the filter leaves the response trailers alone. */
  private pendingTrailers: HeaderPairs | null = null;
  /** Request bytes sent upstream, kept to replay on a connect retry. */
  private readonly sentUpstream: Buffer[] = [];

  constructor(private readonly gw: ExchangeSettings, private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {}

  /** Opens the filter's stream and feeds it the request as it arrives. */
  start(): void {
    const { req, res, gw } = this;
    gw.stats.rqTotal.inc();
    gw.stats.rqActive.inc();
    try {
      this.stream = gw.host.newStream({
        properties: {
          'source.address': socketAddress(req.socket.remoteAddress, req.socket.remotePort),
          'source.port': BigInt(req.socket.remotePort ?? 0),
          'destination.address': socketAddress(req.socket.localAddress, req.socket.localPort),
          'destination.port': BigInt(req.socket.localPort ?? 0),
        },
        listener: {
          requestReleased: () => this.later(() => {
            if (!this.finished && !this.upstream && !this.stream.localResponse) this.connect(0);
          }),
          requestData: () => this.schedulePump(),
          localResponse: (r) => this.later(() => this.sendLocal(r)),
          reset: () => this.later(() => {
            this.details = 'wasm_close_stream';
            this.upstream?.destroy();
            this.res.destroy();
          }),
          responseReleased: () => this.later(() => {
            this.writeResponseHeaders();
            this.pumpResponse();
          }),
          responseData: () => this.later(() => this.pumpResponse()),
        },
      });
    } catch (e) {
      gw.stats.rqActive.dec();
      gw.stats.rqCompleted.inc();
      gw.stats.downstreamResponse(503);
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`gateway unavailable: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    res.on('close', () => this.finish());
    this.feedRequest();
  }

  private feedRequest(): void {
    const { req, stream } = this;
    const headers: HeaderPairs = [
      [':method', req.method ?? 'GET'],
      [':path', req.url ?? '/'],
      [':authority', req.headers.host ?? ''],
      [':scheme', 'http'],
    ];
    for (const [k, v] of pairsOf(req.rawHeaders)) if (!HOP_BY_HOP.has(k)) headers.push([k, v]);
    if (!headers.some(([k]) => k === 'x-request-id')) headers.push(['x-request-id', randomUUID()]);
    const cl = req.headers['content-length'];
    const contentLength = cl === undefined ? null : Number(cl);
    const noBody = (contentLength === 0 || contentLength === null) && req.headers['transfer-encoding'] === undefined;
    if (noBody) this.downstreamEnded = true;
    stream.requestHeaders(headers, noBody);
    if (noBody) {
      req.resume();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      if (this.finished || stream.localResponse) return;
      this.bytesReceived += chunk.length;
      const last = contentLength !== null && this.bytesReceived >= contentLength;
      if (last) this.downstreamEnded = true;
      stream.requestBody(chunk, last);
    });
    req.on('end', () => {
      if (this.finished || stream.localResponse) return;
      if (!this.downstreamEnded) {
        this.downstreamEnded = true;
        const trailers = pairsOf(req.rawTrailers);
        if (trailers.length) stream.requestTrailers(trailers);
        else stream.requestBody(EMPTY, true);
      }
      this.schedulePump();
    });
    req.on('aborted', () => {
      this.upstream?.destroy();
      this.finish();
    });
  }

  /** The exchange is over (response sent, or the client went away): the stream completes and the access log gets its line. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const { stats } = this.gw;
    stats.rqActive.dec();
    stats.rqCompleted.inc();
    if (this.res.headersSent) stats.downstreamResponse(this.res.statusCode);
    if (this.upstream && !this.upstreamRes?.complete) this.upstream.destroy();
    this.stream.complete();
    this.gw.onAccessLog?.({
      method: this.req.method ?? '', path: this.req.url ?? '', status: this.res.statusCode, endpoint: this.endpoint, details: this.details,
      durationMs: Number(process.hrtime.bigint() - this.started) / 1e6, wasmUs: this.stream.wasmNumberNs / 1e3,
      worker: this.stream.worker, bytesReceived: this.bytesReceived, bytesSent: this.bytesSent,
    });
  }

  /** Runs deferred work; an unexpected error resets this exchange instead of taking the process down. */
  private later(fn: () => void): void {
    queueMicrotask(() => {
      try {
        fn();
      } catch {
        this.upstream?.destroy();
        this.res.destroy();
      }
    });
  }

  private sendLocal(r: LocalResponse): void {
    const { req, res } = this;
    this.details = r.details;
    if (this.upstream) this.upstream.destroy();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    try {
      res.writeHead(r.status, groupHeaders(r.headers));
      this.bytesSent += r.body.length;
      res.end(Buffer.from(r.body));
    } catch {
      res.destroy();
    }
    if (!this.downstreamEnded) req.resume(); // discard what the client still sends
  }

  /** A reply the gateway itself makes as Envoy's router would: it passes the filter's response hooks. */
  private routerReply(status: number, text: string, why: string): void {
    const stream = this.stream;
    this.details = why;
    const body = enc.encode(text);
    const r = stream.responseHeaders([[':status', String(status)], ['content-length', String(body.length)], ['content-type', 'text/plain']], false);
    if (r === 'local') return this.sendLocal(stream.localResponse!);
    this.responseEndSeen = true;
    stream.responseBody(body, true);
    if (stream.localResponse) return this.sendLocal(stream.localResponse);
    this.writeResponseHeaders();
    this.pumpResponse();
  }

  // ---- request: filter -> upstream ----

  /** Asks the selector where this attempt goes, then dials it. */
  private connect(attempt: number): void {
    const hs = this.stream.requestHeaderList();
    const choice = this.gw.upstream.select(hs, attempt);
    if (!(choice instanceof Promise)) return this.dial(hs, choice, attempt);
    choice.then(
      (dest) => this.later(() => this.dial(hs, dest, attempt)),
      () => this.later(() => this.dial(hs, null, attempt)),
    );
  }

  /** Dials `dest` and sends what the filter released. */
  private dial(hs: HeaderPairs, dest: Destination | null, attempt: number): void {
    if (this.finished || this.stream.localResponse) return;
    if (!dest) return this.routerReply(503, 'no healthy upstream', 'no_healthy_upstream');
    const endpoint = dest.host.includes(':') ? `[${dest.host}]:${dest.port}` : `${dest.host}:${dest.port}`;
    this.endpoint = endpoint;
    const get = (k: string) => hs.find(([hk]) => hk === k)?.[1];
    const headers = groupHeaders(hs);
    headers.host = get(':authority') ?? endpoint;
    let u: http.ClientRequest;
    try {
      u = http.request({ host: dest.host, port: dest.port, method: get(':method') ?? 'GET', path: get(':path') ?? '/', headers, agent: this.gw.agent, setHost: false });
    } catch (e) {
      // Headers node refuses to send (e.g. a filter-set value with a newline): Envoy's codec refuses them too.
      return this.routerReply(503, `upstream request rejected: ${e instanceof Error ? e.message : String(e)}`, 'upstream_request_invalid');
    }
    this.upstream = u;
    this.gw.stats.upstreamRqTotal.inc();
    u.setTimeout(this.gw.timeoutMs, () => this.onUpstreamTimeout(u));
    u.on('error', (e: NodeJS.ErrnoException) => this.onUpstreamError(u, e, attempt));
    u.on('response', (ur) => this.onUpstreamResponse(ur));
    for (const b of this.sentUpstream) u.write(b);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpQueued) return;
    this.pumpQueued = true;
    this.later(() => this.pumpRequest());
  }

  /** Sends the request body the filter released, and ends the upstream request once all of it went. */
  private pumpRequest(): void {
    this.pumpQueued = false;
    const { upstream, stream } = this;
    if (!upstream || upstream.destroyed) return;
    const data = stream.drainRequestData();
    if (data.length) {
      const b = Buffer.from(data);
      if (this.gw.connectRetries > 0) this.sentUpstream.push(b);
      upstream.write(b);
    }
    if (this.downstreamEnded && stream.continued && stream.requestBufferedBytes === 0 && !this.upstreamEnded) {
      this.upstreamEnded = true;
      upstream.end();
    }
  }

  private onUpstreamTimeout(u: http.ClientRequest): void {
    if (!this.upstreamRes) {
      this.gw.stats.upstreamTimeout.inc();
      u.destroy();
      this.routerReply(504, 'upstream request timeout', 'upstream_response_timeout');
    } else {
      this.res.destroy();
      u.destroy();
    }
  }

  /** A connection failure or a reset: retried before any response (Envoy retry_on connect-failure,reset), else the router's 503. */
  private onUpstreamError(u: http.ClientRequest, e: NodeJS.ErrnoException, attempt: number): void {
    if (this.finished || this.upstream !== u) return;
    if (this.upstreamRes) {
      this.res.destroy(); // reset after the response started: nothing else to do (Envoy resets the downstream too)
      return;
    }
    const { stats } = this.gw;
    if (e.syscall === 'connect') stats.upstreamConnectFail.inc();
    if (attempt < this.gw.connectRetries) {
      stats.upstreamRetry.inc();
      this.upstreamEnded = false;
      return this.connect(attempt + 1);
    }
    this.routerReply(503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${e.code ?? e.message}`, 'upstream_reset_before_response_started{connection_failure}');
  }

  // ---- response: upstream -> filter -> client ----

  private onUpstreamResponse(ur: http.IncomingMessage): void {
    const stream = this.stream;
    this.upstreamRes = ur;
    this.gw.stats.upstreamResponse(ur.statusCode ?? 502);
    const headers: HeaderPairs = [[':status', String(ur.statusCode ?? 502)], ...pairsOf(ur.rawHeaders)];
    const noBody = ur.statusCode === 204 || ur.statusCode === 304 || this.req.method === 'HEAD' || ur.headers['content-length'] === '0';
    const r = stream.responseHeaders(headers, noBody);
    if (r === 'local' || stream.localResponse) return this.sendLocal(stream.localResponse!);
    if (noBody) this.responseEndSeen = true;
    this.writeResponseHeaders();
    this.pumpResponse();
    ur.on('data', (chunk: Buffer) => {
      if (stream.localResponse) return;
      stream.responseBody(chunk, false);
      if (stream.localResponse) return this.sendLocal(stream.localResponse);
      this.writeResponseHeaders();
      this.pumpResponse();
    });
    ur.on('end', () => {
      if (stream.localResponse || noBody) {
        this.pumpResponse();
        return;
      }
      this.responseEndSeen = true;
      const trailers = pairsOf(ur.rawTrailers);
      if (trailers.length) {
        this.pendingTrailers = trailers;
        stream.responseBody(EMPTY, false);
        stream.responseTrailers(trailers);
      } else {
        stream.responseBody(EMPTY, true);
      }
      if (stream.localResponse) return this.sendLocal(stream.localResponse);
      this.writeResponseHeaders();
      this.pumpResponse();
    });
    ur.on('aborted', () => this.res.destroy());
  }

  /** Sends the response headers once the filter released them (as it modified them). */
  private writeResponseHeaders(): void {
    const { res, stream } = this;
    if (this.responseStarted || res.headersSent) return;
    if (!stream.responseContinued) return;
    this.responseStarted = true;
    const hs = stream.responseHeaderList();
    const status = Number(hs.find(([k]) => k === ':status')?.[1] ?? 502);
    try {
      res.writeHead(Number.isInteger(status) && status >= 100 && status <= 999 ? status : 502, groupHeaders(hs)); // sent by flushResponse
    } catch {
      res.destroy();
    }
  }

  /**
   * Sends what the filter released of the response once the current turn's events are handled (a
   * microtask), so a head, body bytes and the end that arrived together leave in one socket write,
   * not one each. A head with no body yet still leaves at once (an SSE stream before its first token),
   * as Envoy forwards it.
   */
  private pumpResponse(): void {
    if (this.responseFlushQueued) return;
    this.responseFlushQueued = true;
    queueMicrotask(() => {
      this.responseFlushQueued = false;
      this.flushResponse();
    });
  }

  /** Writes the released response body (the head with it if still pending), and ends the response (trailers included) at its end. */
  private flushResponse(): void {
    const { res, stream } = this;
    if (!this.responseStarted || res.destroyed) return;
    try {
      const data = stream.drainResponseData();
      const end = this.responseEndSeen && stream.responseContinued && !res.writableEnded;
      if (!data.length && !end && this.headWritten) return;
      this.headWritten = true;
      res.cork(); // end() uncorks fully; otherwise the uncork below sends head and body in one write
      try {
        if (data.length) {
          this.bytesSent += data.length;
          res.write(Buffer.from(data));
        }
        if (end) {
          const t = stream.responseTrailerList() ?? this.pendingTrailers;
          if (t && t.length) res.addTrailers(groupHeaders(t));
          res.end();
        } else if (!data.length) {
          res.flushHeaders();
        }
      } finally {
        if (!res.writableEnded) res.uncork();
      }
    } catch {
      res.destroy(); // e.g. a trailer node will not send; the client sees a reset, the process goes on
    }
  }
}
