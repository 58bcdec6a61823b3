// The routers of a side-by-side run and how each is launched on a set of replicas: round robin
// (bench/peers/roundRobinProxy.ts), prefix-router as deployed (the control plane in its own process,
// one gateway of 1 or 4 worker VMs or a fleet of gateways polling it; or `prefix-router start`, both
// in one process), and the peers from npm run peers:install (sglang-router,
// smg and vllm-router with --policy cache_aware --worker-urls; llm-d's epp, and the inference
// extension's, behind the gateway's Endpoint Picker mode). A peer that is not installed is skipped
// with the reason install recorded.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, waitForHttp, type Child } from './processes.js';
import { SERVER_NODE_FLAGS } from '../../cli/serverNodeFlags.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PEERS_DIR = process.env.PREFIX_ROUTER_PEERS_DIR ?? join(REPO, '.peers');

export interface RunningRouter {
  url: string;
  /** Where a load balancer spreads the requests over, in turn, when the router has several entry points (several gateways); absent: `url` alone. */
  entryUrls?: string[];
  /** The processes whose CPU is the router's. */
  pids: number[];
  /** Those of `pids` off the request path (prefix-router's control plane, which a cluster runs in a pod of its own). */
  controlPids?: number[];
  stop(): Promise<void>;
}

export interface RouterSpec {
  name: string;
  /** What it is, where the name alone does not say. */
  label?: string;
  /** null when it can run here; else why it is skipped. */
  unavailable(): string | null;
  start(replicaUrls: string[], logFile: string): Promise<RunningRouter>;
}

/**
 * `node dist/prefix-router.js` when built, else the TypeScript entry through tsx; `bundle`: another
 * build's dist/prefix-router.js. With the server processes' V8 flags, as the bin and the image run it.
 */
export function prefixRouterCommand(bundle?: string): { command: string; args: string[] } {
  const node = (...args: string[]) => ({ command: process.execPath, args: [...SERVER_NODE_FLAGS, ...args] });
  if (bundle) return node(bundle);
  const dist = join(REPO, 'dist/prefix-router.js');
  if (existsSync(dist)) return node(dist);
  return node('--import', 'tsx', join(REPO, 'cli/prefix-router.ts'));
}

/** The filter module of this tree, or of the build `bundle` belongs to (its dist/../plugin/). */
export function filterModule(bundle?: string): string {
  return bundle ? join(dirname(bundle), '../plugin/prefix-router.wasm') : join(REPO, 'plugin/prefix-router.wasm');
}

/** null when prefix-router from `bundle` (or this tree) can run, else why not. */
export function prefixRouterUnavailable(bundle?: string): string | null {
  if (bundle && !existsSync(bundle)) return `${bundle} is missing`;
  return existsSync(filterModule(bundle)) ? null : `${filterModule(bundle)} is missing (npm run build)`;
}

/** What peers:install recorded for a peer, or null. */
function installStatus(peer: string): { ok: boolean; detail: string } | null {
  const file = join(PEERS_DIR, 'status.tsv');
  if (!existsSync(file)) return null;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, state, detail] = line.split('\t');
    if (name === peer) return { ok: state === 'ok', detail: detail ?? '' };
  }
  return null;
}

const STARTUP_TIMEOUT_MS = 60_000;

/** Starts a router process listening on `port` and waits until GET /v1/models answers through it. */
export async function launch(name: string, port: number, command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Promise<RunningRouter> {
  const child: Child = startChild(name, command, args, logFile, env);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/v1/models`, child, STARTUP_TIMEOUT_MS);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return { url, pids: [child.pid], stop: () => child.stop() };
}

function pythonPeer(name: string, exe: string, sub: string[], extra: (port: number, metricsPort: number) => string[]): RouterSpec {
  const bin = join(PEERS_DIR, 'venv/bin', exe);
  return {
    name,
    unavailable: () => {
      if (existsSync(bin)) return null;
      const s = installStatus(name);
      return s && !s.ok ? `not installed: ${s.detail}` : `not installed (run npm run peers:install; no ${bin})`;
    },
    start: async (replicaUrls, logFile) => {
      const port = await freePort();
      const metricsPort = await freePort();
      return launch(name, port, bin, [...sub, '--worker-urls', ...replicaUrls, '--policy', 'cache_aware', '--host', '127.0.0.1', '--port', String(port), ...extra(port, metricsPort)], logFile,
        { ...process.env, HF_HUB_OFFLINE: '1', NO_COLOR: '1' });
    },
  };
}

/** One request in this many logs the filter's decision record (plugin/METRICS.md) in the router's log, for per-request analysis; 0: none. */
const decisionLogEvery = (): number => Number(process.env.BENCH_PEERS_DECISION_LOG_EVERY ?? 0);
/** The filter's log level: info where its decision records are wanted. */
const filterLogLevel = (every: number): string => (every > 0 ? 'info' : 'warn');
/** A standalone gateway's route timeout, as `prefix-router start`'s: a long generation on a busy replica outlasts Envoy's 15 s default. */
const GATEWAY_UPSTREAM_TIMEOUT_MS = '300000';

/**
 * `prefix-router start --upstream` with `workers` VMs: the control plane and the gateway in one
 * process, as a user runs it on one machine (its scrapes and long poll share the gateway's event loop).
 */
export function prefixRouterStart(name: string, workers: number, bundle?: string): RouterSpec {
  return {
    name,
    unavailable: () => prefixRouterUnavailable(bundle),
    start: async (replicaUrls, logFile) => {
      const port = await freePort();
      const cpPort = await freePort();
      const adminPort = await freePort(); // never the default 9901: another stack on this machine may hold it
      const { command, args } = prefixRouterCommand(bundle);
      const every = decisionLogEvery();
      const router = await launch(name, port, command, [...args, 'start', '--upstream', replicaUrls.join(','), '--port', String(port), '--control-plane-port', String(cpPort), '--admin-port', String(adminPort), '--workers', String(workers), '--log-level', filterLogLevel(every)], logFile);
      if (every > 0) await fetch(`http://127.0.0.1:${cpPort}/v1/observability`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ decisionLogEvery: every }) });
      return router;
    },
  };
}

/**
 * `gateways` prefix-router gateways of `workers` VMs each polling one control plane, each in its own
 * process; from `bundle` (another build's dist/prefix-router.js) instead of this tree's build when
 * given. One gateway is prefix-router as deployed: the control plane in a process of its own, polled
 * as Envoy polls the control plane's Deployment. The router's CPU is all its processes'. Several
 * gateways stand behind an L4 load balancer: each learns the others' placements, work and content
 * through the control plane's state (plugin/STATE_FORMAT.md, "Gateway fleet"); the load generator
 * sends request i to gateway i mod `gateways`.
 */
export function prefixRouterFleet(name: string, gateways: number, workers: number, bundle?: string): RouterSpec {
  const vms = `${workers} worker VM${workers === 1 ? '' : 's'}`;
  return {
    name,
    label: gateways === 1
      ? `the control plane in its own process and one gateway of ${vms} polling it, as deployed`
      : `${gateways} gateways of ${vms} each, one control plane, each in its own process; requests spread over the gateways in turn`,
    unavailable: () => prefixRouterUnavailable(bundle),
    start: async (replicaUrls, logFile) => {
      const { command, args } = prefixRouterCommand(bundle);
      const cpPort = await freePort();
      const every = decisionLogEvery();
      const cp = startChild(`${name} control plane`, command, [...args, 'control-plane', '--replicas', replicaUrls.join(','), '--port', String(cpPort),
        '--log-level', 'warn', '--decision-log-every', String(every)], logFile);
      const children: Child[] = [cp];
      const stop = async () => { for (const c of [...children].reverse()) await c.stop(); };
      const config = JSON.stringify({ controlPlane: { cluster: 'prefix_router_control_plane' } });
      const urls: string[] = [];
      try {
        await waitForHttp(`http://127.0.0.1:${cpPort}/readyz`, cp, STARTUP_TIMEOUT_MS);
        for (let g = 0; g < gateways; g++) {
          const port = await freePort();
          children.push(startChild(`${name} gateway ${g}`, command, [...args, 'gateway', '--wasm', filterModule(bundle), '--config', config,
            '--cluster', `prefix_router_control_plane=http://127.0.0.1:${cpPort}`, '--workers', String(workers), '--port', String(port),
            '--upstream-timeout-ms', GATEWAY_UPSTREAM_TIMEOUT_MS, '--log-level', filterLogLevel(every)], logFile));
          urls.push(`http://127.0.0.1:${port}`);
        }
        for (const url of urls) await waitForHttp(`${url}/v1/models`, children, STARTUP_TIMEOUT_MS);
      } catch (e) {
        await stop();
        throw e;
      }
      return { url: urls[0]!, entryUrls: urls, pids: children.map((c) => c.pid), controlPids: [cp.pid], stop };
    },
  };
}

const roundRobin: RouterSpec = {
  name: 'round-robin',
  unavailable: () => null,
  start: async (replicaUrls, logFile) => {
    const port = await freePort();
    return launch('round-robin', port, process.execPath, ['--import', 'tsx', join(REPO, 'bench/peers/roundRobinProxy.ts'), String(port), ...replicaUrls], logFile);
  },
};

/**
 * The gie-epp command line (bench/peers/gie-epp): the stock epp flags but for its pool, which
 * gie-epp makes from --endpoints. Plaintext gRPC (--secure-serving=false), as the gateway connects;
 * no tracing exporter and no authentication on its metrics port, neither of which exists here.
 */
export function gieEppArgs(o: { endpoints: string[]; grpcPort: number; healthPort: number; metricsPort: number }): string[] {
  return ['--endpoints', o.endpoints.join(','), '--grpc-port', String(o.grpcPort), '--grpc-health-port', String(o.healthPort),
    '--metrics-port', String(o.metricsPort), '--secure-serving=false', '--tracing=false', '--metrics-endpoint-auth=false'];
}

/** A replica URL as the IP:PORT endpoint a picker returns (pods are addressed by IP). */
export function endpointOf(replicaUrl: string): string {
  const u = new URL(replicaUrl);
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(u.hostname) || u.port === '') throw new Error(`a picker endpoint needs an IPv4 address and a port; got ${replicaUrl}`);
  return `${u.hostname}:${u.port}`;
}

/**
 * `prefix-router gateway --picker` in front of a picker process, as a gateway fronts an
 * InferencePool: the router's CPU is both processes'.
 */
async function behindPickerGateway(name: string, picker: { command: string; args: string[]; grpcPort: number }, logFile: string): Promise<RunningRouter> {
  const pickerChild = startChild(`${name} picker`, picker.command, picker.args, logFile);
  const port = await freePort();
  const { command, args } = prefixRouterCommand();
  const gateway = startChild(`${name} gateway`, command, [...args, 'gateway', '--picker', `127.0.0.1:${picker.grpcPort}`, '--port', String(port), '--upstream-timeout-ms', GATEWAY_UPSTREAM_TIMEOUT_MS], logFile);
  const stop = async () => { await gateway.stop(); await pickerChild.stop(); };
  const url = `http://127.0.0.1:${port}`;
  try {
    // Through the picker: 503 until it has synced the pool and its endpoints.
    await waitForHttp(`${url}/v1/models`, [pickerChild, gateway], STARTUP_TIMEOUT_MS);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, pids: [pickerChild.pid, gateway.pid], stop };
}

/** The inference extension's endpoint picker v1.5.0 (bench/peers/gie-epp, built by peers:install). */
const gieEpp: RouterSpec = {
  name: 'gie-epp',
  label: "the inference extension's endpoint picker v1.5.0 (the code llm-d's router grew from), default profile, behind prefix-router gateway --picker",
  unavailable: () => {
    if (existsSync(join(PEERS_DIR, 'bin/gie-epp'))) return null;
    const s = installStatus('gie-epp');
    return s && !s.ok ? `not installed: ${s.detail}` : `not built (run npm run peers:install; no ${join(PEERS_DIR, 'bin/gie-epp')})`;
  },
  start: async (replicaUrls, logFile) => {
    const [grpcPort, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const args = gieEppArgs({ endpoints: replicaUrls.map(endpointOf), grpcPort, healthPort, metricsPort });
    return behindPickerGateway('gie-epp', { command: join(PEERS_DIR, 'bin/gie-epp'), args, grpcPort }, logFile);
  },
};

/** llm-d's endpoint picker: runs only when peers:install could build it. */
const llmdEpp: RouterSpec = {
  name: 'llm-d-epp',
  unavailable: () => {
    const s = installStatus('llm-d-epp');
    if (existsSync(join(PEERS_DIR, 'bin/epp'))) return 'built, but bench:peers has no launcher for it yet (file-discovery config and the gateway in --endpoint-picker mode)';
    return s && !s.ok ? `not installed: ${s.detail}` : 'not installed (run npm run peers:install)';
  },
  start: () => Promise.reject(new Error('llm-d-epp cannot run here')),
};

/** The suffix of a prefix-router layout run from another build (bench:peers --baseline). */
export const BASELINE_SUFFIX = '@baseline';

interface Layout { gateways: number; workers: number; start?: boolean; namedOnly?: boolean }

/**
 * Every prefix-router layout, each runnable from another build too: gateways of worker VMs each. The
 * named-only ones: `prefix-router start`'s one process; four gateways; a standalone Envoy's worker per
 * hardware thread on a 16-core node; and Istio's ingress, two gateway replicas of two workers.
 */
const LAYOUTS: Record<string, Layout> = {
  'prefix-router': { gateways: 1, workers: 1 },
  'prefix-router/4-workers': { gateways: 1, workers: 4 },
  'prefix-router/2-gateways': { gateways: 2, workers: 1 },
  'prefix-router/start': { gateways: 1, workers: 1, start: true, namedOnly: true },
  'prefix-router/4-gateways': { gateways: 4, workers: 1, namedOnly: true },
  'prefix-router/16-workers': { gateways: 1, workers: 16, namedOnly: true },
  'prefix-router/2-gateways-2-workers': { gateways: 2, workers: 2, namedOnly: true },
};

const layoutRouter = (name: string, layout: Layout, bundle?: string): RouterSpec =>
  layout.start ? prefixRouterStart(name, layout.workers, bundle) : prefixRouterFleet(name, layout.gateways, layout.workers, bundle);
const layoutRouters = (namedOnly: boolean): RouterSpec[] =>
  Object.entries(LAYOUTS).filter(([, l]) => (l.namedOnly ?? false) === namedOnly).map(([name, l]) => layoutRouter(name, l));

export const ROUTERS: RouterSpec[] = [
  roundRobin,
  ...layoutRouters(false),
  pythonPeer('sglang-router', 'sglang-router', ['launch'], (_p, m) => ['--prometheus-port', String(m), '--log-level', 'warn']),
  pythonPeer('smg', 'smg', ['launch'], (_p, m) => ['--prometheus-port', String(m), '--log-level', 'warn']),
  pythonPeer('vllm-router', 'vllm-router', [], (_p, m) => ['--prometheus-port', String(m), '--log-level', 'warning']),
  llmdEpp,
  gieEpp,
];

/** Routers run only when named: the named-only prefix-router layouts. */
export const NAMED_ONLY_ROUTERS: RouterSpec[] = layoutRouters(true);

/** The prefix-router layouts, for the usage text. */
export const LAYOUT_NAMES: string[] = Object.keys(LAYOUTS);

/** Whether `name` is a prefix-router layout another build can run as NAME@baseline. */
export const hasBaselineLayout = (name: string): boolean => name in LAYOUTS;

/**
 * The router of that name, of the default set or named only; NAME@baseline: the prefix-router
 * layout NAME from `baseline` (another build's dist/prefix-router.js); undefined when unknown.
 */
export function routerNamed(name: string, baseline?: string): RouterSpec | undefined {
  if (baseline !== undefined && name.endsWith(BASELINE_SUFFIX)) {
    const layout = LAYOUTS[name.slice(0, -BASELINE_SUFFIX.length)];
    return layout ? layoutRouter(name, layout, baseline) : undefined;
  }
  return ROUTERS.find((r) => r.name === name) ?? NAMED_ONLY_ROUTERS.find((r) => r.name === name);
}

/** Every router name, for usage and errors. */
export const ROUTER_NAMES = [...ROUTERS, ...NAMED_ONLY_ROUTERS].map((r) => r.name);
