// One client request through the embedded gateway, as Envoy's HTTP connection manager and
// router carry it: the request runs through the filter's stream, goes to the upstream the
// selector names once the filter releases it (retried on a connect failure), and the response
// comes back through the filter's response hooks, flushed as it arrives (SSE chunks included).
// The gateway's own replies (no healthy upstream, connect failure, timeout) are Envoy's router
// replies: they pass the response hooks too. Upstream requests go through the gateway's own
// HTTP/1.1 client (upstreamClient.ts: a keep-alive pool per replica) with callbacks, not
// node:http's streams: the proxy hop is the cost users compare routers on.
import type http from 'node:http';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { HeaderPairs, ReadonlyHeaderPairs } from './abi.js';
import { firstValue } from './headerMap.js';
import { NO_HEALTHY_UPSTREAM, UPSTREAM_TIMEOUT, connectFailure, type RouterReply } from './routerReplies.js';
import type { ProxyWasmHost } from './proxyWasmHost.js';
import type { LocalResponse, PropertyValue, Stream, StreamListener } from './stream.js';
import type { GatewayStats } from './gatewayStats.js';
import type { Destination, UpstreamSelector } from './upstreamSelector.js';
import { UPSTREAM_ERRORS, type UpstreamCall, type UpstreamClient, type UpstreamError, type UpstreamResponseHandler } from './upstreamClient.js';

/** Headers that belong to one connection, not to the request (Envoy strips them too). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);
/** Answered by the gateway itself (node's server sends the 100 Continue), as Envoy does by default (proxy_100_continue off). */
const NOT_FORWARDED_UPSTREAM = 'expect';

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
  /** Keep-alive connections to the replicas (one pool per ip:port). */
  client: UpstreamClient;
  upstream: UpstreamSelector;
  stats: GatewayStats;
  timeoutMs: number;
  connectRetries: number;
  onAccessLog?: (e: AccessLogEntry) => void;
}

/** A header the gateway passes on: neither a pseudo-header nor a hop-by-hop one. */
function passedOn(name: string): boolean {
  return !name.startsWith(':') && !HOP_BY_HOP.has(name);
}

/** Node's header object from pairs: pseudo-headers and hop-by-hop headers left out, repeats as arrays. */
export function groupHeaders(pairs: ReadonlyHeaderPairs): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    if (!passedOn(k)) continue;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

/**
 * A response head as node's writeHead takes it without building an object (a repeated header is its
 * own line, as groupHeaders' arrays give): pseudo-headers and hop-by-hop headers left out.
 */
function forwardedPairs(pairs: ReadonlyHeaderPairs): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (let i = 0; i < pairs.length; i++) if (passedOn(pairs[i][0])) out.push(pairs[i]);
  return out;
}

function pairsOf(raw: string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i].toLowerCase(), raw[i + 1]]);
  return out;
}

/**
 * The request headers for the upstream client (flat name, value list): pseudo-headers and hop-by-hop headers left
 * out, host from :authority. A body sent whole gets its content-length from its bytes (the filter
 * may have changed them), so the client's is left out then.
 */
export function upstreamHeaders(pairs: ReadonlyHeaderPairs, fallbackHost: string, wholeBody: boolean): string[] {
  const out: string[] = [];
  let host = fallbackHost;
  for (let i = 0; i < pairs.length; i++) {
    const k = pairs[i][0], v = pairs[i][1];
    if (k === ':authority') {
      if (v) host = v;
      continue;
    }
    if (!passedOn(k) || k === NOT_FORWARDED_UPSTREAM || (wholeBody && k === 'content-length')) continue;
    out.push(k, v);
  }
  out.push('host', host);
  return out;
}

/**
 * One attempt's request to a replica, as the upstream client's handler of it: hands what comes back
 * to the exchange, which drops it once it gave up on this attempt; keeps the call to abort it.
 */
class UpstreamAttempt implements UpstreamResponseHandler {
  call: UpstreamCall | null = null;
  cancelled = false;
  /** The response came to its end. */
  complete = false;
  constructor(private readonly exchange: GatewayExchange, readonly attempt: number) {}
  onError(e: UpstreamError | NodeJS.ErrnoException): void {
    this.exchange.onAttemptError(this, e);
  }
  onHeaders(status: number, raw: string[]): void {
    this.exchange.onAttemptHeaders(this, status, raw);
  }
  onData(chunk: Buffer): void {
    this.exchange.onAttemptData(this, chunk);
  }
  onComplete(trailers: string[]): void {
    this.complete = true;
    this.exchange.onAttemptComplete(this, trailers);
  }
  destroy(): void {
    if (this.cancelled || this.complete) return;
    this.cancelled = true;
    this.call?.abort();
  }
}

const isConnectFailure = (e: UpstreamError | NodeJS.ErrnoException) => ('syscall' in e && e.syscall === 'connect') || e.code === UPSTREAM_ERRORS.connectTimeout.code;

function socketAddress(address: string | undefined, port: number | undefined): string {
  const a = address ?? '127.0.0.1';
  return `${a.includes(':') ? `[${a}]` : a}:${port ?? 0}`;
}

/**
 * The connection's Envoy attributes, read from the socket only when the filter asks for one (most
 * requests never do): getters on the prototype, so a request makes one small object.
 */
class ConnectionProperties {
  readonly #socket: net.Socket;
  constructor(socket: net.Socket) {
    this.#socket = socket;
  }
  get 'source.address'(): string { return socketAddress(this.#socket.remoteAddress, this.#socket.remotePort); }
  get 'source.port'(): bigint { return BigInt(this.#socket.remotePort ?? 0); }
  get 'destination.address'(): string { return socketAddress(this.#socket.localAddress, this.#socket.localPort); }
  get 'destination.port'(): bigint { return BigInt(this.#socket.localPort ?? 0); }
}

/** A Buffer over the same bytes (node's write takes one without copying). */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** One request through the gateway; the filter's stream reports to it as its listener. */
export class GatewayExchange implements StreamListener {
  private readonly started = performance.now();
  private stream!: Stream;
  private upstream: UpstreamAttempt | null = null;
  /** The attempt's call, when its request body was not all there when it started: the rest is written to it as the filter releases it. */
  private upstreamBody: UpstreamCall | null = null;
  /** A response (its head) came from the replica. */
  private upstreamResponded = false;
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
  /** Request bytes released upstream, kept to replay on a connect retry. */
  private readonly sentUpstream: Buffer[] = [];

  constructor(private readonly gw: ExchangeSettings, private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse) {}

  /** Opens the filter's stream and feeds it the request as it arrives. */
  start(): void {
    const { req, res, gw } = this;
    gw.stats.rqTotal.inc();
    gw.stats.rqActive.inc();
    try {
      this.stream = gw.host.newStream({ properties: new ConnectionProperties(req.socket) as unknown as Record<string, PropertyValue>, listener: this });
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

  // ---- the stream's events (StreamListener): acted on once the filter's hook has returned ----

  requestReleased(): void {
    this.later(() => {
      if (!this.finished && !this.upstream && !this.stream.localResponse) this.connect(0);
    });
  }
  requestData(): void {
    this.schedulePump();
  }
  localResponse(r: LocalResponse): void {
    this.later(() => this.sendLocal(r));
  }
  reset(): void {
    this.later(() => {
      this.details = 'wasm_close_stream';
      this.upstream?.destroy();
      this.res.destroy();
    });
  }
  responseReleased(): void {
    this.later(() => {
      this.writeResponseHeaders();
      this.pumpResponse();
    });
  }
  responseData(): void {
    this.pumpResponse();
  }

  private feedRequest(): void {
    const { req, stream } = this;
    const headers: HeaderPairs = [
      [':method', req.method ?? 'GET'],
      [':path', req.url ?? '/'],
      [':authority', req.headers.host ?? ''],
      [':scheme', 'http'],
    ];
    const raw = req.rawHeaders;
    let hasRequestId = false;
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i].toLowerCase();
      if (HOP_BY_HOP.has(k)) continue;
      if (k === 'x-request-id') hasRequestId = true;
      headers.push([k, raw[i + 1]]);
    }
    if (!hasRequestId) headers.push(['x-request-id', randomUUID()]);
    const cl = req.headers['content-length'];
    const contentLength = cl === undefined ? null : Number(cl);
    const noBody = (contentLength === 0 || contentLength === null) && req.headers['transfer-encoding'] === undefined;
    if (noBody) this.downstreamEnded = true;
    stream.requestHeaders(headers, noBody, true);
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
    this.upstream?.destroy();
    this.stream.complete();
    this.gw.onAccessLog?.({
      method: this.req.method ?? '', path: this.req.url ?? '', status: this.res.statusCode, endpoint: this.endpoint, details: this.details,
      durationMs: performance.now() - this.started, wasmUs: this.stream.wasmNumberNs / 1e3,
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
  private routerReply(reply: RouterReply): void {
    const stream = this.stream;
    this.details = reply.details;
    const body = enc.encode(reply.text);
    const r = stream.responseHeaders([[':status', String(reply.status)], ['content-length', String(body.length)], ['content-type', 'text/plain']], false);
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
    const view = this.stream.requestHeaderView();
    const choice = this.gw.upstream.select(view, attempt);
    if (!(choice instanceof Promise)) return this.dial(view, choice, attempt);
    // The request goes with its headers as they are now, whenever the selector answers.
    const hs = this.stream.requestHeaderList();
    choice.then(
      (dest) => this.later(() => this.dial(hs, dest, attempt)),
      () => this.later(() => this.dial(hs, null, attempt)),
    );
  }

  /** Sends the request, with what the filter released of its body, to `dest`. */
  private dial(hs: ReadonlyHeaderPairs, dest: Destination | null, attempt: number): void {
    if (this.finished || this.stream.localResponse) return;
    if (!dest) return this.routerReply(NO_HEALTHY_UPSTREAM);
    const endpoint = dest.host.includes(':') ? `[${dest.host}]:${dest.port}` : `${dest.host}:${dest.port}`;
    this.endpoint = endpoint;
    const stream = this.stream;
    const released = stream.drainRequestData();
    if (released.length) this.sentUpstream.push(asBuffer(released));
    // Most requests are whole by the time the filter releases them (it reads the body to route):
    // they go as one buffer; the others stream what the filter releases next (pumpRequest).
    const whole = this.requestComplete();
    this.upstreamEnded = whole;
    this.upstreamBody = null;
    const body = !whole ? 'stream' : this.sentUpstream.length === 0 ? null : this.sentUpstream.length === 1 ? this.sentUpstream[0] : Buffer.concat(this.sentUpstream);
    const u = new UpstreamAttempt(this, attempt);
    this.upstream = u;
    this.gw.stats.upstreamRqTotal.inc();
    const call = this.gw.client.request(
      { host: dest.host, port: dest.port, method: firstValue(hs, ':method') ?? 'GET', path: firstValue(hs, ':path') ?? '/', headers: upstreamHeaders(hs, endpoint, whole), body, timeoutMs: this.gw.timeoutMs },
      u,
    );
    if (!call || u.cancelled) return;
    u.call = call;
    if (!whole) {
      this.upstreamBody = call;
      for (const chunk of this.sentUpstream) call.write(chunk);
    }
  }

  /** The client's request is all here and the filter released all of it. */
  private requestComplete(): boolean {
    return this.downstreamEnded && this.stream.continued && this.stream.requestBufferedBytes === 0;
  }

  private schedulePump(): void {
    // Only an attempt whose body is streaming takes more of it: a body sent whole, or one not dialled
    // yet (dial takes what was released until then), has nothing to pump.
    if (this.pumpQueued || this.upstreamBody === null) return;
    this.pumpQueued = true;
    this.later(() => this.pumpRequest());
  }

  /** Streams the request body the filter released to an attempt that started before all of it was there, and ends it once all of it went. */
  private pumpRequest(): void {
    this.pumpQueued = false;
    const { upstream, upstreamBody, stream } = this;
    if (!upstream || upstream.cancelled || !upstreamBody || this.upstreamEnded) return;
    const data = stream.drainRequestData();
    if (data.length) {
      const b = asBuffer(data);
      this.sentUpstream.push(b);
      upstreamBody.write(b);
    }
    if (this.requestComplete()) {
      this.upstreamEnded = true;
      upstreamBody.end();
    }
  }

  /**
   * A connection failure or a reset: retried before any response (Envoy retry_on connect-failure,reset),
   * else the router's 503; no response in time: the router's 504; a failure once the response started
   * resets the client's stream (Envoy resets the downstream too).
   */
  onAttemptError(u: UpstreamAttempt, e: UpstreamError | NodeJS.ErrnoException): void {
    if (this.finished || this.upstream !== u || u.cancelled) return;
    const attempt = u.attempt;
    u.cancelled = true;
    this.upstreamBody = null;
    if (this.upstreamResponded) {
      this.res.destroy();
      return;
    }
    const { stats } = this.gw;
    if (e.code === UPSTREAM_ERRORS.headersTimeout.code) {
      stats.upstreamTimeout.inc();
      return this.routerReply(UPSTREAM_TIMEOUT);
    }
    if (e.code === UPSTREAM_ERRORS.invalidRequest.code) return this.routerReply({ status: 503, text: `upstream request rejected: ${e.message}`, details: 'upstream_request_invalid' });
    if (isConnectFailure(e)) stats.upstreamConnectFail.inc();
    if (attempt < this.gw.connectRetries) {
      stats.upstreamRetry.inc();
      return this.connect(attempt + 1);
    }
    this.routerReply(connectFailure(e));
  }

  // ---- response: upstream -> filter -> client ----

  private responseHasNoBody = false;

  /** The replica's response head (dropped when this exchange gave up on the attempt). */
  onAttemptHeaders(u: UpstreamAttempt, status: number, raw: string[]): void {
    if (this.upstream !== u || u.cancelled) return;
    const stream = this.stream;
    this.upstreamResponded = true;
    this.gw.stats.upstreamResponse(status);
    const headers: HeaderPairs = [[':status', String(status)]];
    let noBody = status === 204 || status === 304 || this.req.method === 'HEAD';
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = raw[i].toLowerCase(), v = raw[i + 1];
      if (k === 'content-length' && v.trim() === '0') noBody = true;
      headers.push([k, v]);
    }
    this.responseHasNoBody = noBody;
    const r = stream.responseHeaders(headers, noBody, true);
    if (r === 'local' || stream.localResponse) return this.sendLocal(stream.localResponse!);
    if (noBody) this.responseEndSeen = true;
    this.writeResponseHeaders();
    this.pumpResponse();
  }

  onAttemptData(u: UpstreamAttempt, chunk: Buffer): void {
    if (this.upstream !== u || u.cancelled) return;
    const stream = this.stream;
    if (stream.localResponse) return;
    stream.responseBody(chunk, false);
    if (stream.localResponse) return this.sendLocal(stream.localResponse);
    this.writeResponseHeaders();
    this.pumpResponse();
  }

  onAttemptComplete(u: UpstreamAttempt, rawTrailers: string[]): void {
    if (this.upstream !== u || u.cancelled) return;
    const stream = this.stream;
    const trailers = pairsOf(rawTrailers);
    if (stream.localResponse || this.responseHasNoBody) {
      this.pumpResponse();
      return;
    }
    this.responseEndSeen = true;
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
  }

  /** Sends the response headers once the filter released them (as it modified them). */
  private writeResponseHeaders(): void {
    const { res, stream } = this;
    if (this.responseStarted || res.headersSent) return;
    if (!stream.responseContinued) return;
    this.responseStarted = true;
    const hs = stream.responseHeaderView();
    const status = Number(firstValue(hs, ':status') ?? 502);
    try {
      // writeHead reads the pairs into the head it builds (sent by flushResponse) and keeps none of them.
      res.writeHead(Number.isInteger(status) && status >= 100 && status <= 999 ? status : 502, forwardedPairs(hs) as HeaderPairs);
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
      this.bytesSent += data.length;
      if (end) {
        const t = stream.responseTrailerList() ?? this.pendingTrailers;
        if (t && t.length) res.addTrailers(groupHeaders(t));
        // end() corks the socket itself: head, body and end leave in one write.
        if (data.length) res.end(asBuffer(data));
        else res.end();
        return;
      }
      res.cork(); // the uncork below sends head and body in one write
      try {
        if (data.length) res.write(asBuffer(data));
        else res.flushHeaders();
      } finally {
        res.uncork();
      }
    } catch {
      res.destroy(); // e.g. a trailer node will not send; the client sees a reset, the process goes on
    }
  }
}
