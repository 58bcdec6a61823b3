// Binds the control plane to a socket. `startControlPlane` is also the
// in-process entry for `npm start` (cli/start.ts) and tests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildControlPlane, type ControlPlane, type ControlPlaneDeps } from './app.js';
import { validateConfig, type ControlPlaneConfig } from './config.js';
import type { RouterState } from './stateWire.js';
import type { WeightsRecord } from './weights.js';

/** Idle keep-alive kept open between long polls, so filters reuse their connection. */
const KEEP_ALIVE_MS = 65_000;

export type StartControlPlaneOptions = Partial<ControlPlaneConfig> & ControlPlaneDeps;

export interface RunningControlPlane {
  /** The address bound, e.g. http://127.0.0.1:40123 or http://0.0.0.0:9090 */
  url: string;
  host: string;
  port: number;
  app: ControlPlane;
  config: ControlPlaneConfig;
  state(): RouterState;
  weights(): WeightsRecord;
  /** `{profile: "latency"}` or a (partial) `{prefix, queue, kvCache, inflight}`; throws WeightsInputError (weights.ts) on bad input */
  setWeights(update: unknown): Promise<WeightsRecord>;
  close(): Promise<void>;
}

/** Serves an already-built control plane on host:port; resolves once listening. */
export async function serve(app: ControlPlane, config: ControlPlaneConfig): Promise<RunningControlPlane> {
  const server = http.createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, (req, res) => app.handle(req, res));
  // Long polls are held up to maxLongPollMs; the default request timeout must not cut them.
  server.requestTimeout = config.maxLongPollMs + 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address() as AddressInfo;
  const port = bound.port;
  // The address actually bound (0.0.0.0 stays 0.0.0.0), as the gateway reports its own.
  const hostForUrl = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  try {
    await app.start();
  } catch (e) {
    await app.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    throw e;
  }
  let closing: Promise<void> | null = null;
  return {
    url: `http://${hostForUrl}:${port}`, host: config.host, port, app, config,
    state: () => app.store.state,
    weights: () => app.weights(),
    setWeights: (u) => app.setWeights(u),
    close() {
      closing ??= (async () => {
        await app.close(); // answers waiting polls (304) first
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
        await closed;
      })();
      return closing;
    },
  };
}

/**
 * Starts a control plane in this process. Options are config fields
 * (validated like the CLI's) plus dependencies (token, logger, discovery, ...).
 * Unlike the CLI, the port defaults to 0 (any free port); read `.url`.
 */
export async function startControlPlane(options: StartControlPlaneOptions = {}): Promise<RunningControlPlane> {
  const { logger, token, discovery, kubeConfig, weightsStore, onScrape, ...raw } = options;
  const defined = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const config = validateConfig({ port: 0, ...defined });
  const app = await buildControlPlane(config, { logger, token, discovery, kubeConfig, weightsStore, onScrape });
  return serve(app, config);
}
