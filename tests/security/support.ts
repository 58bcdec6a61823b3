// Helpers for the security tests: exact-bytes HTTP over a raw socket (node's client
// would normalise the very headers these tests play with) and a listener that counts
// whoever reaches it.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
  raw: string;
}

/** Sends `request` bytes as they are (connection: close expected) and parses the reply. */
export function rawRequest(port: number, request: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP response: ${JSON.stringify(raw.slice(0, 200))}`));
      const lines = raw.slice(0, end).split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = lines.slice(1).map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as [string, string];
      });
      let body = raw.slice(end + 4);
      if (headers.some(([k, v]) => k === 'transfer-encoding' && /chunked/i.test(v))) body = dechunk(body);
      resolve({ status, headers, body, raw });
    });
    sock.write(request);
  });
}

function dechunk(s: string): string {
  let out = '';
  let o = 0;
  for (;;) {
    const nl = s.indexOf('\r\n', o);
    if (nl < 0) break;
    const n = parseInt(s.slice(o, nl), 16);
    if (!(n > 0)) break;
    out += s.slice(nl + 2, nl + 2 + n);
    o = nl + 2 + n + 2;
  }
  return out;
}

/** An HTTP server that answers 200 and counts requests: the target an attacker would like to reach. */
export async function countingServer(): Promise<{ port: number; address: string; hits: number; close(): Promise<void> }> {
  const state = { hits: 0 };
  const server = http.createServer((req, res) => {
    state.hits++;
    req.resume();
    res.end('attacker target reached');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    get hits() { return state.hits; },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
