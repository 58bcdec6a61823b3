// proxy_http_call over node:http, answering as Envoy's async client does:
// a timeout is a 504 response, a connection failure a 503 response (Envoy's
// router turns both into local replies the caller receives as responses);
// only a reset after the response started is a failure (no headers).
import http from 'node:http';
import type { HeaderPairs } from './abi.js';

export interface HttpCallRequest {
  cluster: string;
  headers: HeaderPairs;
  body: Uint8Array;
  trailers: HeaderPairs;
  timeoutMs: number;
}

export interface HttpCallResponse {
  headers: HeaderPairs; // :status first
  body: Uint8Array;
  trailers: HeaderPairs;
}

const enc = new TextEncoder();
/** Connection-level headers Envoy's codec does not hand on as part of a response. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function localReply(status: number, text: string): HttpCallResponse {
  const body = enc.encode(text);
  return { headers: [[':status', String(status)], ['content-length', String(body.length)], ['content-type', 'text/plain']], body, trailers: [] };
}

export class HttpCaller {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly inflight = new Set<http.ClientRequest>();
  private closed = false;

  start(baseUrl: string, req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void): { cancel(): void } {
    const base = new URL(baseUrl);
    const get = (k: string) => req.headers.find(([hk]) => hk === k)?.[1] ?? '';
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of req.headers) {
      if (k.startsWith(':')) continue;
      const cur = headers[k];
      headers[k] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    }
    headers.host = get(':authority');
    if (req.body.length > 0) headers['content-length'] = String(req.body.length);
    let done = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (r: HttpCallResponse | 'reset') => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      this.inflight.delete(cr);
      if (!this.closed) deliver(r);
    };
    const cr = http.request({
      host: base.hostname,
      port: base.port || 80,
      method: get(':method'),
      path: get(':path'),
      headers,
      agent: this.agent,
      setHost: false,
    });
    this.inflight.add(cr);
    let responseStarted = false;
    cr.on('response', (res) => {
      responseStarted = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const hs: HeaderPairs = [[':status', String(res.statusCode ?? 0)]];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const k = res.rawHeaders[i].toLowerCase();
          if (!CONNECTION_HEADERS.has(k)) hs.push([k, res.rawHeaders[i + 1]]);
        }
        const ts: HeaderPairs = [];
        for (let i = 0; i < res.rawTrailers.length; i += 2) ts.push([res.rawTrailers[i].toLowerCase(), res.rawTrailers[i + 1]]);
        finish({ headers: hs, body: new Uint8Array(Buffer.concat(chunks)), trailers: ts });
      });
      res.on('aborted', () => finish('reset'));
      res.on('error', () => finish('reset'));
    });
    cr.on('error', (e: NodeJS.ErrnoException) => {
      if (responseStarted) return finish('reset');
      finish(localReply(503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${e.code ?? e.message}`));
    });
    if (req.timeoutMs > 0) {
      timer = setTimeout(() => {
        finish(localReply(504, 'upstream request timeout'));
        cr.destroy();
      }, req.timeoutMs);
    }
    cr.end(req.body.length ? Buffer.from(req.body) : undefined);
    return {
      cancel: () => {
        done = true;
        if (timer) clearTimeout(timer);
        this.inflight.delete(cr);
        cr.destroy();
      },
    };
  }

  close(): void {
    this.closed = true;
    for (const r of this.inflight) r.destroy();
    this.inflight.clear();
    this.agent.destroy();
  }
}
