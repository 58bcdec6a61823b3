// `prefix-router start` (npm start): the whole product on this machine. Simulated vLLM replicas
// (or real ones with --upstream), the control plane scraping them, and the embedded gateway
// running plugin/prefix-router.wasm, which long-polls the control plane through the cluster
// `prefix_router_control_plane` (in process: no socket between the two). Ctrl-C (SIGINT/SIGTERM) stops everything.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { intFlags } from './toolArgs.js';
import { startReplicas, type RunningReplicas } from '../simulator/server.js';
import { startControlPlane, type RunningControlPlane } from '../control-plane/server.js';
import { isLoopbackHost } from '../control-plane/config.js';
import { ProxyWasmHost } from '../host/index.js';
import { startGateway, type Gateway } from '../host/gateway.js';
import { DEFAULT_ADMIN_PORT, startAdmin, type AdminServer } from '../host/admin.js';

/** The embedded gateway's buffer limit, as envoy/envoy.yaml's per_connection_buffer_limit_bytes. */
const START_BUFFER_LIMIT_BYTES = 4 * 1024 * 1024;
import type { LogLevel } from '../control-plane/log.js';

export const CONTROL_PLANE_CLUSTER = 'prefix_router_control_plane';
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';

// plugin/ sits one level above both cli/ (tsx) and dist/ (the esbuild bundle).
const DEFAULT_WASM = fileURLToPath(new URL('../plugin/prefix-router.wasm', import.meta.url));

export interface StartOptions {
  host: string;
  /** Gateway port (0 = any free port). */
  port: number;
  /** The gateway's admin port: Prometheus stats at /stats/prometheus (0 = any free port). */
  adminPort: number;
  controlPlanePort: number;
  /** Port of simulated replica 0; replica i gets simulatorBasePort + i (0 = any free ports). */
  simulatorBasePort: number;
  replicasCount: number;
  /** Real replicas (http://ip:port) instead of simulated ones. */
  upstream?: string[];
  timeScale: number;
  workers: number;
  wasm: string;
  upstreamTimeoutMs: number;
  /** How long to wait for every replica to be routable before reporting; the stack keeps running anyway. */
  readyTimeoutMs: number;
  logLevel: LogLevel;
  /** Print each request (method, path, status, replica, time). */
  accessLog: boolean;
}

export const START_DEFAULTS: StartOptions = {
  host: '127.0.0.1',
  port: 8080,
  adminPort: DEFAULT_ADMIN_PORT, // Envoy's admin port in its examples
  controlPlanePort: 9090, // where `prefix-router weights` looks by default
  simulatorBasePort: 8001,
  replicasCount: 3, // the seed deployment's replica count
  timeScale: 1,
  workers: 2, // Envoy-style worker VMs; shows cross-worker shared state at work
  wasm: DEFAULT_WASM,
  upstreamTimeoutMs: 300_000, // a long generation on a busy T4 takes minutes; Envoy's 15 s default would cut it
  readyTimeoutMs: 15_000,
  logLevel: 'warn',
  accessLog: false,
};

export interface RunningStack {
  gatewayUrl: string;
  /** The gateway's admin listener (GET /stats/prometheus). */
  adminUrl: string;
  controlPlaneUrl: string;
  /** Replica base URLs; simulated ones also carry their names. */
  replicas: { name: string; url: string }[];
  simulated: boolean;
  ready: boolean;
  /** Who may change weights: token holders, anyone on this machine (loopback, no token), or nobody (no token, network bind). */
  weightWrites: 'token' | 'loopback' | 'refused';
  close(): Promise<void>;
}

export class StartUsageError extends Error {}

function parseUpstream(list: string): string[] {
  const out = list.split(',').map((s) => s.trim()).filter(Boolean).map((raw) => {
    let u: URL;
    try {
      u = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
    } catch {
      throw new StartUsageError(`--upstream: '${raw}' is not http://ip:port`);
    }
    if (u.protocol !== 'http:' || !u.port || (u.pathname !== '/' && u.pathname !== '')) throw new StartUsageError(`--upstream: '${raw}' must be http://ip:port`);
    // the filter hands the gateway ip:port (ORIGINAL_DST): names are not resolved
    if (!/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i.test(u.hostname)) throw new StartUsageError(`--upstream: '${raw}' needs a literal IP address, not a host name`);
    return `http://${u.host}`;
  });
  if (out.length === 0) throw new StartUsageError('--upstream: no replica given');
  return out;
}

/** Starts replicas, control plane and gateway; on any failure closes what it started and throws. */
export async function startStack(partial: Partial<StartOptions> = {}): Promise<RunningStack> {
  const o: StartOptions = { ...START_DEFAULTS, ...partial };
  if (!existsSync(o.wasm)) throw new StartUsageError(`the filter module is missing at ${o.wasm}; build it with npm run build:wasm`);
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    let sims: RunningReplicas | null = null;
    let replicas: { name: string; url: string }[];
    if (o.upstream?.length) {
      replicas = o.upstream.map((url, i) => ({ name: `upstream-${i}`, url }));
    } else {
      sims = await startReplicas({ replicas: o.replicasCount, host: o.host, basePort: o.simulatorBasePort, timeScale: o.timeScale, model: MODEL });
      closers.push(() => sims!.close());
      replicas = sims.replicas.map((r) => ({ name: r.name, url: r.url }));
    }

    const token = process.env.PREFIX_ROUTER_API_TOKEN?.trim() || null;
    // Without a token, weights are writable on a loopback bind only: anything else reaches the network.
    const weightWrites = token !== null ? 'token' : isLoopbackHost(o.host) ? 'loopback' : 'refused';
    const cp: RunningControlPlane = await startControlPlane({
      host: o.host,
      port: o.controlPlanePort,
      replicas: replicas.map((r) => r.url),
      logLevel: o.logLevel,
      token,
      allowUnauthenticatedWrites: weightWrites === 'loopback',
    });
    closers.push(() => cp.close());

    const host = await ProxyWasmHost.create({
      wasm: o.wasm,
      workers: o.workers,
      // The embedded gateway retries a failed connection on the runner-up the filter names.
      pluginConfig: JSON.stringify({ controlPlane: { cluster: CONTROL_PLANE_CLUSTER }, fallbackHeader: true, debugHeaders: true }),
      // The control plane is in this process: the filter's long poll reaches it without a socket
      // (the same route, checks and answers as over HTTP; routes/state.ts, statePollCall).
      clusters: { [CONTROL_PLANE_CLUSTER]: cp.app.stateCall },
      logLevel: o.logLevel,
      // Above the filter's maxBodyBytes (1 MiB), as envoy/envoy.yaml's 4 MiB: a larger prompt is
      // routed on load alone by the filter instead of refused with 413 by the proxy.
      bufferLimitBytes: START_BUFFER_LIMIT_BYTES,
    });
    closers.push(() => host.close());

    const gw: Gateway = await startGateway({
      host,
      listen: { host: o.host, port: o.port },
      upstreamTimeoutMs: o.upstreamTimeoutMs,
      onAccessLog: o.accessLog
        ? (e) => process.stdout.write(`${e.method} ${e.path} ${e.status} ${e.endpoint ?? '-'} ${e.details} ${e.durationMs.toFixed(1)}ms wasm=${e.wasmUs.toFixed(0)}us\n`)
        : undefined,
    });
    closers.push(() => gw.close());

    const admin: AdminServer = await startAdmin({ host, stats: gw.stats, listen: { host: o.host, port: o.adminPort } });
    closers.push(() => admin.close());

    const ready = await waitUntilRoutable(cp.url, gw.url, replicas.length, o.readyTimeoutMs);
    let closing: Promise<void> | null = null;
    return { gatewayUrl: gw.url, adminUrl: admin.url, controlPlaneUrl: cp.url, replicas, simulated: sims !== null, ready, weightWrites, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** True once the control plane sees every replica ready and the gateway routes a request. */
async function waitUntilRoutable(controlPlaneUrl: string, gatewayUrl: string, replicas: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const pause = () => new Promise((r) => setTimeout(r, 100));
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${controlPlaneUrl}/v1/replicas`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { replicas?: { ready?: boolean }[] };
      if ((body.replicas ?? []).filter((r) => r.ready).length >= replicas) break;
    } catch { /* not up yet */ }
    await pause();
  }
  while (Date.now() < deadline) {
    try {
      // goes through the filter: 200 once it holds a state with ready replicas (503 before)
      const res = await fetch(`${gatewayUrl}/v1/models`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch { /* retry */ }
    await pause();
  }
  return false;
}

const USAGE = `usage: prefix-router start [options]
Runs simulated vLLM replicas (or real ones), the control plane and the embedded gateway with the filter.
  --port N                 gateway port (default ${START_DEFAULTS.port})
  --admin-port N           gateway admin port: Prometheus stats at /stats/prometheus (default ${START_DEFAULTS.adminPort})
  --host ADDR              address everything binds to (default ${START_DEFAULTS.host})
  --replicas-count N       simulated replicas (default ${START_DEFAULTS.replicasCount})
  --simulator-base-port N  port of simulated replica 0, then +1... (default ${START_DEFAULTS.simulatorBasePort})
  --time-scale F           simulated replicas run F times faster than real time (default 1)
  --upstream URL,...       real vLLM replicas (http://ip:port,...) instead of simulated ones
  --control-plane-port N   control plane port (default ${START_DEFAULTS.controlPlanePort})
  --workers N              gateway worker VMs (default ${START_DEFAULTS.workers})
  --wasm FILE              filter module (default plugin/prefix-router.wasm)
  --log-level LEVEL        debug|info|warn|error (default ${START_DEFAULTS.logLevel})
  --access-log             print one line per request
Weight writes need the token in PREFIX_ROUTER_API_TOKEN when it is set, or when --host is not a loopback
address (without one they are then refused); on loopback without it, anyone on this machine may write.`;

const WEIGHT_WRITES_NOTE: Record<RunningStack['weightWrites'], string> = {
  token: 'writes need the token in PREFIX_ROUTER_API_TOKEN',
  loopback: 'writes need no token: this stack is bound to loopback',
  refused: 'writes are REFUSED: bound beyond loopback without a token; set PREFIX_ROUTER_API_TOKEN to allow them',
};

export function parseStartArgs(args: string[]): Partial<StartOptions> | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' }, 'admin-port': { type: 'string' }, host: { type: 'string' }, 'replicas-count': { type: 'string' }, 'simulator-base-port': { type: 'string' },
        'time-scale': { type: 'string' }, upstream: { type: 'string' }, 'control-plane-port': { type: 'string' }, workers: { type: 'string' },
        wasm: { type: 'string' }, 'log-level': { type: 'string' }, 'access-log': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new StartUsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const int = intFlags((message) => { throw new StartUsageError(message); });
  const o: Partial<StartOptions> = {
    port: int('port', values.port, undefined, 0, 65535),
    adminPort: int('admin-port', values['admin-port'], undefined, 0, 65535),
    controlPlanePort: int('control-plane-port', values['control-plane-port'], undefined, 0, 65535),
    simulatorBasePort: int('simulator-base-port', values['simulator-base-port'], undefined, 0, 65535),
    replicasCount: int('replicas-count', values['replicas-count'], undefined, 1, 64),
    workers: int('workers', values.workers, undefined, 1, 64),
    host: values.host,
    wasm: values.wasm,
    accessLog: values['access-log'],
  };
  if (values['time-scale'] !== undefined) {
    const f = Number(values['time-scale']);
    if (!(f > 0) || !Number.isFinite(f)) throw new StartUsageError(`--time-scale: expected a number > 0, got '${values['time-scale']}'`);
    o.timeScale = f;
  }
  if (values['log-level'] !== undefined) {
    if (!['debug', 'info', 'warn', 'error'].includes(values['log-level'])) throw new StartUsageError(`--log-level: expected debug|info|warn|error, got '${values['log-level']}'`);
    o.logLevel = values['log-level'] as LogLevel;
  }
  if (values.upstream !== undefined) {
    if (values['replicas-count'] !== undefined) throw new StartUsageError('--upstream and --replicas-count exclude each other');
    o.upstream = parseUpstream(values.upstream);
  }
  for (const k of Object.keys(o) as (keyof StartOptions)[]) if (o[k] === undefined) delete o[k];
  return o;
}

export async function runStartCli(args: string[]): Promise<number> {
  let o;
  try {
    o = parseStartArgs(args);
  } catch (err) {
    console.error(`prefix-router start: ${(err as Error).message}\nrun 'prefix-router start --help' for the options`);
    return 2;
  }
  if (o === 'help') { console.log(USAGE); return 0; }
  let stack: RunningStack;
  console.log(`starting the control plane and the gateway${o.upstream ? '' : `, with ${o.replicasCount ?? START_DEFAULTS.replicasCount} simulated replicas`}...`);
  try {
    stack = await startStack(o);
  } catch (err) {
    console.error(`prefix-router start: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const cp = stack.controlPlaneUrl;
  const lines = [
    `prefix-router is running${stack.ready ? '' : ' (WARNING: not every replica was routable yet; check the control plane replica list)'}`,
    '',
    `  gateway (send OpenAI requests here)  ${stack.gatewayUrl}/v1`,
    `  gateway stats (Prometheus)           ${stack.adminUrl}/stats/prometheus   (plugin/METRICS.md)`,
    ...stack.replicas.map((r) => `  ${stack.simulated ? 'simulated replica' : 'upstream replica '}  ${r.name.padEnd(18)} ${r.url}`),
    `  control plane                        ${cp}`,
    `    state     GET ${cp}/v1/state`,
    `    replicas  GET ${cp}/v1/replicas`,
    `    weights   GET|PUT ${cp}/v1/weights   (prefix-router weights set --profile latency --url ${cp})`,
    `              ${WEIGHT_WRITES_NOTE[stack.weightWrites]}`,
    '',
    'try:',
    `  curl -s ${stack.gatewayUrl}/v1/chat/completions -H 'content-type: application/json' \\`,
    `    -d '{"model": "${MODEL}", "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 32}' -i`,
    '  (response header x-prefix-router-endpoint names the replica that answered)',
    `  npm run bench -- --gateway ${stack.gatewayUrl} --control-plane ${cp}`,
    `  npx prefix-router top --control-plane ${cp} --admin ${stack.adminUrl}   (live view per replica)`,
    `  curl -X PUT ${cp}/v1/observability -H 'content-type: application/json' -d '{"decisionLogEvery": 10}'`,
    '    (why one request in 10 went where it did: response header x-prefix-router-decision, and a JSON log line with --log-level info)',
    '',
    'Ctrl-C to stop',
  ];
  console.log(lines.join('\n'));
  await new Promise<void>((resolve) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  console.log('stopping...');
  await stack.close();
  return 0;
}
