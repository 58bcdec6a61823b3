// `npm run bench:gateway-overhead`: what a router costs per request at idle, on simulated replicas
// in their own process, as bench:peers launches them: the latency it adds (bench:peers' probe:
// pairs of a one-token request straight to a replica and through the router, p50/p95 of the
// differences) and the router's CPU per routed request (prefix-router's: its gateway's and its
// control plane's processes), net of what it burns idle (the control plane's scrapes and long poll).
// Routers take turns for --rounds rounds, so that a machine busy with something else weighs on each alike.
// prefix-router/gateway-only is the gateway and filter without the control plane, prefix-router/start
// both in one process (bench/peers/routers.ts); --baseline BUNDLE
// adds both started from another build (a dist/prefix-router.js with its filter in ../plugin/), to
// compare two builds in one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { toolArgs } from '../cli/toolArgs.js';
import { roundTo } from './gateway.js';
import { addedLatencySamples, percentilesMs, warmUpPaths, ROUTER_WARMUP_REQUESTS, WARMUP_CONCURRENCY } from './peers/addedLatency.js';
import { startReplicaSet } from './peers/point.js';
import { cpuNsOf, freePort } from './peers/processes.js';
import { BASELINE_SUFFIX, ROUTER_NAMES, endpointOf, filterModule, launch, prefixRouterCommand, prefixRouterUnavailable, routerNamed, type RouterSpec } from './peers/routers.js';

export interface OverheadOptions {
  routers: RouterSpec[];
  replicas: number;
  /** The simulated replicas run this many times faster than real time (1: as bench:peers runs them). */
  timeScale: number;
  /** Probe pairs per router and round. */
  pairs: number;
  rounds: number;
  /** Requests through each router once it starts, and as many straight to the replicas (bench:peers' warmUpPaths), so that the probes meet code already optimised. */
  warmup: number;
  /** Idle time per router and round over which its background CPU is read. */
  idleMs: number;
  seed: number;
  log: (line: string) => void;
}

export interface OverheadRow {
  router: string;
  /** Added latency over every round's pairs, ms. */
  addedMs: { p50: number; p95: number };
  /** Each round's added-latency p50, ms. */
  roundP50Ms: number[];
  routedRequests: number;
  /** Router CPU during the probes per routed request, ms, idle CPU included / subtracted. */
  cpuMsPerRequest: number;
  netCpuMsPerRequest: number;
  /** Router CPU while idle, ms per second. */
  idleCpuMsPerS: number;
}


export async function runOverheadBench(o: OverheadOptions): Promise<OverheadRow[]> {
  const logs = mkdtempSync(join(tmpdir(), 'gateway-overhead-'));
  const sims = await startReplicaSet(o.replicas, null, join(logs, 'replicas.log'), o.timeScale);
  const acc = o.routers.map((spec) => ({ spec, diffs: [] as number[], roundP50Ms: [] as number[], requests: 0, probeNs: 0, probeMs: 0, idleNs: 0, idleMs: 0 }));
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const [k, a] of acc.entries()) {
        // Prompts of their own for each router and round: the replicas keep what they cached from the others'.
        const seed = o.seed + r * acc.length + k;
        const router = await a.spec.start(sims.urls, join(logs, `${a.spec.name.replace('/', '-')}.log`));
        const cpu = () => cpuNsOf(router.pids);
        try {
          await warmUpPaths(router.url, sims.urls, o.warmup, seed);
          const i0 = cpu(), t0 = performance.now();
          await sleep(o.idleMs);
          const i1 = cpu(), t1 = performance.now();
          const { diffsMs, routerRequests } = await addedLatencySamples(router.url, sims.urls, o.pairs, seed);
          const c2 = cpu(), t2 = performance.now();
          a.idleNs += i1 - i0;
          a.idleMs += t1 - t0;
          a.probeNs += c2 - i1;
          a.probeMs += t2 - t1;
          a.requests += routerRequests;
          a.diffs.push(...diffsMs);
          a.roundP50Ms.push(percentilesMs(diffsMs).p50);
          o.log(`round ${r + 1} ${a.spec.name}: added p50 ${percentilesMs(diffsMs).p50} ms, cpu ${roundTo((c2 - i1) / 1e6 / routerRequests, 3)} ms/request`);
        } finally {
          await router.stop();
        }
      }
    }
  } finally {
    await sims.stop();
    rmSync(logs, { recursive: true, force: true });
  }
  return acc.map((a) => {
    const p = percentilesMs(a.diffs);
    const idleNsPerMs = a.idleMs > 0 ? a.idleNs / a.idleMs : 0;
    return {
      router: a.spec.name,
      addedMs: { p50: p.p50, p95: p.p95 },
      roundP50Ms: a.roundP50Ms,
      routedRequests: a.requests,
      cpuMsPerRequest: roundTo(a.probeNs / 1e6 / a.requests, 3),
      netCpuMsPerRequest: roundTo(Math.max(0, a.probeNs - idleNsPerMs * a.probeMs) / 1e6 / a.requests, 3),
      idleCpuMsPerS: roundTo(idleNsPerMs / 1e3, 2),
    };
  });
}

export function renderOverheadTable(rows: OverheadRow[]): string {
  const head = ['router', 'added p50 ms', 'added p95 ms', 'round p50s', 'cpu ms/req', 'net cpu ms/req', 'idle cpu ms/s', 'requests'];
  const body = rows.map((r) => [r.router, String(r.addedMs.p50), String(r.addedMs.p95), r.roundP50Ms.join(' '), String(r.cpuMsPerRequest), String(r.netCpuMsPerRequest), String(r.idleCpuMsPerS), String(r.routedRequests)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/**
 * `prefix-router gateway` on the replicas as the filter's static list: the gateway's request path
 * and the filter alone, without the control plane (no scrapes, no long poll) in its process.
 */
function gatewayOnly(name: string, bundle?: string): RouterSpec {
  return {
    name,
    unavailable: () => prefixRouterUnavailable(bundle),
    start: async (replicaUrls, logFile) => {
      const port = await freePort();
      const { command, args } = prefixRouterCommand(bundle);
      const config = JSON.stringify({ replicas: replicaUrls.map(endpointOf), fallbackHeader: true, debugHeaders: true });
      return launch(name, port, command, [...args, 'gateway', '--wasm', filterModule(bundle), '--config', config, '--workers', '1', '--port', String(port), '--log-level', 'warn', '--upstream-timeout-ms', '300000'], logFile);
    },
  };
}

const GATEWAY_ONLY = 'prefix-router/gateway-only';
const DEFAULT_ROUTERS = ['prefix-router', GATEWAY_ONLY, 'sglang-router'];

const USAGE = `usage: npm run bench:gateway-overhead -- [options]
  --routers A,B        bench:peers routers, or ${GATEWAY_ONLY} (prefix-router gateway on the replicas
                       as a static list: no control plane in its process); one not installed is skipped
                       (default ${DEFAULT_ROUTERS.join(',')})
  --baseline BUNDLE    also prefix-router and its gateway-only run from another build's dist/prefix-router.js
                       (its filter in ../plugin/), named NAME@baseline
  --pairs N            probe pairs per router and round (default 60)
  --rounds N           rounds, routers taking turns (default 2)
  --warmup N           requests through each router before it is measured, and as many straight to the
                       replicas, ${WARMUP_CONCURRENCY} in flight (default ${ROUTER_WARMUP_REQUESTS}, as bench:peers: a router in
                       service is past its JIT's warm-up; 200 measures V8's baseline tiers)
  --idle-ms N          idle window per router and round for its background CPU (default 1000)
  --replicas N         simulated replicas (default 3)
  --time-scale F       replicas F times faster than real time (default 1, as bench:peers); e.g. 1000 leaves
                       the router's own path alone, warm and without idle gaps between requests
  --seed N             (default 1)
  --json               print the rows as JSON`;

export async function main(argv: string[]): Promise<number> {
  const { values: v, fail, int } = toolArgs('bench:gateway-overhead', USAGE, {
    routers: { type: 'string' }, baseline: { type: 'string' }, pairs: { type: 'string' }, rounds: { type: 'string' }, warmup: { type: 'string' }, 'idle-ms': { type: 'string' },
    replicas: { type: 'string' }, 'time-scale': { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' },
  }, false, argv);
  const positive = (flag: string, s: string | undefined, dflt: number) => {
    if (s === undefined) return dflt;
    if (!(Number(s) > 0) || !Number.isFinite(Number(s))) fail(`--${flag}: expected a number > 0, got '${s}'`);
    return Number(s);
  };
  const log = (line: string) => process.stderr.write(line + '\n');
  const routers: RouterSpec[] = [];
  for (const name of v.routers?.split(',').map((x) => x.trim()).filter(Boolean) ?? DEFAULT_ROUTERS) {
    const spec = name === GATEWAY_ONLY ? gatewayOnly(name) : routerNamed(name);
    if (!spec) fail(`--routers: unknown router '${name}' (known: ${[...ROUTER_NAMES, GATEWAY_ONLY].join(', ')})`);
    const why = spec!.unavailable();
    if (why) log(`skipping ${name}: ${why}`);
    else routers.push(spec!);
  }
  if (v.baseline !== undefined) {
    const bundle = resolve(v.baseline);
    for (const name of routers.map((r) => r.name).filter((n) => n === 'prefix-router' || n === GATEWAY_ONLY)) {
      const spec = name === GATEWAY_ONLY ? gatewayOnly(name + BASELINE_SUFFIX, bundle) : routerNamed(name + BASELINE_SUFFIX, bundle)!;
      const why = spec.unavailable();
      if (why) fail(`--baseline: ${why}`);
      routers.push(spec);
    }
  }
  if (routers.length === 0) fail('no router to measure');
  try {
    const rows = await runOverheadBench({
      routers, replicas: int('replicas', v.replicas, 3, 1), timeScale: positive('time-scale', v['time-scale'], 1), pairs: int('pairs', v.pairs, 60, 1), rounds: int('rounds', v.rounds, 2, 1),
      warmup: int('warmup', v.warmup, ROUTER_WARMUP_REQUESTS, 0), idleMs: int('idle-ms', v['idle-ms'], 1000, 0), seed: int('seed', v.seed, 1, 0), log,
    });
    process.stdout.write(v.json ? JSON.stringify(rows, null, 2) + '\n' : renderOverheadTable(rows));
    return 0;
  } catch (e) {
    log(`bench:gateway-overhead: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
