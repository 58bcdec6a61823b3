// Fault scenarios under load, through the embedded gateway running the real filter, a real
// control plane (its own process, started with the CLI, so it can be SIGKILLed) and
// simulated replicas, each behind a fault-injecting front. Load comes from a separate
// process (loadgen.ts). Each scenario reports requests, failures, a recovery time, and
// the behavioural checks the tests assert.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, SharedDataStore } from '../../host/index.js';
import { startGateway, type Gateway, type AccessLogEntry } from '../../host/gateway.js';
import { startReplicas, type RunningReplicas } from '../../simulator/server.js';
import { decodeState } from '../../control-plane/stateWire.js';
import { FaultFront } from './faultFront.js';
import type { LoadMessage, LoadOptions, RequestRecord } from './loadgen.js';
import { readStamp } from '../../plugin/sharedData.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WASM_PATH = `${ROOT}plugin/prefix-router.wasm`;
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';
const CLUSTER = 'prefix_router_control_plane';
/** The control plane's defaults, restated because the checks are expressed in them. */
export const SCRAPE_INTERVAL_MS = 50;
export const STALENESS_MS = 2000;
/**
 * Bound on every wait for a condition (a process listening, a state arriving, a replica
 * marked stale). Generous: the checks are about what happens, not how fast, and the
 * machine may be shared. The times are measured and reported, never asserted.
 */
const WAIT_MS = 60_000;

export interface ChaosOptions {
  /** Upper bound of requests per scenario (the load also stops once the scenario has what it needs). */
  requests: number;
  concurrency: number;
  /** Simulated replicas run this many times faster than real time. */
  timeScale: number;
  maxTokens: number;
  /** How long the control plane stays dead in the restart scenario. */
  controlPlaneDownMs: number;
  /** How long state payloads are corrupted. */
  corruptForMs: number;
  /** Requests finished before a fault is injected, and again after recovery before the load stops. */
  warmUp: number;
  log?: (line: string) => void;
}

export const CHAOS_DEFAULTS: ChaosOptions = {
  requests: 20_000,
  concurrency: 8,
  timeScale: 10,
  maxTokens: 8,
  controlPlaneDownMs: 1500,
  corruptForMs: 1500,
  warmUp: 500,
};

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  requests: number;
  failed: number;
  /** What "recovered" means is per scenario (see `recovery`). */
  recoveryMs: number | null;
  recovery: string;
  checks: Check[];
  details: Record<string, unknown>;
}

// ---- the stack ----

class ControlPlaneProcess {
  child: ChildProcess | null = null;
  stderr = '';
  constructor(readonly port: number, readonly replicas: string[]) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the CLI; resolves with the wall-clock ms it first accepted a connection. */
  async start(): Promise<number> {
    const child = spawn(process.execPath, ['--import', 'tsx', `${ROOT}cli/prefix-router.ts`, 'control-plane', '--replicas', this.replicas.join(','), '--host', '127.0.0.1', '--port', String(this.port), '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
    this.child = child;
    child.stderr!.on('data', (c: Buffer) => { this.stderr = (this.stderr + c.toString()).slice(-4000); });
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`control plane exited with ${child.exitCode}: ${this.stderr}`);
      if (await canConnect(this.port)) return Date.now();
      await sleep(5);
    }
    throw new Error(`control plane did not listen on ${this.port}: ${this.stderr}`);
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TimedAccess extends AccessLogEntry {
  start: number;
  end: number;
}

class Stack {
  sims: RunningReplicas[] = [];
  fronts: FaultFront[] = [];
  cp!: ControlPlaneProcess;
  cpFront: FaultFront | null = null;
  host!: ProxyWasmHost;
  gw!: Gateway;
  readonly access: TimedAccess[] = [];
  readonly rejections: number[] = [];
  readonly store = new SharedDataStore();

  static async start(o: ChaosOptions, withStateFront: boolean): Promise<Stack> {
    const s = new Stack();
    try {
      for (let i = 0; i < 3; i++) {
        const sim = await startReplicas({ replicas: 1, basePort: 0, host: '127.0.0.1', timeScale: o.timeScale, model: MODEL });
        s.sims.push(sim);
        const front = new FaultFront(new URL(sim.replicas[0].url));
        await front.listen();
        s.fronts.push(front);
      }
      s.cp = new ControlPlaneProcess(await freePort(), s.fronts.map((f) => f.url));
      await s.cp.start();
      let cpUrl = s.cp.url;
      if (withStateFront) {
        s.cpFront = new FaultFront(new URL(s.cp.url));
        await s.cpFront.listen();
        cpUrl = s.cpFront.url;
      }
      s.host = await ProxyWasmHost.create({
        wasm: readFileSync(WASM_PATH), workers: 2, sharedData: s.store, logLevel: 'warn',
        pluginConfig: JSON.stringify({ controlPlane: { cluster: CLUSTER }, fallbackHeader: true, debugHeaders: true }),
        clusters: { [CLUSTER]: cpUrl },
        onLog: (e) => { if (e.message.includes('state rejected')) s.rejections.push(Date.now()); },
      });
      s.gw = await startGateway({
        host: s.host, upstreamTimeoutMs: 30_000,
        onAccessLog: (e) => { const end = Date.now(); s.access.push({ ...e, end, start: end - e.durationMs }); },
      });
      await s.waitRoutable();
      return s;
    } catch (e) {
      await s.close();
      throw e;
    }
  }

  /** The state version the filter's worker VMs route on (shared data), 0 before any. */
  filterVersion(): bigint {
    return readStamp(this.store).version;
  }

  async cpState(): Promise<{ version: bigint; ready: Map<string, boolean> }> {
    const r = await fetch(`${this.cp.url}/v1/state?after=0`, { signal: AbortSignal.timeout(5000) });
    const s = decodeState(new Uint8Array(await r.arrayBuffer()));
    return { version: s.version, ready: new Map(s.replicas.map((x) => [x.address, x.ready])) };
  }

  async cpReplicas(): Promise<Array<{ address: string; ready: boolean; stale: boolean; metricsAgeMs: number | null; consecutiveFailures: number }>> {
    const r = await fetch(`${this.cp.url}/v1/replicas`, { signal: AbortSignal.timeout(5000) });
    return ((await r.json()) as { replicas: Array<{ address: string; ready: boolean; stale: boolean; metricsAgeMs: number | null; consecutiveFailures: number }> }).replicas;
  }

  private async waitRoutable(): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      try {
        const reps = await this.cpReplicas();
        if (this.filterVersion() > 0n && reps.filter((r) => r.ready && r.metricsAgeMs !== null).length === 3) {
          const r = await fetch(`${this.gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'warm up', max_tokens: 1 }) });
          await r.arrayBuffer();
          if (r.ok) return;
        }
      } catch { /* not up yet */ }
      await sleep(20);
    }
    throw new Error('the stack did not become routable');
  }

  async close(): Promise<void> {
    await this.gw?.close().catch(() => {});
    await this.host?.close().catch(() => {});
    await this.cpFront?.kill().catch(() => {});
    await this.cp?.kill().catch(() => {});
    for (const f of this.fronts) await f.kill().catch(() => {});
    for (const s of this.sims) await s.close().catch(() => {});
  }
}

// ---- load ----

class Load {
  done = 0;
  failed = 0;
  private child: ChildProcess;
  readonly results: Promise<RequestRecord[]>;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  constructor(url: string, o: ChaosOptions) {
    const opts: LoadOptions = { url, requests: o.requests, concurrency: o.concurrency, maxTokens: o.maxTokens, model: MODEL, timeLimitMs: 120_000 };
    this.child = fork(fileURLToPath(new URL('./loadgen.ts', import.meta.url)), [JSON.stringify(opts)], { execArgv: ['--import', 'tsx'] });
    this.results = new Promise((resolve, reject) => {
      this.child.on('message', (m: LoadMessage) => {
        if ('progress' in m) {
          this.done = m.progress.done;
          this.failed = m.progress.failed;
          this.waiters = this.waiters.filter((w) => (this.done >= w.n ? (w.resolve(), false) : true));
        } else {
          for (const w of this.waiters) w.resolve();
          resolve(m.results);
        }
      });
      this.child.on('error', reject);
      this.child.on('exit', (code) => { if (code !== 0) reject(new Error(`load generator exited with ${code}`)); });
    });
  }

  /** Resolves once `n` requests have finished (or the load ended). */
  until(n: number): Promise<void> {
    if (this.done >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  stop(): Promise<RequestRecord[]> {
    if (this.child.connected) this.child.send({ stop: true });
    return this.results;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS, everyMs = 5): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return Date.now();
    await sleep(everyMs);
  }
  return null;
}

function summarize(records: RequestRecord[]): { requests: number; failed: RequestRecord[] } {
  return { requests: records.length, failed: records.filter((r) => r.error !== null || r.status !== 200) };
}

// ---- scenarios ----

export async function controlPlaneRestart(o: ChaosOptions): Promise<ScenarioResult> {
  const s = await Stack.start(o, false);
  const load = new Load(s.gw.url, o);
  try {
    await load.until(o.warmUp);
    const killAt = Date.now();
    const versionBefore = s.filterVersion();
    await s.cp.kill();
    o.log?.(`control plane killed (SIGKILL) at +0 ms, filter state version ${versionBefore}`);
    await sleep(o.controlPlaneDownMs);
    const versionWhileDown = s.filterVersion();
    const spawnUs = BigInt(Date.now()) * 1000n;
    const listenAt = await s.cp.start();
    // Versions start at the wall clock in microseconds: any state of the new process is >= spawnUs.
    const caughtUpAt = await waitFor(() => s.filterVersion() >= spawnUs);
    const recoveryMs = caughtUpAt === null ? null : caughtUpAt - listenAt;
    o.log?.(`control plane listening again after ${listenAt - killAt} ms; filter caught up ${recoveryMs} ms later`);
    await load.until(load.done + o.warmUp);
    const records = await load.stop();
    const { requests, failed } = summarize(records);
    const duringOutage = records.filter((r) => r.start >= killAt && r.start < listenAt).length;
    return {
      name: 'control-plane-restart', requests, failed: failed.length, recoveryMs,
      recovery: 'control plane listening again -> filter holds a state of the new process',
      checks: [
        { what: 'no failed request', ok: failed.length === 0, detail: JSON.stringify(failed.slice(0, 3)) },
        { what: 'requests kept flowing while the control plane was down', ok: duringOutage > 0, detail: `${duringOutage} requests started during the outage` },
        { what: 'the last good state was kept while down', ok: versionWhileDown === versionBefore || versionWhileDown > versionBefore, detail: `${versionBefore} -> ${versionWhileDown}` },
        { what: 'state caught up after the restart', ok: caughtUpAt !== null, detail: `filter version ${s.filterVersion()} >= ${spawnUs}` },
      ],
      details: { downMs: listenAt - killAt, duringOutage },
    };
  } finally {
    await load.stop().catch(() => {});
    await s.close();
  }
}

export async function replicaKilled(o: ChaosOptions): Promise<ScenarioResult> {
  const s = await Stack.start(o, false);
  const load = new Load(s.gw.url, o);
  const victim = s.fronts[2];
  try {
    await load.until(o.warmUp);
    // Failures before the kill (a scrape that timed out on a busy machine) count in the same
    // run; only failures after it are connection failures, and two of those must take it out.
    const failuresBefore = (await s.cpReplicas()).find((r) => r.address === victim.address)?.consecutiveFailures ?? 0;
    const killAt = Date.now();
    await victim.kill();
    await s.sims[2].close();
    o.log?.(`replica ${victim.address} killed`);
    // What the control plane serves once it has seen two scrapes of the dead replica fail.
    const twoFailedAt = await waitFor(async () => (await s.cpReplicas()).some((r) => r.address === victim.address && r.consecutiveFailures >= failuresBefore + 2), WAIT_MS, 2);
    const stateAfterTwoFailures = await s.cpState();
    const readyAfterTwoFailures = stateAfterTwoFailures.ready.get(victim.address);
    // Traffic has left once the control plane says not ready and the filter holds that state.
    const leftAt = await waitFor(async () => {
      const st = await s.cpState();
      return st.ready.get(victim.address) === false && s.filterVersion() >= st.version;
    }, WAIT_MS, 10);
    await sleep(300);
    await load.until(load.done + o.warmUp);
    const records = await load.stop();
    const { requests, failed } = summarize(records);
    const onVictimAfterKill = records.filter((r) => r.primary === victim.address && r.start >= killAt);
    const lastChoice = onVictimAfterKill.reduce((m, r) => Math.max(m, r.start), killAt);
    // Non-streamed answers come whole at the end, so these were reset before any response and retried too.
    const inFlightAtKill = records.filter((r) => r.primary === victim.address && r.start < killAt && r.end >= killAt).length;
    const retried = onVictimAfterKill.filter((r) => r.status === 200).length;
    const afterLeft = leftAt === null ? [] : records.filter((r) => r.primary === victim.address && r.start > leftAt + 100);
    return {
      name: 'replica-killed', requests, failed: failed.length, recoveryMs: lastChoice - killAt,
      recovery: 'replica killed -> last request the filter still sent to it',
      checks: [
        { what: 'failed requests no more than those in flight on the dead replica', ok: failed.length <= inFlightAtKill, detail: `${failed.length} failed, ${inFlightAtKill} in flight at the kill: ${JSON.stringify(failed.slice(0, 2))}` },
        { what: 'requests sent to the dead replica after the kill were retried on the runner-up', ok: onVictimAfterKill.every((r) => r.status === 200), detail: `${retried} of ${onVictimAfterKill.length} retried and answered` },
        { what: 'traffic left the dead replica', ok: leftAt !== null && afterLeft.length === 0, detail: `${afterLeft.length} requests chosen for it after the filter got a state without it` },
        { what: 'two failed scrapes after the kill take the replica out of the state', ok: readyAfterTwoFailures === false, detail: `ready=${readyAfterTwoFailures} after ${twoFailedAt === null ? '?' : twoFailedAt - killAt} ms` },
      ],
      details: { inFlightAtKill, retriedOnRunnerUp: retried, chosenAfterKill: onVictimAfterKill.length, leftAfterMs: leftAt === null ? null : leftAt - killAt, twoFailedScrapesAfterMs: twoFailedAt === null ? null : twoFailedAt - killAt },
    };
  } finally {
    await load.stop().catch(() => {});
    await s.close();
  }
}

export async function metricsHang(o: ChaosOptions): Promise<ScenarioResult> {
  const s = await Stack.start(o, false);
  const load = new Load(s.gw.url, o);
  const victim = s.fronts[1];
  try {
    await load.until(o.warmUp);
    const hangAt = Date.now();
    victim.hangMetrics = true;
    o.log?.(`replica ${victim.address}: /metrics hangs`);
    let othersStale = 0;
    let othersMaxAgeMs = 0;
    let samples = 0;
    const staleAt = await waitFor(async () => {
      const reps = await s.cpReplicas();
      samples++;
      for (const r of reps) {
        if (r.address === victim.address) continue;
        if (r.stale) othersStale++;
        othersMaxAgeMs = Math.max(othersMaxAgeMs, r.metricsAgeMs ?? Infinity);
      }
      return reps.some((r) => r.address === victim.address && !r.ready);
    }, WAIT_MS, 20);
    // While it still hangs, every other replica gets scraped: a loop blocked on the hung
    // scrape would scrape none of them until the hang ends (it does not, before release()).
    let othersAgesMs: number[] = [];
    const othersScrapedAt = await waitFor(async () => {
      const sinceHang = Date.now() - hangAt;
      const others = (await s.cpReplicas()).filter((r) => r.address !== victim.address);
      othersAgesMs = others.map((r) => r.metricsAgeMs ?? Infinity);
      return others.length === 2 && othersAgesMs.every((age) => age < sinceHang);
    }, WAIT_MS, 20);
    const leftAt = await waitFor(async () => {
      const st = await s.cpState();
      return st.ready.get(victim.address) === false && s.filterVersion() >= st.version;
    }, WAIT_MS, 10);
    await sleep(300);
    await load.until(load.done + o.warmUp);
    const records = await load.stop();
    const stillHung = victim.hangMetrics;
    victim.release();
    const { requests, failed } = summarize(records);
    const chosen = records.filter((r) => r.primary === victim.address && r.start >= hangAt);
    const lastChoice = chosen.reduce((m, r) => Math.max(m, r.start), hangAt);
    const afterLeft = leftAt === null ? [] : chosen.filter((r) => r.start > leftAt + 100);
    return {
      name: 'metrics-hang', requests, failed: failed.length, recoveryMs: lastChoice - hangAt,
      recovery: '/metrics hangs -> last request the filter still sent to that replica',
      checks: [
        { what: 'no failed request', ok: failed.length === 0, detail: JSON.stringify(failed.slice(0, 3)) },
        { what: 'the replica was marked stale', ok: staleAt !== null && stillHung, detail: `after ${staleAt === null ? '?' : staleAt - hangAt} ms` },
        {
          what: 'the scrape loop went on while it hung (other replicas scraped since)',
          ok: othersScrapedAt !== null && stillHung,
          detail: `other replicas last scraped ${othersAgesMs.join(', ')} ms before ${othersScrapedAt === null ? 'giving up' : `${othersScrapedAt - hangAt} ms into the hang`}; ${othersStale} stale readings of them in ${samples} samples, oldest ${othersMaxAgeMs} ms`,
        },
        { what: 'traffic left the replica', ok: leftAt !== null && afterLeft.length === 0, detail: `${afterLeft.length} requests chosen for it after the filter got a state without it` },
      ],
      details: { staleAfterMs: staleAt === null ? null : staleAt - hangAt, leftAfterMs: leftAt === null ? null : leftAt - hangAt, heldMetricsRequests: victim.hung, othersMaxAgeMs },
    };
  } finally {
    await load.stop().catch(() => {});
    await s.close();
  }
}

export async function corruptedState(o: ChaosOptions): Promise<ScenarioResult> {
  const s = await Stack.start(o, true);
  const front = s.cpFront!;
  const load = new Load(s.gw.url, o);
  try {
    await load.until(o.warmUp);
    const good = s.filterVersion();
    const servedGood = new Set<bigint>([good]);
    front.corruptState = true;
    const corruptAt = Date.now();
    o.log?.(`state payloads corrupted from now, filter at version ${good}`);
    const held: bigint[] = [];
    while (Date.now() - corruptAt < o.corruptForMs) {
      held.push(s.filterVersion());
      await sleep(10);
    }
    front.corruptState = false;
    const stopAt = Date.now();
    const target = (await s.cpState()).version;
    const caughtUpAt = await waitFor(() => s.filterVersion() >= target);
    await load.until(load.done + o.warmUp);
    const records = await load.stop();
    const { requests, failed } = summarize(records);
    // A corrupted payload may reach the filter after the corruption stopped: no upper bound.
    const rejectedDuring = s.rejections.filter((t) => t >= corruptAt).length;
    // A whole payload that passed the front just before the corruption began may land after it:
    // any version the front served whole is good, any other would be a corrupted one accepted.
    for (const v of front.servedWholeStates) servedGood.add(v);
    const changedWhileCorrupt = held.filter((v) => !servedGood.has(v));
    return {
      name: 'corrupted-state', requests, failed: failed.length, recoveryMs: caughtUpAt === null ? null : caughtUpAt - stopAt,
      recovery: 'corruption stops -> filter holds the control plane\'s current state',
      checks: [
        { what: 'no failed request', ok: failed.length === 0, detail: JSON.stringify(failed.slice(0, 3)) },
        { what: 'corrupted payloads were served and rejected', ok: front.corrupted > 0 && rejectedDuring > 0, detail: `${front.corrupted} corrupted, ${rejectedDuring} rejections logged` },
        { what: 'the last good state was kept', ok: changedWhileCorrupt.length === 0, detail: `versions held: ${[...new Set(held)].join(', ')}` },
        { what: 'good state taken again once the payloads are whole', ok: caughtUpAt !== null, detail: `filter ${s.filterVersion()} >= ${target}` },
      ],
      details: { corruptedPayloads: front.corrupted, rejectionsLogged: rejectedDuring },
    };
  } finally {
    await load.stop().catch(() => {});
    await s.close();
  }
}

export const SCENARIOS = { 'control-plane-restart': controlPlaneRestart, 'replica-killed': replicaKilled, 'metrics-hang': metricsHang, 'corrupted-state': corruptedState } as const;
export type ScenarioName = keyof typeof SCENARIOS;
