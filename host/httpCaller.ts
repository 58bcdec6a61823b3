// proxy_http_call over undici's dispatcher (a keep-alive pool per cluster), answering as Envoy's
// async client does: a timeout is a 504 response, a connection failure a 503 response (Envoy's
// router turns both into local replies the caller receives as responses); only a reset after the
// response started is a failure (no headers). Callbacks rather than node:http's request and
// response streams: the filter's long poll to the control plane makes one call per state version.
import { Agent, type Dispatcher } from 'undici';
import type { HeaderPairs } from './abi.js';
import { appendRawHeaders } from './headerMap.js';
import { UPSTREAM_TIMEOUT, connectFailure, type RouterReply } from './routerReplies.js';

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
/** Keep-alive connections per cluster (a filter has a few calls in flight at most). */
const MAX_SOCKETS_PER_CLUSTER = 64;

function localReply(reply: RouterReply): HttpCallResponse {
  const body = enc.encode(reply.text);
  return { headers: [[':status', String(reply.status)], ['content-length', String(body.length)], ['content-type', 'text/plain']], body, trailers: [] };
}

/** One call in flight: undici's handler of it, its timer, and the one answer it gives. */
class HttpCall implements Dispatcher.DispatchHandlers {
  private abortRequest: ((reason?: Error) => void) | null = null;
  private done = false;
  /** Inside undici's dispatch, which refuses a request it will not send (a bad header) by calling onError at once. */
  dispatching = true;
  private headers: HeaderPairs | null = null;
  private readonly chunks: Buffer[] = [];
  private readonly timer: NodeJS.Timeout | null;

  constructor(private readonly owner: HttpCaller, private readonly deliver: (res: HttpCallResponse | 'reset') => void, timeoutMs: number) {
    this.timer = timeoutMs > 0 ? setTimeout(() => {
      this.finish(localReply(UPSTREAM_TIMEOUT));
      this.abort();
    }, timeoutMs) : null;
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abortRequest = abort;
    if (this.done) abort(new Error('http call cancelled'));
  }
  onHeaders(status: number, raw: Buffer[] | string[] | null): boolean {
    // An informational response is not the answer (node's client reports it apart too).
    if (status >= 200) this.headers = appendRawHeaders([[':status', String(status)]], raw, CONNECTION_HEADERS);
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }
  onComplete(trailers: Buffer[] | string[] | null): void {
    this.finish({ headers: this.headers ?? [[':status', '0']], body: new Uint8Array(Buffer.concat(this.chunks)), trailers: appendRawHeaders([], trailers) });
  }
  onError(e: NodeJS.ErrnoException): void {
    if (this.headers !== null) return this.finish('reset');
    this.finish(localReply(connectFailure(e)));
  }

  cancel(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.owner.inflight.delete(this);
    this.abort();
  }

  abort(): void {
    this.abortRequest?.(new Error('http call cancelled'));
  }

  private finish(r: HttpCallResponse | 'reset'): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.owner.inflight.delete(this);
    // The module learns the call's token when proxy_http_call returns: an answer never comes before that.
    if (this.dispatching) queueMicrotask(() => this.owner.closed || this.deliver(r));
    else if (!this.owner.closed) this.deliver(r);
  }
}

export class HttpCaller {
  private readonly dispatcher = new Agent({ connections: MAX_SOCKETS_PER_CLUSTER });
  /** Each cluster URL's origin, parsed once. */
  private readonly origins = new Map<string, string>();
  readonly inflight = new Set<HttpCall>();
  closed = false;

  start(baseUrl: string, req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void): { cancel(): void } {
    let origin = this.origins.get(baseUrl);
    if (origin === undefined) {
      origin = new URL(baseUrl).origin;
      this.origins.set(baseUrl, origin);
    }
    // The first of each pseudo-header; host from :authority; content-length from the body when there is one.
    let method: string | undefined;
    let path: string | undefined;
    let host: string | undefined;
    const hasBody = req.body.length > 0;
    const headers: string[] = [];
    for (const [k, v] of req.headers) {
      if (k === ':method') method ??= v;
      else if (k === ':path') path ??= v;
      else if (k === ':authority') host ??= v;
      else if (!k.startsWith(':') && k !== 'host' && !(hasBody && k === 'content-length')) headers.push(k, v);
    }
    headers.push('host', host ?? '');
    if (hasBody) headers.push('content-length', String(req.body.length));
    const call = new HttpCall(this, deliver, req.timeoutMs);
    this.inflight.add(call);
    // No timeouts of undici's own: the call's timer is the one Envoy has (the route timeout).
    this.dispatcher.dispatch(
      { origin, method: ((method ?? '').toUpperCase() || 'GET') as Dispatcher.HttpMethod, path: path || '/', headers, body: hasBody ? Buffer.from(req.body) : null, headersTimeout: 0, bodyTimeout: 0 },
      call,
    );
    call.dispatching = false;
    return call;
  }

  close(): void {
    this.closed = true;
    for (const c of this.inflight) c.cancel();
    this.inflight.clear();
    void this.dispatcher.destroy().catch(() => {});
  }
}
