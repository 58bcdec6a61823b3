// Active-active pickers: the same shared-prefix workload through K picker replicas (each with its
// own filter VMs and shared data, as separate pods; requests spread round robin, as a Service
// spreads ext_proc streams) and through one, against the same simulated replicas and control
// plane. The measure is the replicas' own prefix-cache hit rate (cached / queried prompt tokens).
// Responses go through the pickers as an InferencePool's gateway sends them: a stream that ends at
// the decision would end the filter's count of the request's work there, and its placements of new
// prompt starts would no longer balance. The same runs through the inference extension's endpoint
// picker (gie-epp, its default profile; each replica keeps its own prefix index) when asked.
import { startReplicas } from '../../simulator/server.js';
import { startControlPlane } from '../../control-plane/server.js';
import { ProxyWasmHost, SharedDataStore } from '../../host/index.js';
import { startPicker, type RunningPicker } from '../../picker/server.js';
import { withPickerDefaults } from '../../picker/main.js';
import { startPickerGateway } from '../../host/endpointPicker/pickerGateway.js';
import { textOf } from '../routing/workloads.js';
import { startGieEpp, type RunningGieEpp } from './gieEpp.js';

export interface ActiveActiveOptions {
  wasm: string;
  replicas: number;
  /** Distinct system prompts (groups) and their length in tokens. */
  groups: number;
  systemTokens: number;
  requests: number;
  concurrency: number;
  /** Simulated KV capacity per replica, in 16-token blocks: small enough that placement matters. */
  kvBlocks: number;
  timeScale: number;
  seed: number;
  /** The gateway sends response headers and body to the picker (false: the stream ends at the decision). */
  responseProcessing: boolean;
}

export interface ActiveActiveRun {
  picker: 'prefix-router' | 'gie-epp';
  pickers: number;
  requests: number;
  ok: number;
  hitRate: number;
  /** Requests per replica, in replica order. */
  perReplica: number[];
}

const CP_CLUSTER = 'prefix_router_control_plane';

/**
 * One run with `pickers` picker replicas on fresh simulated replicas (empty caches): prefix-router
 * pickers sharing a control plane, or, given its binary, gie-epp pickers.
 */
export async function runActiveActive(pickers: number, o: ActiveActiveOptions, gieEpp?: string): Promise<ActiveActiveRun> {
  const sims = await startReplicas({ replicas: o.replicas, basePort: 0, timeScale: o.timeScale, kvCacheSize: o.kvBlocks, seed: o.seed });
  const cp = gieEpp ? null : await startControlPlane({ host: '127.0.0.1', port: 0, replicas: sims.replicas.map((r) => r.url), logLevel: 'error', allowUnauthenticatedWrites: true });
  const hosts: ProxyWasmHost[] = [];
  const running: RunningPicker[] = [];
  const gies: RunningGieEpp[] = [];
  try {
    const addresses: string[] = [];
    for (let i = 0; i < pickers; i++) {
      if (gieEpp) {
        // Ready once it routes (it has synced the pool and its endpoints).
        gies.push(await startGieEpp(gieEpp, sims.replicas.map((r) => `${r.host}:${r.port}`)));
        addresses.push(gies[i]!.address);
        continue;
      }
      const host = await ProxyWasmHost.create({
        wasm: o.wasm, workers: 2, sharedData: new SharedDataStore(), logLevel: 'error',
        pluginConfig: withPickerDefaults(JSON.stringify({ controlPlane: { cluster: CP_CLUSTER }, debugHeaders: false })),
        clusters: { [CP_CLUSTER]: cp!.url },
      });
      hosts.push(host);
      const p = await startPicker({ host, port: 0, healthPort: null, metricsPort: null });
      running.push(p);
      addresses.push(p.address);
      // It routes once its filter has the control plane's first state.
      const probe = await startPickerGateway({ picker: p.address, processResponse: false });
      try {
        await until(async () => (await fetch(`${probe.url}/health`)).status === 200, 20_000);
      } finally {
        await probe.close();
      }
    }
    const gw = await startPickerGateway({ picker: addresses.join(','), processResponse: o.responseProcessing, upstreamTimeoutMs: 60_000 });
    const systems = Array.from({ length: o.groups }, (_, g) => textOf(o.seed * 1000 + g, o.systemTokens));
    let next = 0, ok = 0;
    const worker = async () => {
      while (next < o.requests) {
        const i = next++;
        // Groups in a shuffled round order: every group recurs, no two neighbours share one.
        const g = (i * 7919 + o.seed) % o.groups;
        const prompt = `${systems[g]}\nQuestion ${i}: ${textOf(o.seed * 7 + i, 24)}`;
        const r = await fetch(`${gw.url}/v1/completions`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: sims.options.model, prompt, max_tokens: 2 }),
        }).catch(() => null);
        if (r) { await r.arrayBuffer(); if (r.status === 200) ok++; }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    await gw.close();
    const snaps = sims.replicas.map((r) => r.engine.metricsSnapshot());
    const hits = snaps.reduce((n, s) => n + s.prefixCacheHits, 0);
    const queries = snaps.reduce((n, s) => n + s.prefixCacheQueries, 0);
    return { picker: gieEpp ? 'gie-epp' : 'prefix-router', pickers, requests: o.requests, ok, hitRate: queries ? hits / queries : 0, perReplica: snaps.map((s) => s.requestSuccess) };
  } finally {
    for (const p of running) await p.close(100);
    for (const h of hosts) await h.close();
    for (const g of gies) await g.close();
    await cp?.close();
    await sims.close();
  }
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`a picker did not route within ${ms} ms (control plane state not reached?)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
