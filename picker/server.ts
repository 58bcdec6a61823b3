// The picker: an ext_proc gRPC server (envoy.service.ext_proc.v3.ExternalProcessor/Process) whose
// every stream drives one HTTP context of the filter (session.ts), gRPC health on its own port
// (health.ts) and Prometheus metrics on another (metrics.ts). The filter runs in the proxy-wasm
// host as in the embedded gateway: its worker VMs over one shared-data store, the control plane
// reached through the `prefix_router_control_plane` cluster, so routing is the filter's own.
import * as grpc from '@grpc/grpc-js';
import type { ProxyWasmHost } from '../host/index.js';
import { BodySendMode, EXT_PROC_SERVICE, extProcTypes, type ProcessingRequest, type ProcessingResponse } from '../host/endpointPicker/protocol.js';
import { HEALTH_SERVICE, HealthState } from './health.js';
import { PickerMetrics, startMetricsServer, type MetricsServer } from './metrics.js';
import { PickerSession } from './session.js';

/** The ports the inference extension's pickers use: ext_proc 9002, health 9003, metrics 9090. */
export const DEFAULT_PICKER_PORTS = { grpc: 9002, health: 9003, metrics: 9090 } as const;

export interface PickerOptions {
  host: ProxyWasmHost;
  /** Listen address for all three ports (default 127.0.0.1). */
  address?: string;
  /** ext_proc port (0: any free port). */
  port?: number;
  /** gRPC health port, or null for none. */
  healthPort?: number | null;
  /** Prometheus metrics port, or null for none. */
  metricsPort?: number | null;
  /** The request body mode when the proxy does not say (default FULL_DUPLEX_STREAMED). */
  requestBodyMode?: number;
  /** The response body mode when the proxy does not say (default FULL_DUPLEX_STREAMED). */
  responseBodyMode?: number;
  /** Streams open at once beyond which a new request is shed with 429 (default: no limit). */
  maxOpenStreams?: number;
  /** gRPC server options (e.g. keepalive). */
  grpcOptions?: grpc.ServerOptions;
}

export interface RunningPicker {
  /** host:port of the ext_proc service. */
  address: string;
  port: number;
  healthAddress: string | null;
  metricsUrl: string | null;
  metrics: PickerMetrics;
  health: HealthState;
  /** Open ext_proc streams. */
  openStreams(): number;
  /** Readiness to NOT_SERVING, then stops taking streams; open ones end after graceMs (default 5000). */
  close(graceMs?: number): Promise<void>;
  /** Drops every open stream at once, as a crash would (tests, chaos). */
  kill(): void;
}

function bind(server: grpc.Server, address: string, port: number): Promise<number> {
  const host = address.includes(':') ? `[${address}]` : address;
  return new Promise((resolve, reject) => server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
}

export async function startPicker(opts: PickerOptions): Promise<RunningPicker> {
  const address = opts.address ?? '127.0.0.1';
  extProcTypes(); // the Envoy protos load now: a missing one stops the start, not the first request
  const metrics = new PickerMetrics();
  const health = new HealthState();
  const settings = {
    host: opts.host, metrics,
    defaultRequestBodyMode: opts.requestBodyMode ?? BodySendMode.FULL_DUPLEX_STREAMED,
    defaultResponseBodyMode: opts.responseBodyMode ?? BodySendMode.FULL_DUPLEX_STREAMED,
  };
  let open = 0;
  const maxOpen = opts.maxOpenStreams ?? Infinity;
  const server = new grpc.Server(opts.grpcOptions);
  server.addService(EXT_PROC_SERVICE, {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const shed = open >= maxOpen;
      open++;
      let counted = true;
      const done = () => { if (counted) { counted = false; open--; } };
      call.on('close', done);
      call.on('error', done);
      call.on('cancelled', done);
      call.on('finish', done);
      new PickerSession(settings, call, shed).start();
    },
  });
  const healthServer = opts.healthPort === null ? null : new grpc.Server();
  healthServer?.addService(HEALTH_SERVICE, health.handlers());
  let metricsServer: MetricsServer | null = null;
  try {
    const port = await bind(server, address, opts.port ?? 0);
    const healthPort = healthServer ? await bind(healthServer, address, opts.healthPort ?? 0) : null;
    metricsServer = opts.metricsPort === null ? null : await startMetricsServer(metrics, opts.host, { host: address, port: opts.metricsPort ?? 0 });
    health.setReady(true);
    const hostPart = address.includes(':') ? `[${address}]` : address;
    const shutdown = (grpcServer: grpc.Server, graceMs: number) => new Promise<void>((resolve) => {
      const force = setTimeout(() => { grpcServer.forceShutdown(); resolve(); }, graceMs);
      grpcServer.tryShutdown(() => { clearTimeout(force); resolve(); });
    });
    return {
      address: `${hostPart}:${port}`,
      port,
      healthAddress: healthPort === null ? null : `${hostPart}:${healthPort}`,
      metricsUrl: metricsServer ? `${metricsServer.url}/metrics` : null,
      metrics,
      health,
      openStreams: () => open,
      close: async (graceMs = 5000) => {
        health.setReady(false);
        await shutdown(server, graceMs);
        health.endWatches();
        if (healthServer) await shutdown(healthServer, 0);
        await metricsServer?.close();
      },
      kill: () => {
        server.forceShutdown();
        healthServer?.forceShutdown();
        void metricsServer?.close();
      },
    };
  } catch (e) {
    server.forceShutdown();
    healthServer?.forceShutdown();
    await metricsServer?.close();
    throw e;
  }
}
