// The embedded gateway: a node:http server that runs every request through the
// proxy-wasm filter as Envoy's HTTP connection manager would, then forwards it
// with ORIGINAL_DST semantics to the ip:port the filter put in
// x-gateway-destination-endpoint, and streams the response back through the
// filter's response hooks (SSE chunks are flushed as they come).
import http from 'node:http';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { HeaderPairs } from './abi.js';
import type { ProxyWasmHost } from './host.js';
import type { LocalResponse, Stream } from './stream.js';

/** The header ORIGINAL_DST reads (cluster original_dst_lb_config.http_header_name). */
export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
/**
 * The filter's runner-up for this request (prefix-router's x-prefix-router-fallback-endpoint):
 * a connection that fails is retried once there, as an Envoy retry policy would retry on the
 * next host (ORIGINAL_DST itself only dials the first destination).
 */
export const FALLBACK_HEADER = 'x-prefix-router-fallback-endpoint';
/** Envoy's retry_policy {retry_on: connect-failure,refused-stream,reset, num_retries: 1} (envoy/envoy.yaml). */
export const DEFAULT_CONNECT_RETRIES = 1;
/** Envoy's default route timeout. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 15_000;
/** Keep-alive sockets per upstream replica; vLLM serves many concurrent streams per replica. */
const MAX_SOCKETS_PER_UPSTREAM = 256;
/** Headers that belong to one connection, not to the request (Envoy strips them too). */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

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

export interface GatewayOptions {
  host: ProxyWasmHost;
  listen?: { host?: string; port?: number };
  upstreamTimeoutMs?: number;
  /**
   * Retries after a connection failure or a reset before any response (Envoy retry_on:
   * connect-failure,refused-stream,reset); default 1. A retry goes to the endpoint the filter
   * named in x-prefix-router-fallback-endpoint when there is one, else to the same endpoint.
   */
  connectRetries?: number;
  onAccessLog?: (e: AccessLogEntry) => void;
}

export interface Gateway {
  url: string;
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/** Parses an ORIGINAL_DST destination: a literal IPv4 "a.b.c.d:port" or IPv6 "[addr]:port"; hostnames are not resolved. */
export function parseDestination(value: string | undefined): { host: string; port: number } | null {
  if (value === undefined) return null;
  const v = value.trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]]+):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535 || net.isIP(m[1]) === 0) return null;
  return { host: m[1], port };
}

export function groupHeaders(pairs: HeaderPairs): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of pairs) {
    if (k.startsWith(':') || HOP_BY_HOP.has(k)) continue;
    const cur = out[k];
    out[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
  }
  return out;
}

const enc = new TextEncoder();

/** The gateway as a request handler (testable with any http.Server). */
export function createGatewayHandler(opts: GatewayOptions): { handle: http.RequestListener; close(): void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_UPSTREAM });
  const timeoutMs = opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  const connectRetries = opts.connectRetries ?? DEFAULT_CONNECT_RETRIES;
  let connections = 0;

  const handle: http.RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    let stream: Stream;
    let upstream: http.ClientRequest | null = null;
    let upstreamRes: http.IncomingMessage | null = null;
    let endpoint: string | null = null;
    let details = 'via_upstream';
    let downstreamEnded = false;
    let upstreamEnded = false;
    let responseStarted = false;
    let finished = false;
    let bytesReceived = 0;
    let bytesSent = 0;
    let pumpQueued = false;
    let responseEndSeen = false;
    let pendingTrailers: HeaderPairs | null = null;
    const sentUpstream: Buffer[] = [];

    const finish = () => {
      if (finished) return;
      finished = true;
      if (upstream && !upstreamRes?.complete) upstream.destroy();
      stream.complete();
      opts.onAccessLog?.({
        method: req.method ?? '', path: req.url ?? '', status: res.statusCode, endpoint, details,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6, wasmUs: stream.wasmNumberNs / 1e3,
        worker: stream.worker, bytesReceived, bytesSent,
      });
    };

    const sendLocal = (r: LocalResponse) => {
      details = r.details;
      if (upstream) upstream.destroy();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      try {
        res.writeHead(r.status, groupHeaders(r.headers));
        bytesSent += r.body.length;
        res.end(Buffer.from(r.body));
      } catch {
        res.destroy();
      }
      if (!downstreamEnded) req.resume(); // discard what the client still sends
    };

    /** A reply the gateway itself makes as Envoy's router would: it passes the filter's response hooks. */
    const routerReply = (status: number, text: string, why: string) => {
      details = why;
      const body = enc.encode(text);
      const r = stream.responseHeaders([[':status', String(status)], ['content-length', String(body.length)], ['content-type', 'text/plain']], false);
      if (r === 'local') return sendLocal(stream.localResponse!);
      responseEndSeen = true;
      stream.responseBody(body, true);
      if (stream.localResponse) return sendLocal(stream.localResponse);
      writeResponseHeaders();
      pumpResponse();
    };

    const writeResponseHeaders = () => {
      if (responseStarted || res.headersSent) return;
      if (!stream.responseContinued) return;
      responseStarted = true;
      const hs = stream.responseHeaderList();
      const status = Number(hs.find(([k]) => k === ':status')?.[1] ?? 502);
      try {
        res.writeHead(Number.isInteger(status) && status >= 100 && status <= 999 ? status : 502, groupHeaders(hs));
        res.flushHeaders();
      } catch {
        res.destroy();
      }
    };

    const pumpResponse = () => {
      try {
        pumpResponseUnguarded();
      } catch {
        res.destroy(); // e.g. a trailer node will not send; the client sees a reset, the process goes on
      }
    };
    const pumpResponseUnguarded = () => {
      if (!responseStarted) return;
      const data = stream.drainResponseData();
      if (data.length) {
        bytesSent += data.length;
        res.write(Buffer.from(data));
      }
      if (responseEndSeen && stream.responseContinued && !res.writableEnded) {
        const t = stream.responseTrailerList() ?? pendingTrailers;
        if (t && t.length) res.addTrailers(groupHeaders(t));
        res.end();
      }
    };

    const pumpRequest = () => {
      pumpQueued = false;
      if (!upstream || upstream.destroyed) return;
      const data = stream.drainRequestData();
      if (data.length) {
        const b = Buffer.from(data);
        if (connectRetries > 0) sentUpstream.push(b); // kept to replay on a connect retry
        upstream.write(b);
      }
      if (downstreamEnded && stream.continued && stream.requestBufferedBytes === 0 && !upstreamEnded) {
        upstreamEnded = true;
        upstream.end();
      }
    };
    /** Runs deferred work; an unexpected error resets this exchange instead of taking the process down. */
    const later = (fn: () => void) => queueMicrotask(() => {
      try {
        fn();
      } catch {
        upstream?.destroy();
        res.destroy();
      }
    });
    const schedulePump = () => {
      if (pumpQueued) return;
      pumpQueued = true;
      later(pumpRequest);
    };

    const connect = (attempt: number) => {
      const named = stream.requestHeaderList();
      const primary = named.find(([k]) => k === DESTINATION_HEADER)?.[1];
      const fallback = attempt > 0 ? parseDestination(named.find(([k]) => k === FALLBACK_HEADER)?.[1]) : null;
      const dest = fallback ?? parseDestination(primary);
      if (!dest) return routerReply(503, 'no healthy upstream', 'no_healthy_upstream');
      endpoint = dest.host.includes(':') ? `[${dest.host}]:${dest.port}` : `${dest.host}:${dest.port}`;
      const hs = stream.requestHeaderList();
      const get = (k: string) => hs.find(([hk]) => hk === k)?.[1];
      const headers = groupHeaders(hs);
      headers.host = get(':authority') ?? endpoint;
      let u: http.ClientRequest;
      try {
        u = http.request({ host: dest.host, port: dest.port, method: get(':method') ?? 'GET', path: get(':path') ?? '/', headers, agent, setHost: false });
      } catch (e) {
        // Headers node refuses to send (e.g. a filter-set value with a newline): Envoy's codec refuses them too.
        return routerReply(503, `upstream request rejected: ${e instanceof Error ? e.message : String(e)}`, 'upstream_request_invalid');
      }
      upstream = u;
      u.setTimeout(timeoutMs, () => {
        if (!upstreamRes) {
          u.destroy();
          routerReply(504, 'upstream request timeout', 'upstream_response_timeout');
        } else {
          res.destroy();
          u.destroy();
        }
      });
      u.on('error', (e: NodeJS.ErrnoException) => {
        if (finished || upstream !== u) return;
        if (upstreamRes) {
          res.destroy(); // reset after the response started: nothing else to do (Envoy resets the downstream too)
          return;
        }
        if (attempt < connectRetries) {
          upstreamEnded = false;
          return connect(attempt + 1);
        }
        routerReply(503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${e.code ?? e.message}`, 'upstream_reset_before_response_started{connection_failure}');
      });
      u.on('response', (ur) => {
        upstreamRes = ur;
        const hs2: HeaderPairs = [[':status', String(ur.statusCode ?? 502)]];
        for (let i = 0; i < ur.rawHeaders.length; i += 2) hs2.push([ur.rawHeaders[i].toLowerCase(), ur.rawHeaders[i + 1]]);
        const noBody = ur.statusCode === 204 || ur.statusCode === 304 || req.method === 'HEAD' || ur.headers['content-length'] === '0';
        const r = stream.responseHeaders(hs2, noBody);
        if (r === 'local' || stream.localResponse) return sendLocal(stream.localResponse!);
        if (noBody) responseEndSeen = true;
        writeResponseHeaders();
        pumpResponse();
        ur.on('data', (chunk: Buffer) => {
          if (stream.localResponse) return;
          stream.responseBody(chunk, false);
          if (stream.localResponse) return sendLocal(stream.localResponse);
          writeResponseHeaders();
          pumpResponse();
        });
        ur.on('end', () => {
          if (stream.localResponse || noBody) {
            pumpResponse();
            return;
          }
          responseEndSeen = true;
          const trailers: HeaderPairs = [];
          for (let i = 0; i < ur.rawTrailers.length; i += 2) trailers.push([ur.rawTrailers[i].toLowerCase(), ur.rawTrailers[i + 1]]);
          if (trailers.length) {
            pendingTrailers = trailers;
            stream.responseBody(new Uint8Array(0), false);
            stream.responseTrailers(trailers);
          } else {
            stream.responseBody(new Uint8Array(0), true);
          }
          if (stream.localResponse) return sendLocal(stream.localResponse);
          writeResponseHeaders();
          pumpResponse();
        });
        ur.on('aborted', () => res.destroy());
      });
      for (const b of sentUpstream) u.write(b);
      schedulePump();
    };

    try {
      const remote = req.socket.remoteAddress ?? '127.0.0.1';
      const local = req.socket.localAddress ?? '127.0.0.1';
      connections++;
      stream = opts.host.newStream({
        properties: {
          'source.address': `${remote.includes(':') ? `[${remote}]` : remote}:${req.socket.remotePort ?? 0}`,
          'source.port': BigInt(req.socket.remotePort ?? 0),
          'destination.address': `${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort ?? 0}`,
          'destination.port': BigInt(req.socket.localPort ?? 0),
        },
        listener: {
          requestReleased: () => later(() => {
            if (!finished && !upstream && !stream.localResponse) connect(0);
          }),
          requestData: schedulePump,
          localResponse: (r) => later(() => sendLocal(r)),
          reset: () => later(() => {
            details = 'wasm_close_stream';
            upstream?.destroy();
            res.destroy();
          }),
          responseReleased: () => later(() => {
            writeResponseHeaders();
            pumpResponse();
          }),
          responseData: () => later(pumpResponse),
        },
      });
    } catch (e) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`gateway unavailable: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }

    res.on('close', finish);

    const headers: HeaderPairs = [
      [':method', req.method ?? 'GET'],
      [':path', req.url ?? '/'],
      [':authority', req.headers.host ?? ''],
      [':scheme', 'http'],
    ];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase();
      if (HOP_BY_HOP.has(k)) continue;
      headers.push([k, req.rawHeaders[i + 1]]);
    }
    if (!headers.some(([k]) => k === 'x-request-id')) headers.push(['x-request-id', randomUUID()]);
    const cl = req.headers['content-length'];
    const contentLength = cl === undefined ? null : Number(cl);
    const noBody = (contentLength === 0 || contentLength === null) && req.headers['transfer-encoding'] === undefined;
    if (noBody) downstreamEnded = true;
    stream.requestHeaders(headers, noBody);
    if (noBody) {
      req.resume();
      return;
    }
    req.on('data', (chunk: Buffer) => {
      if (finished || stream.localResponse) return;
      bytesReceived += chunk.length;
      const last = contentLength !== null && bytesReceived >= contentLength;
      if (last) downstreamEnded = true;
      stream.requestBody(chunk, last);
    });
    req.on('end', () => {
      if (finished || stream.localResponse) return;
      if (!downstreamEnded) {
        downstreamEnded = true;
        const trailers: HeaderPairs = [];
        for (let i = 0; i < req.rawTrailers.length; i += 2) trailers.push([req.rawTrailers[i].toLowerCase(), req.rawTrailers[i + 1]]);
        if (trailers.length) stream.requestTrailers(trailers);
        else stream.requestBody(new Uint8Array(0), true);
      }
      schedulePump();
    });
    req.on('aborted', () => {
      upstream?.destroy();
      finish();
    });
  };

  return {
    handle,
    close: () => {
      agent.destroy();
      void connections;
    },
  };
}

/** Starts the gateway on a socket. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  return listenHandler(createGatewayHandler(opts), opts.listen);
}

/** Serves a gateway request handler (this one's, or the Endpoint Picker mode's) on a socket. */
export async function listenHandler({ handle, close }: { handle: http.RequestListener; close(): void }, listen?: { host?: string; port?: number }): Promise<Gateway> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handle);
  // A bad request line or header from a client gets a 400 without touching the filter.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen?.port ?? 0, listen?.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${hostPart}:${addr.port}`,
    port: addr.port,
    server,
    close: async () => {
      close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
