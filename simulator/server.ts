// Starts simulated replicas in this process: one engine, one real-time driver and one HTTP
// server per replica, replica i named `${namePrefix}-${i}` on basePort + i.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ReplicaEngine } from './engine.js';
import { RealtimeDriver } from './realtime.js';
import { createReplicaHandler } from './app.js';
import { engineConfigOf, resolveOptions, type SimulatorOptions } from './config.js';

export interface RunningReplica {
  name: string;
  url: string;
  host: string;
  port: number;
  engine: ReplicaEngine;
  driver: RealtimeDriver;
}

export interface RunningReplicas {
  replicas: RunningReplica[];
  options: SimulatorOptions;
  close(): Promise<void>;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections(); // streaming clients would otherwise hold close() open
  });
}

/** Starts options.replicas replicas; throws (after closing what it started) if one cannot listen. */
export async function startReplicas(partial: Partial<SimulatorOptions> = {}): Promise<RunningReplicas> {
  const options = resolveOptions(partial);
  const started: { replica: RunningReplica; server: Server }[] = [];
  const closeAll = async () => {
    await Promise.all(started.map(async ({ replica, server }) => { replica.driver.close(); await closeServer(server); }));
  };
  try {
    for (let i = 0; i < options.replicas; i++) {
      const name = `${options.namePrefix}-${i}`;
      const engine = new ReplicaEngine({ ...engineConfigOf(options), tokenEvents: true });
      const driver = new RealtimeDriver(engine, options.timeScale);
      const server = createServer(createReplicaHandler({ name, options, driver }));
      server.keepAliveTimeout = 65_000; // outlive typical proxy idle timeouts (Envoy's is 60 s)
      try {
        const port = await listen(server, options.host, options.basePort === 0 ? 0 : options.basePort + i);
        const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
        started.push({ server, replica: { name, url: `http://${hostPart}:${port}`, host: options.host, port, engine, driver } });
      } catch (err) {
        driver.close();
        throw err;
      }
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  let closing: Promise<void> | null = null;
  return { replicas: started.map((s) => s.replica), options, close: () => (closing ??= closeAll()) };
}
