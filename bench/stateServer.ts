// A minimal long-poll state endpoint for benchmarks: serves one fixed state
// the way the control plane does (plugin/STATE_FORMAT.md).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeState, STATE_CONTENT_TYPE, type RouterState } from '../control-plane/stateWire.js';

export async function serveState(state: RouterState): Promise<{ url: string; set(s: RouterState): void; close(): Promise<void> }> {
  let current = state;
  let bytes = encodeState(state);
  let waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    const after = BigInt(u.searchParams.get('after') ?? '0');
    const answer = () => {
      if (current.version === after) res.writeHead(304).end();
      else res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': bytes.length }).end(bytes);
    };
    if (current.version !== after) return answer();
    const t = setTimeout(() => { waiters = waiters.filter((w) => w !== wake); answer(); }, Number(u.searchParams.get('waitMs') ?? '1000'));
    const wake = () => { clearTimeout(t); answer(); };
    waiters.push(wake);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set(s: RouterState) {
      current = s;
      bytes = encodeState(s);
      const w = waiters; waiters = [];
      for (const f of w) f();
    },
    async close() {
      for (const f of waiters) f();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
