// A minimal stand-in for the control plane's state endpoint: answers the
// filter's long poll (plugin/STATE_FORMAT.md) with one settable state. Used by
// bench/filter.ts and the filter's tests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeState, STATE_CONTENT_TYPE, type RouterState } from '../control-plane/stateWire.js';

/** A poll is held at most this long, whatever it asks for: stand-ins serve short runs. */
const MAX_WAIT_MS = 2000;

export class StateServer {
  state: RouterState;
  /** Bytes to serve instead of the encoded state (a corrupted payload, say); served at once. */
  body: Uint8Array | null = null;
  /** Polls received. */
  polls = 0;
  /** The last poll's method, content type and body (a fleet report when POST). */
  lastPoll: { method: string; contentType: string; body: Uint8Array } | null = null;
  /** Answer POST polls 405, as a control plane from before the fleet exchange does. */
  refusePost = false;
  /** Answer POST polls whose report is format 2 (with content records) 400, as a control plane from before them does. */
  refuseReportContent = false;
  private encoded: Uint8Array;
  private waiters: Array<() => void> = [];
  private readonly server: http.Server;

  constructor(state: RouterState) {
    this.state = state;
    this.encoded = encodeState(state);
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.poll(req, res, new Uint8Array(Buffer.concat(chunks))));
    });
  }

  private poll(req: http.IncomingMessage, res: http.ServerResponse, body: Uint8Array): void {
    this.polls++;
    this.lastPoll = { method: req.method ?? '', contentType: req.headers['content-type'] ?? '', body };
    if (req.method === 'POST' && this.refusePost) { res.writeHead(405, { allow: 'GET' }).end(); return; }
    if (req.method === 'POST' && this.refuseReportContent && body[4] === 2) { res.writeHead(400).end(); return; }
    const url = new URL(req.url!, 'http://x');
    const after = BigInt(url.searchParams.get('after') ?? '0');
    const waitMs = Number(url.searchParams.get('waitMs') ?? '0');
    const answer = () => {
      if (this.state.version === after && !this.body) { res.writeHead(304).end(); return; }
      const bytes = this.body ?? this.encoded;
      res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': bytes.length }).end(bytes);
    };
    if (this.state.version !== after || this.body) return answer();
    const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== wake); answer(); }, Math.min(waitMs, MAX_WAIT_MS));
    const wake = () => { clearTimeout(t); answer(); };
    this.waiters.push(wake);
  }

  /** Listens on an ephemeral loopback port; returns the base URL. */
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Serves a new state and answers every waiting poll. */
  set(state: RouterState): void {
    this.state = state;
    this.encoded = encodeState(state);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async close(): Promise<void> {
    for (const f of this.waiters) f();
    this.waiters = [];
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
