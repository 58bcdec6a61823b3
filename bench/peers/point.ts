// One load point of bench:peers: the replicas and router it runs on, started and stopped so that
// nothing of one point runs during another's; the router's added latency at idle, on a stack of its
// own; and the measured run of the point's request stream (TTFT, hit rate, shares, CPU).
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentiles, roundTo } from '../gateway.js';
import { MODEL, type SimRequest, type Workload } from '../routing/workloads.js';
import type { PeerShape } from './shapes.js';
import { coresOver, cpuSecondsOf, tail } from './processes.js';
import { readCounters, diffCounters, servedShape, sumOf, type ServedShape } from './replicaCounters.js';
import { runLoad, type RequestRecord } from './loadgen.js';
import { addedLatencySamples, percentilesMs, warmUpPaths } from './addedLatency.js';
import { REPO, type RouterSpec, type RunningRouter } from './routers.js';

/** `v` to `d` decimals; NaN where it is not finite (a rate over no time). */
export const round = (v: number, d = 1) => (Number.isFinite(v) ? roundTo(v, d) : NaN);

export interface RunResult {
  router: string;
  shape: string;
  replicas: number;
  load: number;
  /** The nominal rate: load x the shape's reference rate. */
  offeredRps: number;
  /** The measured requests over the seconds they arrived in (a session shape's: over its window); absent in results from before it was recorded. */
  arrivedRps?: number;
  /** Requests sent unmeasured before a session shape's window (absent: none). */
  warmupRequests?: number;
  sent: number;
  ok: number;
  failed: number;
  errors: string[];
  ttftMs: { p50: number; p95: number; p99: number };
  e2eP50Ms: number;
  e2eP95Ms: number;
  throughputRps: number;
  outputTokensPerS: number;
  hitRate: number;
  replicaShare: number[];
  /** Each replica's preemptions over the point (vllm:num_preemptions_total). */
  replicaPreemptions?: number[];
  routerCpuCores: number;
  /** The part of routerCpuCores off the request path (prefix-router's control plane); absent for routers without one. */
  controlPlaneCpuCores?: number;
  addedLatencyMs: { p50: number; p95: number } | null;
  /** What the replicas served, per request, by their own counters. */
  served: ServedShape;
  /**
   * Wall seconds of the point's phases in the order they ran (the drain: from the last request sent
   * to the last one finished); absent in results from before it was recorded.
   */
  phasesS?: Record<string, number>;
}

/** A router's added latency at idle on a replica count (RunResult.addedLatencyMs of its runs). */
export interface AddedLatencyRow {
  router: string; replicas: number; warmupRequests: number; pairs: number; p50: number; p95: number;
  /** Cores the router's processes use with no traffic, over idleCpuS after IDLE_SETTLE_S (absent: not measured); of them its control plane's. */
  idleCpuCores?: number; idleControlCpuCores?: number; idleCpuS?: number;
}

export interface ReplicaSet { urls: string[]; pid: number; stop(): Promise<void> }

/**
 * Simulated replicas in their own process; `timeScale` > 1 runs them faster than real time,
 * `maxModelLen` sets their context limit (absent: the simulator's, Qwen2.5's native 32k).
 */
export async function startReplicaSet(replicas: number, kvBlocks: number | null, logFile: string, timeScale = 1, maxModelLen?: number): Promise<ReplicaSet> {
  const opts = { replicas, ...(kvBlocks ? { kvCacheSize: kvBlocks } : {}), ...(timeScale !== 1 ? { timeScale } : {}), ...(maxModelLen ? { maxModelLen } : {}) };
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'bench/peers/replicaProcess.ts'), JSON.stringify(opts)], { stdio: ['ignore', 'pipe', fd], detached: true });
  closeSync(fd);
  const stop = async () => {
    if (child.exitCode !== null || child.pid === undefined) return;
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 5000))]);
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  };
  const urls = await new Promise<string[]>((resolveUrls, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`replicas did not start within 60 s:\n${tail(logFile)}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) { clearTimeout(t); resolveUrls((JSON.parse(line) as { urls: string[] }).urls); }
    });
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`replicas exited (${code}):\n${tail(logFile)}`)); });
  }).catch(async (e) => { await stop(); throw e; });
  return { urls, pid: child.pid!, stop };
}

/**
 * Samples every replica's engine gauges (waiting, running, KV use) and preemptions every `everyMs`
 * into `file`, one JSON line per sample, t in ms from the start: where a run's queues formed.
 */
function traceReplicas(urls: string[], everyMs: number, file: string): { stop: () => Promise<void> } {
  const lines: string[] = [];
  const t0 = performance.now();
  // A failed read is NaN (null in the file), not an idle replica.
  const gauge = (text: string, name: string) => (text === '' ? NaN : sumOf(text, name));
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    const t = Math.round(performance.now() - t0);
    void Promise.all(urls.map((u) => fetch(`${u}/metrics`, { signal: AbortSignal.timeout(1000) }).then((r) => r.text()).catch(() => '')))
      .then((texts) => {
        lines.push(JSON.stringify({ t, replicas: texts.map((x) => ({ waiting: gauge(x, 'vllm:num_requests_waiting'), running: gauge(x, 'vllm:num_requests_running'), kv: gauge(x, 'vllm:kv_cache_usage_perc'), preemptions: gauge(x, 'vllm:num_preemptions_total') })) }));
      })
      .finally(() => { busy = false; });
  }, everyMs);
  return { stop: async () => { clearInterval(timer); writeFileSync(file, lines.join('\n') + '\n'); } };
}

/** One JSON line per request: what the client saw, with the prefix group it belongs to (for per-request analysis), and whether it was a warm-up. */
function writeRequestRecords(file: string, records: RequestRecord[], requests: Workload['requests']): void {
  const byId = new Map(requests.map((r) => [r.id, r]));
  writeFileSync(file, records.map((r) => JSON.stringify({ ...r, group: byId.get(r.id)?.group ?? null, ...(byId.get(r.id)?.warmup ? { warmup: true } : {}) })).join('\n') + '\n');
}

/** The point's numbers from its measured requests; throughput over `fromMs` (a session point's window opening) to the last one's end. */
function summarize(records: RequestRecord[], wallMs: number, fromMs = 0): Pick<RunResult, 'sent' | 'ok' | 'failed' | 'errors' | 'ttftMs' | 'e2eP50Ms' | 'e2eP95Ms' | 'throughputRps' | 'outputTokensPerS'> {
  const ok = records.filter((r) => r.ok);
  const ttft = percentiles(ok.map((r) => r.ttftMs));
  const e2e = percentiles(ok.map((r) => r.e2eMs));
  const lastEnd = Math.max(0, ...records.map((r) => r.sentMs + r.e2eMs).filter(Number.isFinite));
  const span = Math.max(1, Math.min(wallMs, lastEnd) - fromMs) / 1000;
  const errors = [...new Set(records.filter((r) => !r.ok).map((r) => r.error ?? `HTTP ${r.status}`))].slice(0, 3);
  return {
    sent: records.length, ok: ok.length, failed: records.length - ok.length, errors,
    ttftMs: { p50: ttft.p50, p95: ttft.p95, p99: ttft.p99 }, e2eP50Ms: e2e.p50, e2eP95Ms: e2e.p95,
    throughputRps: round(ok.length / span, 2), outputTokensPerS: round(ok.reduce((a, r) => a + r.outputTokens, 0) / span, 0),
  };
}

/** Laps of wall time, by phase name. */
export type PhaseClock = ReturnType<typeof phaseClock>;
export function phaseClock() {
  const phases: Record<string, number> = {};
  let last = performance.now();
  return {
    /** The time since the last lap, as `name`. */
    lap(name: string) { const now = performance.now(); phases[name] = (phases[name] ?? 0) + (now - last) / 1000; last = now; },
    /** `seconds` of the current lap as `name`; the rest of the lap goes to the next lap's name. */
    add(name: string, seconds: number) { phases[name] = (phases[name] ?? 0) + seconds; last += seconds * 1000; },
    phases: () => Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(v, 2)])),
  };
}

/** The router's CPU, in cores, with no traffic: IDLE_SETTLE_S of quiet, then `seconds` measured (on-CPU time of its threads). */
async function idleCpu(router: RunningRouter, seconds: number): Promise<{ idleCpuCores: number; idleControlCpuCores: number; idleCpuS: number }> {
  await sleep(IDLE_SETTLE_S * 1000);
  const [all, control] = await coresOver([router.pids, router.controlPids ?? []], seconds);
  return { idleCpuCores: roundTo(all!, 5), idleControlCpuCores: roundTo(control!, 5), idleCpuS: seconds };
}

/**
 * The idle measure: seconds of no traffic before it (a fleet's poller goes back to its slow tick
 * after a full tick with nothing in flight), and seconds measured. What a gateway costs while
 * nobody sends anything is the floor of what it costs in service.
 */
export const IDLE_SETTLE_S = 2;

/** A point's replicas and the router in front of them. */
export interface PointStack { sims: ReplicaSet; router: RunningRouter }

/**
 * Starts each point's replicas and router, and stops them while the next point's replicas start;
 * the next router starts once they are gone. Ctrl-C or SIGTERM stops whatever runs (the replicas
 * and routers run in their own process groups) and exits.
 */
export class PointStacks {
  private readonly active = new Set<() => Promise<void>>();
  private stopping: Promise<unknown> = Promise.resolve();
  private readonly onSignal = () => { void Promise.all([...this.active].map((stop) => stop())).then(() => process.exit(130)); };

  /** `logs`: the folder of the replicas' and routers' logs; `failed`: told of a router that did not start. */
  constructor(private readonly logs: string, private readonly failed: (spec: RouterSpec, e: unknown) => void) {
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /**
   * `replicas` replicas (`kvBlocks` each, null: the simulator's default; `maxModelLen`, absent: the
   * simulator's) and `spec`'s router on them, logging under `tag`; null when the router fails to
   * start (told to `failed`, its replicas stopping). `lap` names each step's time when given.
   */
  async start(spec: RouterSpec, replicas: number, kvBlocks: number | null, tag: string, lap?: (phase: string) => void, maxModelLen?: number): Promise<PointStack | null> {
    const sims = await startReplicaSet(replicas, kvBlocks, join(this.logs, `replicas_${tag}.log`), 1, maxModelLen);
    this.active.add(sims.stop);
    lap?.('replicas');
    await this.stopping;
    lap?.('previous stop');
    let router: RunningRouter;
    try {
      router = await spec.start(sims.urls, join(this.logs, `${tag}.log`));
    } catch (e) {
      this.stop({ sims, router: null });
      this.failed(spec, e);
      return null;
    }
    this.active.add(router.stop);
    lap?.('router');
    return { sims, router };
  }

  /** Stops a stack in the background: the next start() waits for it. */
  stop(stack: { sims: ReplicaSet; router: RunningRouter | null }): void {
    const { sims, router } = stack;
    this.stopping = Promise.all([router?.stop(), sims.stop()]).finally(() => {
      if (router) this.active.delete(router.stop);
      this.active.delete(sims.stop);
    });
  }

  /** Waits for the last stop and lets the signals go. */
  async close(): Promise<void> {
    await this.stopping;
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/**
 * `spec`'s added latency at idle on `replicas` replicas, on a stack of its own so that the warm-up
 * leaves nothing in the caches or router state a point starts from: `warmup` requests through the
 * router and as many straight to the replicas, then `pairs` pairs; the router's CPU with no traffic
 * over `idleCpuS` (0: not measured). Null when the router did not start.
 */
export async function probeAddedLatency(stacks: PointStacks, spec: RouterSpec, replicas: number, o: { warmup: number; pairs: number; idleCpuS: number; seed: number; log: (line: string) => void }): Promise<AddedLatencyRow | null> {
  const probe = await stacks.start(spec, replicas, null, `${spec.name.replace('/', '-')}_probe_${replicas}`);
  if (!probe) return null;
  try {
    const w0 = performance.now();
    await warmUpPaths(probe.router.url, probe.sims.urls, o.warmup, o.seed);
    const warmupS = (performance.now() - w0) / 1000;
    const p = percentilesMs((await addedLatencySamples(probe.router.url, probe.sims.urls, o.pairs, o.seed)).diffsMs);
    const idle = o.idleCpuS > 0 ? await idleCpu(probe.router, o.idleCpuS) : null;
    o.log(`${spec.name.padEnd(24)} added latency at idle, ${replicas} replicas, after ${o.warmup} warm-up requests (${warmupS.toFixed(1)} s): p50 ${p.p50} ms, p95 ${p.p95} ms` +
      (idle ? `; idle CPU ${idle.idleCpuCores.toFixed(4)} cores (control plane ${idle.idleControlCpuCores.toFixed(4)}) over ${o.idleCpuS} s` : ''));
    return { router: spec.name, replicas, warmupRequests: o.warmup, pairs: o.pairs, ...p, ...(idle ?? {}) };
  } finally {
    stacks.stop(probe);
  }
}

/** A load point to measure: its request stream at `rate` (req/s), whose arrivals in `windowS` are measured. */
export interface PointSpec { shape: PeerShape; replicas: number; load: number; rate: number; workload: Workload; windowS: number; tag: string }

/**
 * Sends the point's stream through `stack`'s router and measures it: the client's TTFT and
 * throughput over the measured requests (a session point's warm-up is not measured: the replicas'
 * counters restart at its window), the replicas' hit rate, shares and preemptions, the router's
 * CPU. Writes the requests' records (and the replicas' gauges every `replicaTraceMs`) to `logs`.
 */
export async function measurePoint(stack: PointStack, spec: RouterSpec, point: PointSpec, clock: PhaseClock,
  o: { logs: string; requestTimeoutMs: number; replicaTraceMs?: number; added: AddedLatencyRow | undefined }): Promise<RunResult> {
  const { sims, router } = stack;
  const { workload, windowS, tag } = point;
  let before = await readCounters(sims.urls);
  const cpu0 = cpuSecondsOf(router.pids);
  const control0 = cpuSecondsOf(router.controlPids ?? []);
  clock.lap('counters');
  const trace = (o.replicaTraceMs ?? 0) > 0 ? traceReplicas(sims.urls, o.replicaTraceMs!, join(o.logs, `replicaTrace_${tag}.jsonl`)) : null;
  const warmups = new Set(workload.requests.filter((r) => r.warmup).map((r) => r.id));
  let windowOpen = warmups.size === 0;
  const beforeSend = async (r: SimRequest) => { if (!windowOpen && !r.warmup) { windowOpen = true; before = await readCounters(sims.urls); } };
  const { records: sent, wallMs, lastSentMs } = await runLoad(workload.requests, { url: router.url, urls: router.entryUrls, model: MODEL, requestTimeoutMs: o.requestTimeoutMs, beforeSend });
  const records = sent.filter((r) => !warmups.has(r.id));
  const cpu1 = cpuSecondsOf(router.pids);
  const control1 = cpuSecondsOf(router.controlPids ?? []);
  await trace?.stop();
  writeRequestRecords(join(o.logs, `requests_${tag}.jsonl`), sent, workload.requests);
  clock.add('arrivals', lastSentMs / 1000);
  clock.lap('drain');
  const delta = diffCounters(await readCounters(sims.urls), before);
  clock.lap('counters');
  const queries = delta.reduce((a, c) => a + c.prefixQueries, 0);
  const hits = delta.reduce((a, c) => a + c.prefixHits, 0);
  const served = delta.reduce((a, c) => a + c.requests, 0);
  return {
    router: spec.name, shape: point.shape.name, replicas: point.replicas, load: point.load, offeredRps: point.rate, arrivedRps: windowS > 0 ? round(records.length / windowS, 2) : NaN,
    ...(warmups.size ? { warmupRequests: warmups.size } : {}), ...summarize(records, wallMs, warmups.size && records.length ? Math.min(...records.map((r) => r.sentMs)) : 0),
    hitRate: queries ? round(hits / queries, 3) : NaN,
    replicaShare: delta.map((c) => (served ? round(c.requests / served, 3) : NaN)),
    replicaPreemptions: delta.map((c) => c.preemptions),
    routerCpuCores: round((cpu1 - cpu0) / (wallMs / 1000), 3),
    ...(router.controlPids ? { controlPlaneCpuCores: round((control1 - control0) / (wallMs / 1000), 3) } : {}),
    addedLatencyMs: o.added ? { p50: o.added.p50, p95: o.added.p95 } : null,
    served: servedShape(delta),
    phasesS: clock.phases(),
  };
}
