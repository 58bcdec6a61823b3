// `prefix-router picker`: the filter behind the Endpoint Picker Protocol, for gateways that route
// an InferencePool through an ext_proc endpoint picker (picker/README.md).
import os from 'node:os';
import { parseArgs } from 'node:util';
import { FILTER_OPTIONS, UsageError, parseFilterOptions, positiveInt, startFilterHost, untilStopSignal, type FilterCliConfig } from '../host/main.js';
import { BodySendMode } from '../host/endpointPicker/protocol.js';
import { DEFAULT_PICKER_PORTS, startPicker } from './server.js';

const USAGE = `usage: prefix-router picker --config FILE|JSON [options]

Serves the prefix-router filter as an Endpoint Picker: an Envoy ext_proc gRPC service
(envoy.service.ext_proc.v3.ExternalProcessor) that an InferencePool's endpointPickerRef names.
Each request's ext_proc stream runs through one HTTP context of the filter; the choice goes back
in x-gateway-destination-endpoint and in envoy.lb dynamic metadata (chosen, then runner-up).

  --config FILE|JSON          plugin configuration (plugin/CONFIG.md), e.g.
                              '{"controlPlane":{}}' with --cluster prefix_router_control_plane=URL
  --cluster NAME=URL          an Envoy cluster for proxy_http_call (the control plane) (repeatable)
  --wasm FILE                 the filter module (default plugin/prefix-router.wasm)
  --workers N                 filter VMs (default: one per core, ${os.availableParallelism()} here)
  --host ADDR                 listen address of all ports (default 127.0.0.1; 0.0.0.0 in a pod)
  --port N                    ext_proc port (default ${DEFAULT_PICKER_PORTS.grpc})
  --health-port N             gRPC health port (default ${DEFAULT_PICKER_PORTS.health})
  --metrics-port N            Prometheus GET /metrics port (default ${DEFAULT_PICKER_PORTS.metrics})
  --request-body-mode MODE    FULL_DUPLEX_STREAMED (default) or BUFFERED, when the proxy does not say
                              (Envoy >= 1.35 sends its mode in protocol_config)
  --max-open-streams N        shed requests beyond N open streams with 429 (default: no limit)
  --drain-ms N                on SIGTERM, readiness goes NOT_SERVING and open streams get N ms (default 5000)
  --log-level LEVEL           trace|debug|info|warn|error|critical (default info)
  --buffer-limit BYTES        body bytes the filter may hold before 413 (default 1048576)
  -h, --help                  this text

The filter's fallbackHeader is turned on: the runner-up it names becomes the second endpoint of
the envoy.lb list and never reaches the replica. So is its subsetHeader: the proxy's subset hint
(envoy.lb.subset_hint) limits the replicas the filter scores.
`;

export interface PickerCliConfig extends FilterCliConfig {
  workers: number;
  host: string;
  port: number;
  healthPort: number;
  metricsPort: number;
  requestBodyMode: number;
  maxOpenStreams: number | undefined;
  drainMs: number;
}

function port(name: string, v: string | undefined, dflt: number): number {
  const p = positiveInt(name, v, dflt, 0);
  if (p > 65535) throw new UsageError(`--${name} must be 0..65535; got '${v}'`);
  return p;
}

/**
 * The picker needs the filter to name its runner-up and to route within the proxy's subset hint
 * (which the picker alone sets, as a header). Any other field is the user's.
 */
export function withPickerDefaults(pluginConfig: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(pluginConfig);
  } catch (e) {
    throw new UsageError(`--config is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('--config must be a JSON object (plugin/CONFIG.md)');
  // Each of several pickers sees a share of the traffic and under-reads a replica's cache reuse, which
  // would make copies look free where active-active needs them charged (bench/picker/README.md).
  const given = (parsed as { work?: unknown }).work;
  const work = typeof given === 'object' && given !== null && !Array.isArray(given) ? given as Record<string, unknown> : {};
  return JSON.stringify({ ...parsed, fallbackHeader: true, subsetHeader: true, work: { evictionReuseFloor: 1, ...work } });
}

export function parsePickerArgs(args: string[]): PickerCliConfig | 'help' {
  let v;
  try {
    v = parseArgs({
      args,
      allowPositionals: false,
      options: {
        ...FILTER_OPTIONS,
        host: { type: 'string' }, port: { type: 'string' }, 'health-port': { type: 'string' }, 'metrics-port': { type: 'string' },
        'request-body-mode': { type: 'string' }, 'max-open-streams': { type: 'string' }, 'drain-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (v.help) return 'help';
  const filter = parseFilterOptions(v);
  const mode = v['request-body-mode'] ?? 'FULL_DUPLEX_STREAMED';
  if (mode !== 'FULL_DUPLEX_STREAMED' && mode !== 'BUFFERED') throw new UsageError(`--request-body-mode must be FULL_DUPLEX_STREAMED or BUFFERED; got '${mode}'`);
  return {
    ...filter,
    pluginConfig: withPickerDefaults(filter.pluginConfig),
    workers: positiveInt('workers', v.workers, os.availableParallelism()),
    host: v.host ?? '127.0.0.1',
    port: port('port', v.port, DEFAULT_PICKER_PORTS.grpc),
    healthPort: port('health-port', v['health-port'], DEFAULT_PICKER_PORTS.health),
    metricsPort: port('metrics-port', v['metrics-port'], DEFAULT_PICKER_PORTS.metrics),
    requestBodyMode: BodySendMode[mode],
    maxOpenStreams: v['max-open-streams'] === undefined ? undefined : positiveInt('max-open-streams', v['max-open-streams'], 0),
    drainMs: positiveInt('drain-ms', v['drain-ms'], 5000, 0),
  };
}

/** Runs the picker until SIGINT/SIGTERM; returns the process exit code. */
export async function runPickerCli(args: string[]): Promise<number> {
  let cfg: PickerCliConfig | 'help';
  try {
    cfg = parsePickerArgs(args);
  } catch (e) {
    process.stderr.write(`prefix-router picker: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const host = await startFilterHost('picker', cfg);
  if (!host) return 1;
  let picker;
  try {
    picker = await startPicker({
      host, address: cfg.host, port: cfg.port, healthPort: cfg.healthPort, metricsPort: cfg.metricsPort,
      requestBodyMode: cfg.requestBodyMode, maxOpenStreams: cfg.maxOpenStreams,
    });
  } catch (e) {
    await host.close();
    process.stderr.write(`prefix-router picker: cannot start the ext_proc service on ${cfg.host}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  process.stdout.write(`prefix-router picker: ext_proc on ${picker.address}, health on ${picker.healthAddress}, metrics at ${picker.metricsUrl} (${cfg.workers} filter VMs)\n`);
  await untilStopSignal();
  await picker.close(cfg.drainMs);
  await host.close();
  return 0;
}
