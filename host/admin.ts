// The gateway's admin listener, after Envoy's admin interface: `GET /stats/prometheus` serves
// the gateway's own stats and the filter's metrics as Prometheus text, `GET /ready` answers
// LIVE. Envoy's admin listens on 9901 in its examples; so does `npm start`'s.
import http from 'node:http';
import type { ProxyWasmHost } from './proxyWasmHost.js';
import { renderPrometheus, type StatsStore } from './statsStore.js';
import { closeServer, listen } from './listen.js';

/** The admin port of Envoy's examples and of `npm start`. */
export const DEFAULT_ADMIN_PORT = 9901;

export interface AdminOptions {
  host: ProxyWasmHost;
  /** The gateway's own stats (Gateway.stats). */
  stats: StatsStore;
  listen?: { host?: string; port?: number };
}

export interface AdminServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The admin endpoints. */
function createAdminHandler(opts: AdminOptions): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    if (path === '/stats/prometheus') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderPrometheus(opts.stats, opts.host.metrics()));
    } else if (path === '/ready') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('LIVE\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; admin endpoints: GET /stats/prometheus, GET /ready\n');
    }
  };
}

export async function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const server = http.createServer(createAdminHandler(opts));
  const { url, port } = await listen(server, opts.listen?.host ?? '127.0.0.1', opts.listen?.port ?? DEFAULT_ADMIN_PORT);
  return { url, port, close: () => closeServer(server) };
}
