// The embedded gateway's HTTP/1.1 client to the replicas: a keep-alive socket pool per upstream
// (ip:port) and a response parser, written for the one thing the gateway needs, on its hot path.
// A request whose body is all there leaves in one socket write, at once, on a socket the pool
// already holds; the response comes back as callbacks (head, body chunks as they are read, end with
// trailers, or one error), with no stream objects between the socket and the gateway. A general
// client (undici) does more per request: a queue, a deferred write, its own parser's buffers.
//
// Framing read: content-length, chunked (extensions skipped, trailers kept), or to the connection's
// close; 1xx heads skipped (101 refused: the gateway never asks to upgrade); no body for HEAD, 204,
// 304. A socket goes back to the pool only after a whole response to a wholly written request, when
// the replica did not ask to close (HTTP/1.1 without `connection: close`) and sent nothing more.
import net from 'node:net';

/** What one request's caller hears back, in this order: onHeaders, onData..., onComplete; or onError at any point, and then nothing. */
export interface UpstreamResponseHandler {
  onHeaders(status: number, rawHeaders: string[]): void;
  onData(chunk: Buffer): void;
  onComplete(rawTrailers: string[]): void;
  onError(e: UpstreamError | NodeJS.ErrnoException): void;
}

export interface UpstreamRequest {
  host: string;
  port: number;
  method: string;
  path: string;
  /** Flat name, value list; no content-length when `body` is a Buffer (the client writes it). */
  headers: string[];
  /** The whole body, none, or 'stream': the caller writes it with UpstreamCall.write and end. */
  body: Buffer | null | 'stream';
  /** From the request's start to the response head, and then between two reads of the response. */
  timeoutMs: number;
}

/** Failures the client itself names (a socket's own errors pass as they come, with their code and syscall). */
export const UPSTREAM_ERRORS = {
  invalidRequest: { code: 'UPSTREAM_INVALID_REQUEST', message: 'invalid request' },
  connectTimeout: { code: 'UPSTREAM_CONNECT_TIMEOUT', message: 'connect timeout' },
  headersTimeout: { code: 'UPSTREAM_HEADERS_TIMEOUT', message: 'no response head in time' },
  bodyTimeout: { code: 'UPSTREAM_BODY_TIMEOUT', message: 'no response bytes in time' },
  closed: { code: 'UPSTREAM_CLOSED', message: 'the upstream closed the connection before the response ended' },
  badResponse: { code: 'UPSTREAM_BAD_RESPONSE', message: 'malformed response' },
  cancelled: { code: 'UPSTREAM_CANCELLED', message: 'request cancelled' },
} as const;

export class UpstreamError extends Error {
  readonly code: string;
  constructor(kind: (typeof UPSTREAM_ERRORS)[keyof typeof UPSTREAM_ERRORS], detail?: string) {
    super(detail ? `${kind.message}: ${detail}` : kind.message);
    this.code = kind.code;
  }
}

/** undici's default connect timeout. */
const CONNECT_TIMEOUT_MS = 10_000;
/** An idle pooled socket is closed after this long (undici's keep-alive default; servers close theirs after 5 s). */
const IDLE_TIMEOUT_MS = 4_000;
/** A response head (or a chunk-size or trailer line) longer than this is refused (node's server limit on headers). */
const MAX_HEAD_BYTES = 16 * 1024;
/** Bodies up to this size are copied behind the head and leave in one write; longer ones go as a second, corked write. */
const COPY_BODY_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const INVALID_PATH = /[^\x21-\xff]/;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Header names and methods already found to be tokens: requests carry the same few names, so the
 * test runs once per name, not once per request. Bounded: emptied when full.
 */
const knownTokens = new Set<string>();
const KNOWN_TOKENS_MAX = 4096;

function isToken(s: string): boolean {
  if (knownTokens.has(s)) return true;
  if (!TOKEN.test(s)) return false;
  if (knownTokens.size >= KNOWN_TOKENS_MAX) knownTokens.clear();
  knownTokens.add(s);
  return true;
}

/** The request's head, or why it cannot be sent (the checks undici makes: token names and method, no control bytes). */
function requestHead(r: UpstreamRequest, chunked: boolean): string | UpstreamError {
  if (!isToken(r.method)) return new UpstreamError(UPSTREAM_ERRORS.invalidRequest, 'method');
  if (INVALID_PATH.test(r.path)) return new UpstreamError(UPSTREAM_ERRORS.invalidRequest, 'path');
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
  const h = r.headers;
  for (let i = 0; i + 1 < h.length; i += 2) {
    const k = h[i]!, v = h[i + 1]!;
    if (!isToken(k)) return new UpstreamError(UPSTREAM_ERRORS.invalidRequest, `header name ${JSON.stringify(k)}`);
    if (INVALID_VALUE.test(v)) return new UpstreamError(UPSTREAM_ERRORS.invalidRequest, `${k} header value`);
    head += `${k}: ${v}\r\n`;
  }
  if (r.body instanceof Buffer) head += `content-length: ${r.body.length}\r\n`;
  else if (chunked) head += 'transfer-encoding: chunked\r\n';
  else if (r.body === null && METHODS_WITH_BODY.has(r.method)) head += 'content-length: 0\r\n';
  return head + '\r\n';
}

/** The content-length among `flat` headers: -1 if there is none, NaN if it is not a number. */
function declaredLength(flat: string[]): number {
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.toLowerCase() === 'content-length') return /^\d+$/.test(flat[i + 1]!) ? Number(flat[i + 1]) : NaN;
  return -1;
}

const enum Body { None, Length, Chunked, UntilClose }
const enum Chunk { Size, Data, DataEnd, Trailers }

/** One parsed response head. */
interface ResponseHead {
  status: number;
  raw: string[];
  keepAlive: boolean;
  body: Body;
  length: number;
}

/** The head in `text` (status line and header lines, no final blank line), or null if it is not HTTP/1.x. */
function parseHead(text: string, method: string): ResponseHead | null {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0]!);
  if (!m) return null;
  const status = Number(m[2]);
  const raw: string[] = [];
  let keepAlive = m[1] === '1';
  let length = -1;
  let chunked = false;
  let otherEncoding = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!isToken(name)) return null;
    const value = line.slice(colon + 1).trim();
    raw.push(name, value);
    switch (name.toLowerCase()) {
      case 'content-length': {
        if (!/^\d+$/.test(value) || (length >= 0 && Number(value) !== length)) return null;
        length = Number(value);
        break;
      }
      case 'transfer-encoding': {
        const codings = value.toLowerCase().split(',').map((s) => s.trim());
        chunked = codings[codings.length - 1] === 'chunked';
        otherEncoding = !chunked;
        break;
      }
      case 'connection':
        if (/(^|,)\s*close\s*(,|$)/i.test(value)) keepAlive = false;
        break;
    }
  }
  let body: Body;
  if (method === 'HEAD' || status === 204 || status === 304 || status < 200) body = Body.None;
  else if (chunked) body = Body.Chunked;
  else if (otherEncoding) body = Body.UntilClose;
  else if (length >= 0) body = length === 0 ? Body.None : Body.Length;
  else body = Body.UntilClose;
  if (body === Body.UntilClose) keepAlive = false;
  return { status, raw, keepAlive, body, length };
}

/** A pooled connection to one upstream, with the call it serves now, if any. */
class Connection {
  call: UpstreamCall | null = null;
  /** It served a response before (a failure before any answer may be the replica closing it as idle). */
  reused = false;
  connected = false;
  private gone = false;
  constructor(readonly socket: net.Socket, private readonly origin: Origin) {
    socket.on('connect', () => this.onConnect());
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('end', () => this.onGone(null));
    socket.on('error', (e: Error) => this.onGone(e));
    socket.on('close', () => this.onGone(null));
    socket.on('timeout', () => {
      if (this.call === null) socket.destroy();
    });
    socket.setTimeout(IDLE_TIMEOUT_MS);
  }
  private onConnect(): void {
    this.connected = true;
    this.call?.connected(this);
  }
  private onData(b: Buffer): void {
    if (this.call) this.call.read(b);
    else this.socket.destroy(); // bytes nobody asked for: the connection is not in a known state
  }
  private onGone(e: Error | null): void {
    if (this.gone) return;
    this.gone = true;
    const call = this.call;
    this.call = null;
    this.socket.destroy();
    this.origin.drop(this);
    call?.lost(this, e);
  }
}

/** The connections to one upstream and the requests waiting for one. */
class Origin {
  readonly idle: Connection[] = [];
  readonly waiting: UpstreamCall[] = [];
  /** Every open connection, idle or not. */
  private readonly open = new Set<Connection>();
  closed = false;
  constructor(readonly host: string, readonly port: number, private readonly maxConnections: number) {}

  /** Gives `call` a connection: the most recently used idle one, a new one, or the next free one. */
  assign(call: UpstreamCall): void {
    const c = this.idle.pop();
    if (c) {
      c.call = call;
      call.connected(c);
    } else if (this.open.size < this.maxConnections) {
      const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
      const conn = new Connection(socket, this);
      this.open.add(conn);
      conn.call = call;
      call.connecting(conn);
    } else {
      this.waiting.push(call);
    }
  }

  /** `c` finished a call cleanly: it serves the next waiting request, or waits for one. */
  release(c: Connection): void {
    c.call = null;
    c.reused = true;
    const next = this.waiting.shift();
    if (next) {
      c.call = next;
      next.connected(c);
    } else {
      this.idle.push(c);
    }
  }

  /** `c` is closed: it no longer counts, and a waiting request may open a new one. */
  drop(c: Connection): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.open.delete(c);
    const next = this.waiting.shift();
    if (next) this.assign(next);
  }

  /** A waiting request gave up. */
  unqueue(call: UpstreamCall): void {
    const i = this.waiting.indexOf(call);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** Closes every connection; the calls on them fail. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    for (const c of [...this.open]) c.socket.destroy();
  }
}

/** One request in flight: writes it on the connection it gets, parses the response, reports to its handler. */
export class UpstreamCall {
  private conn: Connection | null = null;
  private done = false;
  private timer: NodeJS.Timeout;
  /** Body chunks written before a connection was there. */
  private pendingBody: Buffer[] = [];
  private bodyEnded: boolean;
  private readonly chunked: boolean;
  /** A streamed body with a content-length: the bytes it still has to bring (undici refuses a body that does not match its length, and so does this). */
  private bodyLeft: number;
  private readonly head: string;
  /** The request went out whole (head, body and, for a streamed body, its end). */
  private requestWritten = false;
  /** Response bytes were read (a failure before any is retried once on a new connection, if the socket had been reused). */
  private responded = false;
  private retriedStale = false;
  // Response parsing.
  private headSeen: ResponseHead | null = null;
  private carry: Buffer | null = null;
  private remaining = 0;
  private chunkState = Chunk.Size;
  private trailers: string[] = [];

  constructor(private readonly origin: Origin, private readonly req: UpstreamRequest, private readonly handler: UpstreamResponseHandler, head: string, streamLength: number) {
    this.head = head;
    this.chunked = req.body === 'stream' && streamLength < 0;
    this.bodyLeft = streamLength;
    this.bodyEnded = req.body !== 'stream';
    this.timer = setTimeout(() => this.fail(new UpstreamError(this.headSeen ? UPSTREAM_ERRORS.bodyTimeout : UPSTREAM_ERRORS.headersTimeout)), req.timeoutMs);
  }

  /** More of a streamed body. */
  write(chunk: Buffer): void {
    if (this.done || this.bodyEnded || chunk.length === 0) return;
    if (!this.chunked) {
      if (chunk.length > this.bodyLeft) return this.fail(new UpstreamError(UPSTREAM_ERRORS.invalidRequest, 'request body longer than its content-length'));
      this.bodyLeft -= chunk.length;
    }
    if (this.conn?.connected) this.writeBodyChunk(chunk);
    else this.pendingBody.push(chunk);
  }

  /** The streamed body's end. */
  end(): void {
    if (this.done || this.bodyEnded) return;
    if (!this.chunked && this.bodyLeft > 0) return this.fail(new UpstreamError(UPSTREAM_ERRORS.invalidRequest, 'request body shorter than its content-length'));
    this.bodyEnded = true;
    if (this.conn?.connected) this.writeBodyEnd();
  }

  /** Gives up on the request: its connection is closed and the handler hears nothing more. */
  abort(): void {
    if (this.done) return;
    this.detach();
  }

  // ---- from the pool and the connection ----

  /** A new connection is on its way: the connect timer runs until it is up. */
  connecting(c: Connection): void {
    this.conn = c;
    const t = setTimeout(() => {
      if (this.conn === c && !c.connected) this.fail(new UpstreamError(UPSTREAM_ERRORS.connectTimeout));
    }, CONNECT_TIMEOUT_MS);
    t.unref();
  }

  /** The connection is up: the request goes out. */
  connected(c: Connection): void {
    this.conn = c;
    const s = c.socket;
    const body = this.req.body;
    if (body instanceof Buffer && body.length > 0) {
      if (body.length <= COPY_BODY_BYTES) {
        const headBytes = Buffer.byteLength(this.head, 'latin1');
        const out = Buffer.allocUnsafe(headBytes + body.length);
        out.write(this.head, 0, 'latin1');
        body.copy(out, headBytes);
        s.write(out);
      } else {
        s.cork();
        s.write(this.head, 'latin1');
        s.write(body);
        s.uncork();
      }
      this.requestWritten = true;
      return;
    }
    if (body !== 'stream') {
      s.write(this.head, 'latin1');
      this.requestWritten = true;
      return;
    }
    s.cork();
    s.write(this.head, 'latin1');
    for (const chunk of this.pendingBody) this.writeBodyChunk(chunk);
    this.pendingBody = [];
    if (this.bodyEnded) this.writeBodyEnd();
    s.uncork();
  }

  private writeBodyChunk(chunk: Buffer): void {
    const s = this.conn!.socket;
    if (!this.chunked) {
      s.write(chunk);
      return;
    }
    s.cork();
    s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    s.write(chunk);
    s.write(CRLF);
    s.uncork();
  }

  private writeBodyEnd(): void {
    if (this.chunked) this.conn!.socket.write(LAST_CHUNK);
    this.requestWritten = true;
  }

  /** The connection closed or failed under this call. */
  lost(c: Connection, e: Error | null): void {
    if (this.done || this.conn !== c) return;
    this.conn = null;
    if (this.headSeen?.body === Body.UntilClose && e === null) {
      this.complete();
      return;
    }
    // A pooled connection the replica closed as idle while this request went out on it: once more on a new one.
    if (c.reused && !this.responded && !this.retriedStale && this.req.body !== 'stream' && !this.origin.closed) {
      this.retriedStale = true;
      this.origin.assign(this);
      return;
    }
    this.fail(e ?? new UpstreamError(UPSTREAM_ERRORS.closed));
  }

  /** Response bytes. */
  read(b: Buffer): void {
    if (this.done) return;
    this.responded = true;
    if (this.carry) {
      b = Buffer.concat([this.carry, b]);
      this.carry = null;
    }
    let at = 0;
    if (this.headSeen === null) {
      at = this.readHeads(b);
      if (at < 0 || this.done) return;
    }
    this.readBody(b, at);
    // The timeout runs again from this read (a response that ended in it has no timer left).
    if (!this.done) this.timer.refresh();
  }

  private readBody(b: Buffer, at: number): void {
    const head = this.headSeen!;
    switch (head.body) {
      case Body.None:
        if (at < b.length) this.conn!.socket.destroy(); // bytes past the response: not reused
        return this.complete();
      case Body.UntilClose:
        if (at < b.length) this.handler.onData(b.subarray(at));
        return;
      case Body.Length: {
        const n = Math.min(this.remaining, b.length - at);
        if (n > 0) {
          this.remaining -= n;
          this.handler.onData(at === 0 && n === b.length ? b : b.subarray(at, at + n));
        }
        if (this.done) return;
        if (this.remaining === 0) {
          if (at + n < b.length) this.conn!.socket.destroy();
          this.complete();
        }
        return;
      }
      case Body.Chunked:
        return this.readChunked(b, at);
    }
  }

  /** Parses response heads (1xx ones skipped) from `b`; the offset past the final head, or -1 if it is not all here (or failed). */
  private readHeads(b: Buffer): number {
    let at = 0;
    for (;;) {
      const end = b.indexOf(HEAD_END, at);
      if (end < 0) {
        if (b.length - at > MAX_HEAD_BYTES) this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, 'response head too long'));
        else this.carry = at === 0 ? b : b.subarray(at);
        return -1;
      }
      const head = parseHead(b.toString('latin1', at, end), this.req.method);
      if (!head || head.status === 101) {
        this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, head ? 'unexpected 101' : 'response head'));
        return -1;
      }
      at = end + 4;
      if (head.status >= 200) {
        this.headSeen = head;
        this.remaining = head.length;
        this.handler.onHeaders(head.status, head.raw);
        return at;
      }
    }
  }

  private readChunked(b: Buffer, at: number): void {
    while (!this.done) {
      switch (this.chunkState) {
        case Chunk.Size: {
          const eol = b.indexOf(CRLF, at);
          if (eol < 0) return this.keep(b, at);
          const line = b.toString('latin1', at, eol);
          const semi = line.indexOf(';');
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, 'chunk size'));
          this.remaining = parseInt(hex, 16);
          at = eol + 2;
          this.chunkState = this.remaining === 0 ? Chunk.Trailers : Chunk.Data;
          break;
        }
        case Chunk.Data: {
          const n = Math.min(this.remaining, b.length - at);
          if (n === 0) return;
          this.remaining -= n;
          const data = b.subarray(at, at + n);
          at += n;
          if (this.remaining === 0) this.chunkState = Chunk.DataEnd;
          this.handler.onData(data);
          break;
        }
        case Chunk.DataEnd: {
          if (b.length - at < 2) return this.keep(b, at);
          if (b[at] !== 13 || b[at + 1] !== 10) return this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, 'chunk end'));
          at += 2;
          this.chunkState = Chunk.Size;
          break;
        }
        case Chunk.Trailers: {
          const eol = b.indexOf(CRLF, at);
          if (eol < 0) return this.keep(b, at);
          const line = b.toString('latin1', at, eol);
          at = eol + 2;
          if (line === '') {
            if (at < b.length) this.conn!.socket.destroy();
            return this.complete();
          }
          const colon = line.indexOf(':');
          if (colon <= 0) return this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, 'trailer'));
          this.trailers.push(line.slice(0, colon), line.slice(colon + 1).trim());
          break;
        }
      }
    }
  }

  /** Keeps an incomplete line for the next read. */
  private keep(b: Buffer, at: number): void {
    if (b.length - at > MAX_HEAD_BYTES) return this.fail(new UpstreamError(UPSTREAM_ERRORS.badResponse, 'line too long'));
    this.carry = at < b.length ? b.subarray(at) : null;
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.timer);
  }

  private complete(): void {
    this.finish();
    this.releaseConnection();
    this.handler.onComplete(this.trailers);
  }

  /** After the response: the connection goes back to the pool if it can carry another request, else it is closed. */
  private releaseConnection(): void {
    const c = this.conn;
    this.conn = null;
    if (!c || c.call !== this) return;
    // A response that came before the streamed request body ended leaves that body half sent.
    if (this.requestWritten && this.headSeen?.keepAlive && !c.socket.destroyed) this.origin.release(c);
    else {
      c.call = null;
      c.socket.destroy();
    }
  }

  private fail(e: UpstreamError | NodeJS.ErrnoException): void {
    if (this.done) return;
    this.detach();
    this.handler.onError(e);
  }

  /** Ends the call before its response did: out of the queue, its connection closed. */
  private detach(): void {
    this.finish();
    this.origin.unqueue(this);
    const c = this.conn;
    this.conn = null;
    if (c) {
      c.call = null;
      c.socket.destroy();
    }
  }
}

/** Keep-alive HTTP/1.1 connections to upstreams, a pool of at most `maxConnectionsPerUpstream` each. */
export class UpstreamClient {
  private readonly origins = new Map<string, Origin>();
  constructor(private readonly maxConnectionsPerUpstream: number) {}

  /**
   * Sends `req`; the handler hears the response. A request that cannot be sent as given (a header
   * name that is not a token, a control byte in a value) fails at once with invalidRequest.
   */
  request(req: UpstreamRequest, handler: UpstreamResponseHandler): UpstreamCall | null {
    const streamLength = req.body === 'stream' ? declaredLength(req.headers) : -1;
    const head = Number.isNaN(streamLength) ? new UpstreamError(UPSTREAM_ERRORS.invalidRequest, 'content-length') : requestHead(req, req.body === 'stream' && streamLength < 0);
    if (typeof head !== 'string') {
      handler.onError(head);
      return null;
    }
    const key = `${req.host}:${req.port}`;
    let origin = this.origins.get(key);
    if (!origin) {
      origin = new Origin(req.host, req.port, this.maxConnectionsPerUpstream);
      this.origins.set(key, origin);
    }
    const call = new UpstreamCall(origin, req, handler, head, streamLength);
    origin.assign(call);
    return call;
  }

  /** Closes every connection (the calls on them fail with the socket's close). */
  close(): void {
    for (const o of this.origins.values()) o.close();
    this.origins.clear();
  }
}
