// A minimal keep-alive HTTP/1.1 GET client for /metrics scrapes.
//
// Hand-written on purpose (hot path): node:http's client costs ~70-100 us of
// CPU per request (agent bookkeeping, ClientRequest/IncomingMessage streams,
// header objects); at 256 replicas x 20 scrapes/s that alone was ~0.5 core
// (bench/controlPlane.ts). This one writes a fixed request on a kept-open
// socket and reads the status, Content-Length or chunked body, nothing else.
import net from 'node:net';

export type ResponseProgress =
  | { state: 'more' }
  | { state: 'done'; status: number; body: Buffer; keepAlive: boolean }
  | { state: 'error'; error: string };

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Response headers longer than this are refused (a metrics endpoint sends a few hundred bytes). */
const MAX_HEADER_BYTES = 16 * 1024;

/** Incremental HTTP/1.x response parser: feed it socket data until it says done or error. */
export class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private headerDone = false;
  private status = 0;
  private keepAlive = true;
  private contentLength = -1;
  private chunked = false;
  private bodyStart = 0;
  // chunked decoding
  private cursor = 0;
  private pieces: Buffer[] = [];
  private bodySize = 0;

  constructor(private readonly maxBodyBytes: number) {}

  feed(chunk: Buffer): ResponseProgress {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.headerDone) {
      const end = this.buf.indexOf(CRLFCRLF);
      if (end < 0) return this.buf.length > MAX_HEADER_BYTES ? { state: 'error', error: 'response headers too long' } : { state: 'more' };
      const head = this.buf.toString('latin1', 0, end);
      const r = this.parseHead(head);
      if (r) return r;
      this.headerDone = true;
      this.bodyStart = end + 4;
      this.cursor = this.bodyStart;
      if (this.contentLength > this.maxBodyBytes) return { state: 'error', error: `body larger than ${this.maxBodyBytes} bytes` };
    }
    if (this.chunked) return this.readChunked();
    if (this.contentLength >= 0) {
      const have = this.buf.length - this.bodyStart;
      if (have < this.contentLength) return { state: 'more' };
      return { state: 'done', status: this.status, body: this.buf.subarray(this.bodyStart, this.bodyStart + this.contentLength), keepAlive: this.keepAlive && have === this.contentLength };
    }
    // Neither length nor chunked: the body runs to the end of the connection.
    if (this.buf.length - this.bodyStart > this.maxBodyBytes) return { state: 'error', error: `body larger than ${this.maxBodyBytes} bytes` };
    return { state: 'more' };
  }

  /** The connection ended: completes a close-delimited body, else reports truncation. */
  end(): ResponseProgress {
    if (this.headerDone && !this.chunked && this.contentLength < 0) {
      return { state: 'done', status: this.status, body: this.buf.subarray(this.bodyStart), keepAlive: false };
    }
    return { state: 'error', error: this.headerDone ? 'connection closed mid-body' : 'connection closed before a response' };
  }

  get started(): boolean { return this.buf.length > 0; }

  private parseHead(head: string): ResponseProgress | null {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
    if (!m) return { state: 'error', error: `not an HTTP/1.x response: ${JSON.stringify(lines[0].slice(0, 40))}` };
    this.status = Number(m[2]);
    this.keepAlive = m[1] === '1';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value)) return { state: 'error', error: 'bad Content-Length' };
        this.contentLength = Number(value);
      } else if (name === 'transfer-encoding') {
        this.chunked = value.split(',').map((s) => s.trim()).includes('chunked');
      } else if (name === 'connection') {
        if (value.includes('close')) this.keepAlive = false;
        else if (value.includes('keep-alive')) this.keepAlive = true;
      }
    }
    if (this.chunked) this.contentLength = -1; // RFC 9112: chunked wins over Content-Length
    return null;
  }

  private readChunked(): ResponseProgress {
    const b = this.buf;
    for (;;) {
      const lineEnd = b.indexOf('\r\n', this.cursor, 'latin1');
      if (lineEnd < 0) return { state: 'more' };
      const sizeText = b.toString('latin1', this.cursor, lineEnd).split(';')[0].trim();
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return { state: 'error', error: 'bad chunk size' };
      const size = parseInt(sizeText, 16);
      if (size === 0) {
        // Last chunk; skip (ignored) trailers up to the blank line.
        const trailerEnd = b.indexOf('\r\n', lineEnd + 2, 'latin1');
        if (trailerEnd < 0) return { state: 'more' };
        if (trailerEnd !== lineEnd + 2) {
          const end = b.indexOf(CRLFCRLF, lineEnd);
          if (end < 0) return { state: 'more' };
        }
        return { state: 'done', status: this.status, body: this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces, this.bodySize), keepAlive: this.keepAlive };
      }
      const dataStart = lineEnd + 2;
      if (b.length < dataStart + size + 2) return { state: 'more' };
      this.bodySize += size;
      if (this.bodySize > this.maxBodyBytes) return { state: 'error', error: `body larger than ${this.maxBodyBytes} bytes` };
      this.pieces.push(b.subarray(dataStart, dataStart + size));
      this.cursor = dataStart + size + 2;
    }
  }
}

export type FetchResult = { ok: true; status: number; body: Buffer } | { ok: false; kind: 'connect' | 'protocol' | 'too_large'; error: string };

/** One replica's kept-open connection; one request at a time. */
export class MetricsConnection {
  private socket: net.Socket | null = null;
  private readonly request: Buffer;
  private pending: {
    reader: ResponseReader;
    done: (r: FetchResult) => void;
    reused: boolean;
    socket: net.Socket;
  } | null = null;

  constructor(private readonly host: string, private readonly port: number, path: string, authority: string, private readonly maxBodyBytes: number) {
    this.request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nAccept: text/plain\r\nUser-Agent: prefix-router-control-plane\r\n\r\n`, 'latin1');
  }

  /** GETs the metrics path; at most one call at a time. */
  get(done: (r: FetchResult) => void): void {
    const reused = this.socket !== null;
    const s = this.socket ?? this.connect();
    this.pending = { reader: new ResponseReader(this.maxBodyBytes), done, reused, socket: s };
    s.write(this.request);
  }

  /** Drops the connection (timeout, stop); a pending call gets no answer. */
  destroy(): void {
    this.pending = null;
    if (this.socket) { this.socket.destroy(); this.socket = null; }
  }

  private connect(): net.Socket {
    const s = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = s;
    s.on('data', (chunk: Buffer) => {
      const p = this.pending;
      if (!p || p.socket !== s) { this.drop(s); return; } // unsolicited bytes: the connection is out of step
      const r = p.reader.feed(chunk);
      if (r.state === 'more') return;
      this.pending = null;
      if (r.state === 'error') {
        this.drop(s);
        p.done({ ok: false, kind: r.error.startsWith('body larger') ? 'too_large' : 'protocol', error: r.error });
        return;
      }
      if (!r.keepAlive) this.drop(s);
      p.done({ ok: true, status: r.status, body: r.body });
    });
    const closed = (err?: Error) => {
      if (this.socket === s) this.socket = null;
      const p = this.pending;
      if (!p || p.socket !== s) return;
      this.pending = null;
      if (!err) {
        const r = p.reader.end();
        if (r.state === 'done') { p.done({ ok: true, status: r.status, body: r.body }); return; }
      }
      // A kept-open connection the server had already closed: retry once on a new one.
      if (p.reused && !p.reader.started) {
        this.socket = null;
        this.get(p.done);
        this.pending!.reused = false;
        return;
      }
      p.done({ ok: false, kind: 'connect', error: err ? err.message : 'connection closed before a complete response' });
    };
    s.on('error', (e) => { s.destroy(); closed(e); });
    s.on('end', () => { s.destroy(); closed(); });
    s.on('close', () => closed());
    return s;
  }

  private drop(s: net.Socket): void {
    s.destroy();
    if (this.socket === s) this.socket = null;
  }
}
