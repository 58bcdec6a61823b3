// The embedded gateway: a node:http server that runs every request through the proxy-wasm
// filter as Envoy's HTTP connection manager would, then forwards it to the upstream its
// selector names (by default ORIGINAL_DST on the ip:port the filter put in
// x-gateway-destination-endpoint), and streams the response back through the filter's
// response hooks. Each request is a GatewayExchange.
import http from 'node:http';
import type net from 'node:net';
import type { ProxyWasmHost } from './proxyWasmHost.js';
import { type AccessLogEntry, GatewayExchange } from './gatewayExchange.js';
import { GatewayStats } from './gatewayStats.js';
import { closeServer, listen } from './listen.js';
import type { StatsStore } from './statsStore.js';
import { originalDestination, type UpstreamSelector } from './upstreamSelector.js';
import { UpstreamClient } from './upstreamClient.js';

export { DESTINATION_HEADER, FALLBACK_HEADER, parseDestination, originalDestination } from './upstreamSelector.js';
export type { Destination, UpstreamSelector } from './upstreamSelector.js';
export type { AccessLogEntry } from './gatewayExchange.js';
export { HTTP_STAT_PREFIX, UPSTREAM_CLUSTER, GatewayStats } from './gatewayStats.js';

/** Envoy's retry_policy {retry_on: connect-failure,refused-stream,reset, num_retries: 1} (envoy/envoy.yaml). */
export const DEFAULT_CONNECT_RETRIES = 1;
/** Envoy's default route timeout. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 15_000;
/** Keep-alive sockets per upstream replica; vLLM serves many concurrent streams per replica. */
export const MAX_SOCKETS_PER_UPSTREAM = 256;

export interface GatewayOptions {
  host: ProxyWasmHost;
  listen?: { host?: string; port?: number };
  upstreamTimeoutMs?: number;
  /**
   * Retries after a connection failure or a reset before any response (Envoy retry_on:
   * connect-failure,refused-stream,reset); default 1. Where a retry goes is the selector's choice.
   */
  connectRetries?: number;
  /** Chooses each attempt's upstream; default originalDestination (ORIGINAL_DST, runner-up on a retry). */
  upstream?: UpstreamSelector;
  onAccessLog?: (e: AccessLogEntry) => void;
}

export interface Gateway {
  url: string;
  port: number;
  server: http.Server;
  /** The gateway's own stats (Envoy's http.* and cluster.* names), for the admin endpoint. */
  stats: StatsStore;
  close(): Promise<void>;
}

/** The gateway as a request handler (testable with any http.Server). */
export function createGatewayHandler(opts: GatewayOptions): { handle: http.RequestListener; stats: GatewayStats; close(): void } {
  const client = new UpstreamClient(MAX_SOCKETS_PER_UPSTREAM);
  const stats = new GatewayStats();
  const settings = {
    host: opts.host,
    client,
    upstream: opts.upstream ?? originalDestination,
    stats,
    timeoutMs: opts.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
    connectRetries: opts.connectRetries ?? DEFAULT_CONNECT_RETRIES,
    onAccessLog: opts.onAccessLog,
  };
  const handle: http.RequestListener = (req, res) => new GatewayExchange(settings, req, res).start();
  return { handle, stats, close: () => client.close() };
}

/** Starts the gateway on a socket. */
export function startGateway(opts: GatewayOptions): Promise<Gateway> {
  return serveGateway(createGatewayHandler(opts), opts.listen);
}

/** Serves a gateway request handler (this one's, or the Endpoint Picker mode's) on a socket, counting connections in its stats. */
export async function serveGateway(
  { handle, stats, close }: { handle: http.RequestListener; stats: GatewayStats; close(): void },
  at?: { host?: string; port?: number },
): Promise<Gateway> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handle);
  const connectionClosed = () => stats.cxActive.dec();
  server.on('connection', (socket: net.Socket) => {
    stats.cxTotal.inc();
    stats.cxActive.inc();
    socket.on('close', connectionClosed); // emitted once
  });
  // A bad request line or header from a client gets a 400 without touching the filter.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  const { url, port } = await listen(server, at?.host ?? '127.0.0.1', at?.port ?? 0);
  return {
    url,
    port,
    server,
    stats: stats.store,
    close: async () => {
      close();
      await closeServer(server);
    },
  };
}
