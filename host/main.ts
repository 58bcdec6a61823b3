// `prefix-router gateway`: the filter in our proxy-wasm host behind a local HTTP listener.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { LOG_LEVELS, LogLevelName } from './abi.js';
import { ProxyWasmHost, type HostOptions } from './proxyWasmHost.js';
import { startGateway } from './gateway.js';
import { startAdmin, type AdminServer } from './admin.js';
import { runPickerGatewayCli } from './endpointPicker/main.js';

const USAGE = `usage: prefix-router gateway --wasm FILE --config FILE|JSON [options]

Runs the proxy-wasm filter in the embedded host (one VM per worker, as Envoy)
in front of the replicas it picks (ORIGINAL_DST on x-gateway-destination-endpoint).

  --wasm FILE                 the filter module (default plugin/prefix-router.wasm)
  --config FILE|JSON          plugin configuration (a JSON file path or inline JSON)
  --cluster NAME=URL          an Envoy cluster for proxy_http_call, e.g.
                              prefix_router_control_plane=http://127.0.0.1:9090 (repeatable)
  --workers N                 worker VMs (default 2)
  --host ADDR                 listen address (default 127.0.0.1)
  --port N                    listen port (default 8080; 0 = any free port)
  --admin-port N              admin listener (GET /stats/prometheus) on the same address;
                              Envoy's examples use 9901 (default: none)
  --log-level LEVEL           trace|debug|info|warn|error|critical (default info)
  --buffer-limit BYTES        body buffer limit before 413 (default 1048576)
  --upstream-timeout-ms N     route timeout (default 15000)
  --fail-open                 on a VM failure pass requests unfiltered instead of 503
  --access-log                print one line per request
  -h, --help                  this text

With --picker HOST:PORT (or --endpoint-picker) the gateway asks an Endpoint Picker (ext_proc:
\`prefix-router picker\`, or the inference extension's) instead of running the filter itself;
--picker x --help lists that mode's options.
`;

export class UsageError extends Error {}

export function positiveInt(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be a whole number >= ${min}; got '${v}'`);
  return Number(v);
}

/** The filter's own flags, shared by `gateway` and `picker`. */
export const FILTER_OPTIONS = {
  wasm: { type: 'string' },
  config: { type: 'string' },
  cluster: { type: 'string', multiple: true },
  workers: { type: 'string' },
  'log-level': { type: 'string' },
  'buffer-limit': { type: 'string' },
} as const;

export interface FilterCliConfig {
  wasm: string;
  pluginConfig: string;
  clusters: Record<string, string>;
  logLevel: LogLevelName;
  bufferLimitBytes: number;
}

/** Checks the FILTER_OPTIONS flags (--workers is the caller's: defaults differ); throws UsageError naming the bad one. */
export function parseFilterOptions(v: { wasm?: string; config?: string; cluster?: string[]; 'log-level'?: string; 'buffer-limit'?: string }): FilterCliConfig {
  const wasm = v.wasm ?? 'plugin/prefix-router.wasm';
  if (!existsSync(wasm)) throw new UsageError(`--wasm: no file at '${wasm}' (build it with npm run build:wasm)`);
  if (v.config === undefined) throw new UsageError('--config is required (a JSON file or inline JSON, see plugin/CONFIG.md)');
  let pluginConfig = v.config;
  if (!pluginConfig.trimStart().startsWith('{') && !pluginConfig.trimStart().startsWith('[')) {
    if (!existsSync(pluginConfig)) throw new UsageError(`--config: '${pluginConfig}' is neither inline JSON nor an existing file`);
    pluginConfig = readFileSync(pluginConfig, 'utf8');
  }
  const clusters: Record<string, string> = {};
  for (const c of v.cluster ?? []) {
    const i = c.indexOf('=');
    if (i <= 0) throw new UsageError(`--cluster must be NAME=URL; got '${c}'`);
    const url = c.slice(i + 1);
    try {
      if (new URL(url).protocol !== 'http:') throw new Error();
    } catch {
      throw new UsageError(`--cluster ${c.slice(0, i)}: '${url}' is not an http:// URL`);
    }
    clusters[c.slice(0, i)] = url;
  }
  const logLevel = (v['log-level'] ?? 'info') as LogLevelName;
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join('|')}; got '${logLevel}'`);
  return { wasm, pluginConfig, clusters, logLevel, bufferLimitBytes: positiveInt('buffer-limit', v['buffer-limit'], 1024 * 1024, 0) };
}

/** The filter's VMs for a command; null, after saying why on stderr, when the module or its configuration is refused. */
export async function startFilterHost(command: string, cfg: FilterCliConfig & { workers: number }, extra: Partial<HostOptions> = {}): Promise<ProxyWasmHost | null> {
  try {
    return await ProxyWasmHost.create({
      wasm: cfg.wasm, workers: cfg.workers, pluginConfig: cfg.pluginConfig, clusters: cfg.clusters,
      logLevel: cfg.logLevel, bufferLimitBytes: cfg.bufferLimitBytes, ...extra,
    });
  } catch (e) {
    process.stderr.write(`prefix-router ${command}: the filter did not start: ${e instanceof Error ? e.message : String(e)}\n`);
    return null;
  }
}

/** Resolves on SIGINT or SIGTERM. */
export function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

export interface GatewayCliConfig extends FilterCliConfig {
  workers: number;
  host: string;
  port: number;
  /** Admin listener port, or null for none. */
  adminPort: number | null;
  upstreamTimeoutMs: number;
  failOpen: boolean;
  accessLog: boolean;
}

/** Parses and checks the flags; throws UsageError naming the bad flag. */
export function parseGatewayArgs(args: string[]): GatewayCliConfig | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: false,
      options: {
        ...FILTER_OPTIONS,
        host: { type: 'string' },
        port: { type: 'string' },
        'admin-port': { type: 'string' },
        'upstream-timeout-ms': { type: 'string' },
        'fail-open': { type: 'boolean' },
        'access-log': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const filter = parseFilterOptions(v);
  const port = positiveInt('port', v.port, 8080, 0);
  if (port > 65535) throw new UsageError(`--port must be 0..65535; got '${v.port}'`);
  const adminPort = v['admin-port'] === undefined ? null : positiveInt('admin-port', v['admin-port'], 0, 0);
  if (adminPort !== null && adminPort > 65535) throw new UsageError(`--admin-port must be 0..65535; got '${v['admin-port']}'`);
  return {
    ...filter,
    workers: positiveInt('workers', v.workers, 2),
    host: v.host ?? '127.0.0.1',
    port,
    adminPort,
    upstreamTimeoutMs: positiveInt('upstream-timeout-ms', v['upstream-timeout-ms'], 15000),
    failOpen: v['fail-open'] ?? false,
    accessLog: v['access-log'] ?? false,
  };
}

/** Runs the gateway until SIGINT/SIGTERM; returns the process exit code. */
export async function runGatewayCli(args: string[]): Promise<number> {
  if (args.some((a) => /^--(endpoint-)?picker(=|$)/.test(a))) return runPickerGatewayCli(args);
  let cfg: GatewayCliConfig | 'help';
  try {
    cfg = parseGatewayArgs(args);
  } catch (e) {
    process.stderr.write(`prefix-router gateway: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const host = await startFilterHost('gateway', cfg, { failOpen: cfg.failOpen });
  if (!host) return 1;
  let gw;
  try {
    gw = await startGateway({
      host, listen: { host: cfg.host, port: cfg.port }, upstreamTimeoutMs: cfg.upstreamTimeoutMs,
      onAccessLog: cfg.accessLog ? (e) => process.stdout.write(`${e.method} ${e.path} ${e.status} ${e.endpoint ?? '-'} ${e.details} ${e.durationMs.toFixed(1)}ms wasm=${e.wasmUs.toFixed(0)}us worker=${e.worker}\n`) : undefined,
    });
  } catch (e) {
    await host.close();
    process.stderr.write(`prefix-router gateway: cannot listen on ${cfg.host}:${cfg.port}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  let admin: AdminServer | null = null;
  if (cfg.adminPort !== null) {
    try {
      admin = await startAdmin({ host, stats: gw.stats, listen: { host: cfg.host, port: cfg.adminPort } });
    } catch (e) {
      await gw.close();
      await host.close();
      process.stderr.write(`prefix-router gateway: cannot listen on ${cfg.host}:${cfg.adminPort} (admin): ${e instanceof Error ? e.message : String(e)}\n`);
      return 1;
    }
  }
  process.stdout.write(`prefix-router gateway listening on ${gw.url} (${cfg.workers} worker VMs)${admin ? `; stats at ${admin.url}/stats/prometheus` : ''}\n`);
  await untilStopSignal();
  await admin?.close();
  await gw.close();
  await host.close();
  return 0;
}
