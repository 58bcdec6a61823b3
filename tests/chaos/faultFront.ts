// A fault-injecting reverse proxy (in the spirit of toxiproxy) in front of one service:
// passes everything through until told to hang /metrics, corrupt state payloads, or die
// (stop listening and drop every connection, as a killed process looks from the network).
// A backend that cannot be reached shows as a dropped connection, not as an HTTP error.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fnv1a32 } from '../../control-plane/stateWire.js';

export class FaultFront {
  hangMetrics = false;
  corruptState = false;
  /** State bodies corrupted so far, and the versions they carried. */
  corrupted = 0;
  /** Metrics requests held without an answer. */
  hung = 0;
  /** Versions of the state payloads passed through whole (x-prefix-router-state-version). */
  readonly servedWholeStates = new Set<bigint>();
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<http.ServerResponse>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  private readonly server: http.Server;
  private port = 0;

  constructor(private readonly target: URL) {
    this.server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = req.url ?? '/';
    if (this.hangMetrics && path.startsWith('/metrics')) {
      this.hung++;
      this.held.add(res);
      res.on('close', () => this.held.delete(res));
      req.resume();
      return; // never answered
    }
    const headers = { ...req.headers, host: this.target.host };
    const up = http.request({ host: this.target.hostname, port: this.target.port, method: req.method, path, headers, agent: this.agent }, (ur) => {
      if (this.corruptState && path.startsWith('/v1/state') && ur.statusCode === 200) {
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () => {
          const body = corrupt(Buffer.concat(chunks), this.corrupted++);
          res.writeHead(200, { ...ur.headers, 'content-length': body.length });
          res.end(body);
        });
        return;
      }
      const version = ur.headers['x-prefix-router-state-version'];
      if (path.startsWith('/v1/state') && ur.statusCode === 200 && typeof version === 'string' && /^\d+$/.test(version)) this.servedWholeStates.add(BigInt(version));
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
      ur.on('aborted', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
  }

  /** Answers the held metrics requests (as the replica would once it unsticks) and stops hanging. */
  release(): void {
    this.hangMetrics = false;
    for (const r of this.held) r.destroy();
    this.held.clear();
  }

  /** Stops listening and drops every connection at once. */
  async kill(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await closed;
  }
}

/**
 * Damages a state payload two ways in turn: a flipped byte (the checksum catches it), and a
 * replica count past the limit with the checksum made right again (the rules catch it).
 */
export function corrupt(body: Buffer, n: number): Buffer {
  const b = Buffer.from(body);
  if (b.length < 40) return b;
  if (n % 2 === 0) {
    b[20 + (n % (b.length - 24))] ^= 0x5a;
  } else {
    b.writeUInt32LE(4097, 32);
    b.writeUInt32LE(fnv1a32(b, b.length - 4), b.length - 4);
  }
  return b;
}
