// Control-plane benchmark: CPU cost and scrape latency of scraping N stand-in
// replicas (real vLLM /metrics text, served from a child process so their CPU
// is not counted), the cost of one gateway fleet poll (report in, that
// gateway's state out), and weight propagation to the filter when the
// proxy-wasm host and the built filter are available.
//
//   npm run bench:control-plane -- [options] (--help lists them)
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startControlPlane } from '../control-plane/server.js';
import { createLogger } from '../control-plane/log.js';
import { toolArgs } from '../cli/toolArgs.js';
import { addressHasher } from '../control-plane/app.js';
import { FleetExchange } from '../control-plane/fleetExchange.js';
import { decodePlacementsSection, decodeReport, encodeReport, SECTION_PLACEMENTS, type PollReport } from '../control-plane/fleetWire.js';
import { StateStore } from '../control-plane/stateStore.js';
import { decodeState } from '../control-plane/stateWire.js';

/** Real vLLM /metrics text (data/README.md). */
const SAMPLE_PATH = fileURLToPath(new URL('../data/metrics/vllm-datadog-fixture.txt', import.meta.url));
const INTERVAL_MS = 50;
/** Weight flips measured for the propagation p99. */
const PROPAGATION_ROUNDS = 60;

const USAGE = `usage: npm run bench:control-plane -- [options]
  --replicas N,...      stand-in replica counts, one case each (default 64,256)
  --responses K,...     full (a replica that ignores name[] and sends all ~21 KB) and/or
                        filtered (one that honours it, as vLLM's prometheus_client does); default full,filtered
  --seconds S           measured scraping time per case (default 10)
  --warmup S            unmeasured scraping before it: connections opening, JIT warm-up (default 2)
  --rounds N            weight flips timed for the propagation p99 (default ${PROPAGATION_ROUNDS})
  --fleet-gateways G,...  gateways in the fleet poll cases (default 4,16; one case per replica count each)
  --fleet-placements P    placements each gateway reports per poll (default 256)
  --json                one JSON line: {"cases": [...], "weightPropagationP99Ms", ...}
  --help`;

/**
 * What prometheus_client's exposition app (vLLM's /metrics) returns for
 * `?name[]=a&name[]=b`: only those samples, each family with its HELP/TYPE.
 */
function filterLikePrometheusClient(text: string, names: Set<string>): string {
  const out: string[] = [];
  let family: string[] = [];
  let keep = false;
  const flush = () => { if (keep) out.push(...family); family = []; keep = false; };
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ')) { flush(); family.push(line); continue; }
    if (line.startsWith('#') || line === '') { family.push(line); continue; }
    const name = line.split(/[{ ]/, 1)[0];
    if (names.has(name)) { keep = true; family.push(line); }
  }
  flush();
  return out.join('\n') + '\n';
}

/** Child mode: serve `n` stand-in replicas, print their ports as one JSON line, run until stdin closes. */
async function serveReplicas(n: number, honourNameFilter: boolean): Promise<void> {
  const text = readFileSync(SAMPLE_PATH, 'utf8');
  const full = Buffer.from(text);
  const filtered = new Map<string, Buffer>();
  const ports: number[] = [];
  const servers: http.Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      let body: Buffer = full;
      const q = req.url!.indexOf('?');
      if (honourNameFilter && q >= 0) {
        const query = req.url!.slice(q + 1);
        body = filtered.get(query) ?? (() => {
          const names = new Set(new URLSearchParams(query).getAll('name[]'));
          const b = Buffer.from(filterLikePrometheusClient(text, names));
          filtered.set(query, b);
          return b;
        })();
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': body.length });
      res.end(body);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    ports.push((s.address() as { port: number }).port);
    servers.push(s);
  }
  process.stdout.write(JSON.stringify({ ports }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function startReplicaChild(n: number, honourNameFilter: boolean): Promise<{ ports: number[]; child: ChildProcess }> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve-replicas', String(n), ...(honourNameFilter ? ['--name-filter'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)).ports);
    });
    child.once('exit', (code) => reject(new Error(`replica child exited (${code})`)));
  });
  return { ports, child };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

type ReplicaResponse = 'full' | 'filtered';
interface Case { replicas: number; intervalMs: number; replicaResponse: ReplicaResponse; cpuCores: number; userCores: number; scrapeP99Ms: number; scrapes: number; failures: number }

async function runCase(n: number, seconds: number, warmupSeconds: number, replicaResponse: ReplicaResponse): Promise<Case> {
  const { ports, child } = await startReplicaChild(n, replicaResponse === 'filtered');
  const durations: number[] = [];
  let failures = 0;
  let measuring = false;
  const cp = await startControlPlane({
    replicas: ports.map((p) => `127.0.0.1:${p}`), scrapeIntervalMs: INTERVAL_MS, logger: createLogger('error'),
    onScrape(_a, o) {
      if (!measuring) return;
      if (o.ok) durations.push(o.durationMs); else failures++;
    },
  });
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  measuring = false;
  await cp.close();
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  return {
    replicas: n, intervalMs: INTERVAL_MS, replicaResponse,
    cpuCores: Number(((cpu.user + cpu.system) / 1000 / wallMs).toFixed(3)),
    userCores: Number((cpu.user / 1000 / wallMs).toFixed(3)),
    scrapeP99Ms: Number(percentile(durations, 99).toFixed(2)),
    scrapes: durations.length, failures,
  };
}

function parseOptions() {
  const { values, fail, int } = toolArgs('bench:control-plane', USAGE, {
    json: { type: 'boolean' }, seconds: { type: 'string' }, warmup: { type: 'string' }, replicas: { type: 'string' }, responses: { type: 'string' },
    rounds: { type: 'string' }, 'fleet-gateways': { type: 'string' }, 'fleet-placements': { type: 'string' },
    // Internal: the child process that serves the stand-in replicas.
    'serve-replicas': { type: 'string' }, 'name-filter': { type: 'boolean' },
  });
  const number = (flag: string, v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) fail(`--${flag} must be a number >= ${min}, got '${v}'`);
    return n;
  };
  const sizes = (values.replicas ?? '64,256').split(',').map((v) => int('replicas', v, 0, 1));
  const responses = (values.responses ?? 'full,filtered').split(',');
  for (const r of responses) if (r !== 'full' && r !== 'filtered') fail(`--responses takes full and/or filtered, got '${r}'`);
  return {
    json: values.json === true,
    seconds: number('seconds', values.seconds, 10, 0.1),
    warmupSeconds: number('warmup', values.warmup, 2, 0),
    rounds: int('rounds', values.rounds, PROPAGATION_ROUNDS, 1),
    sizes,
    responses: responses as ReplicaResponse[],
    fleetGateways: (values['fleet-gateways'] ?? '4,16').split(',').map((v) => int('fleet-gateways', v, 0, 1)),
    fleetPlacements: int('fleet-placements', values['fleet-placements'], 256, 0),
    serveReplicas: values['serve-replicas'] === undefined ? undefined : int('serve-replicas', values['serve-replicas'], 0, 1),
    nameFilter: values['name-filter'] === true,
  };
}

async function main(): Promise<void> {
  const o = parseOptions();
  if (o.serveReplicas !== undefined) return serveReplicas(o.serveReplicas, o.nameFilter);
  const cases: Case[] = [];
  for (const n of o.sizes) for (const resp of o.responses) {
    const c = await runCase(n, o.seconds, o.warmupSeconds, resp);
    cases.push(c);
    if (!o.json) {
      console.log(`${n} replicas @ ${INTERVAL_MS} ms, ${resp} responses: ${c.cpuCores} cores (user ${c.userCores}), scrape p99 ${c.scrapeP99Ms} ms (${c.scrapes} scrapes, ${c.failures} failed, expected ~${Math.round(n * o.seconds * 1000 / INTERVAL_MS)})`);
    }
  }
  const fleetCases: FleetCase[] = [];
  for (const n of o.sizes) for (const g of o.fleetGateways) {
    const c = await measureFleetPolls(n, g, o.fleetPlacements);
    fleetCases.push(c);
    if (!o.json) {
      console.log(`fleet poll, ${n} replicas, ${g} gateways, ${c.placementsPerReport} placements a report: ${c.pollUsMean} us a poll (p99 ${c.pollUsP99}), ` +
        `answer ${c.answerBytesMean} bytes with ${c.placementsPerAnswerMean} placements; GET answer ${c.getBytes} bytes; publish ${c.publishUsMean} us a version; ${c.placementsHeld} placements held`);
    }
  }
  const propagation = await measurePropagation(o.rounds);
  if (o.json) {
    console.log(JSON.stringify({
      cases: cases.map(({ replicas, intervalMs, replicaResponse, cpuCores, scrapeP99Ms }) => ({ replicas, intervalMs, cpuCores, scrapeP99Ms, replicaResponse })),
      fleetPolls: fleetCases,
      weightPropagationP99Ms: propagation.p99Ms,
      ...(propagation.note ? { weightPropagationNote: propagation.note } : {}),
    }));
  } else {
    console.log(propagation.p99Ms === null ? `weight propagation: not measured (${propagation.note})` : `weight propagation p99: ${propagation.p99Ms} ms (${propagation.note})`);
  }
}

interface FleetCase {
  replicas: number; gateways: number; placementsPerReport: number; polls: number;
  pollUsMean: number; pollUsP99: number; answerBytesMean: number; placementsPerAnswerMean: number; getBytes: number; publishUsMean: number; placementsHeld: number;
}

/**
 * One gateway fleet poll as the control plane serves it, in process (no
 * socket): the report decoded and taken in, then, at the next version, that
 * gateway's sections built and appended to the state. Every gateway reports
 * `placements` new placements (random checkpoints on random replicas) and its
 * work on every replica each round; a round is one fleet publish period.
 */
async function measureFleetPolls(replicas: number, gateways: number, placements: number): Promise<FleetCase> {
  const hash = await addressHasher();
  let now = 0;
  const store = new StateStore({ prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, { stalenessMs: 2000, hitRateWindowMs: 60_000, now: () => now });
  const addresses = Array.from({ length: replicas }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1:8000`);
  store.setMembers(addresses.map((address) => ({ address, ready: true })));
  const fleet = new FleetExchange({ hashAddress: hash, now: () => now });
  store.onPublish((st) => fleet.setReplicas(st.replicas));
  const replicaHashes = addresses.map(hash);
  const cursors = new Array<bigint>(gateways).fill(0n);
  let seed = 12345;
  // xorshift32: every bit of it is random enough for replica and checkpoint choices.
  const rand = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed; };
  const pollUs: number[] = [];
  const publishUs: number[] = [];
  let answerBytes = 0, answerPlacements = 0;
  const warmRounds = 20, rounds = 100;
  for (let round = 0; round < warmRounds + rounds; round++) {
    now += 50;
    for (let i = 0; i < replicas; i++) store.recordSuccess(addresses[i]!, { waiting: rand() % 8, running: 8 + (rand() % 8), kvUsage: (rand() % 100) / 100, kvCapacityTokens: 150_000 });
    const reports: Uint8Array[] = [];
    for (let g = 0; g < gateways; g++) {
      const r: PollReport = {
        gatewayId: BigInt(g + 1), placementsSeen: cursors[g]!,
        work: replicaHashes.map((replica) => ({ replica, queuedTokens: rand() % 20_000, decodeWork: rand() % 5_000 })),
        content: replicaHashes.map((replica) => ({ replica, writtenUnits: rand() % 1_000_000 })),
        placements: Array.from({ length: placements }, () => ({ hash: (BigInt(rand()) << 32n) | BigInt(rand()), replica: replicaHashes[rand() % replicas]!, depth: 16 * (1 + (rand() % 64)) })),
      };
      reports.push(encodeReport(r));
    }
    const taken: PollReport[] = [];
    const t0 = performance.now();
    for (const bytes of reports) { const r = decodeReport(bytes); fleet.ingest(r); taken.push(r); }
    const ingestMs = performance.now() - t0;
    const t1 = performance.now();
    fleet.takeChanged();
    store.publish(true);
    const publishMs = performance.now() - t1;
    for (let g = 0; g < gateways; g++) {
      const t2 = performance.now();
      const answer = store.payloadFor(fleet.sectionsFor(store.state, taken[g]!));
      const answerMs = performance.now() - t2;
      const sec = decodeState(answer).sections!.find((x) => x.tag === SECTION_PLACEMENTS)!;
      const placed = decodePlacementsSection(sec.bytes, replicas);
      cursors[g] = placed.through;
      if (round >= warmRounds) {
        pollUs.push((ingestMs / gateways + answerMs) * 1000);
        answerBytes += answer.length;
        answerPlacements += placed.placements.length;
      }
    }
    if (round >= warmRounds) publishUs.push(publishMs * 1000);
  }
  const polls = pollUs.length;
  return {
    replicas, gateways, placementsPerReport: placements, polls,
    pollUsMean: Math.round(pollUs.reduce((a, b) => a + b, 0) / polls),
    pollUsP99: Math.round(percentile(pollUs, 99)),
    answerBytesMean: Math.round(answerBytes / polls),
    placementsPerAnswerMean: Math.round(answerPlacements / polls),
    getBytes: store.bytes.length,
    publishUsMean: Math.round(publishUs.reduce((a, b) => a + b, 0) / publishUs.length),
    placementsHeld: fleet.placementCount,
  };
}

const WASM_PATH = fileURLToPath(new URL('../plugin/prefix-router.wasm', import.meta.url));

/**
 * From PUT /v1/weights to the first routing decision of every worker VM that
 * uses the new weights, through the real filter in our proxy-wasm host (its
 * long poll reaches this control plane through the host's proxy_http_call).
 * Replica A has the shorter queue and the fuller KV cache, B the opposite: with
 * queue-only weights the filter picks A, with KV-only weights B.
 */
async function measurePropagation(rounds: number): Promise<{ p99Ms: number | null; note: string }> {
  if (!existsSync(WASM_PATH)) return { p99Ms: null, note: 'plugin/prefix-router.wasm not built (npm run build:wasm)' };
  let hostModule: typeof import('../host/index.js');
  try {
    hostModule = await import('../host/index.js');
  } catch (e) {
    return { p99Ms: null, note: `host/ (ProxyWasmHost) not loadable: ${(e as Error).message}` };
  }
  const text = readFileSync(SAMPLE_PATH, 'utf8');
  const withValues = (waiting: number, running: number, kv: number) => text
    .replace(/^(vllm:num_requests_running(?:\{[^\n]*\})?[ \t]+)\S+/gm, `$1${running}`)
    .replace(/^(vllm:num_requests_waiting(?:\{[^\n]*\})?[ \t]+)\S+/gm, `$1${waiting}`)
    .replace(/^(vllm:kv_cache_usage_perc(?:\{[^\n]*\})?[ \t]+)\S+/gm, `$1${kv}`);
  // The guard's load is waiting + in flight, and below its spill floor (MIN_SPILL_LOAD, 8, in
  // assembly/scheduling/picker.ts) it passes nobody over: 0 and 2 waiting keep both replicas
  // eligible, so the scorers alone decide and the weights are what is measured.
  const bodies = [withValues(0, 4, 0.9), withValues(2, 4, 0.1)];
  const servers = await Promise.all(bodies.map(async (b) => {
    const s = http.createServer((_q, res) => res.end(b));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return s;
  }));
  const [a, b] = servers.map((s) => `127.0.0.1:${(s.address() as { port: number }).port}`);
  const token = 'bench-token';
  const cp = await startControlPlane({ replicas: [a, b], scrapeIntervalMs: INTERVAL_MS, token, logger: createLogger('error') });
  const workers = 2;
  const host = await hostModule.ProxyWasmHost.create({
    wasm: readFileSync(WASM_PATH), workers, logLevel: 'warn', onLog: () => {},
    pluginConfig: JSON.stringify({ controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 1000, retryMs: 50 } }),
    clusters: { prefix_router_control_plane: cp.url },
  });
  const body = new TextEncoder().encode(JSON.stringify({ model: 'qwen', prompt: 'propagation probe', max_tokens: 1 }));
  const route = (worker: number): string | undefined => {
    const s = host.newStream({ worker });
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gateway'], [':scheme', 'http'], ['content-length', String(body.length)]], false);
    if (!s.localResponse) s.requestBody(body, true);
    const endpoint = s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')?.[1];
    s.complete();
    return endpoint;
  };
  const put = (w: object) => fetch(`${cp.url}/v1/weights`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(w) });
  const queueOnly = { prefix: 0, queue: 1, kvCache: 0, inflight: 0 };
  const kvOnly = { prefix: 0, queue: 0, kvCache: 1, inflight: 0 };
  const yieldNow = () => new Promise((r) => setImmediate(r));
  const samples: number[] = [];
  try {
    await put(queueOnly);
    const ready = Date.now() + 10_000;
    while (!(route(0) === a && route(1) === a)) {
      if (Date.now() > ready) return { p99Ms: null, note: 'the filter never routed on the control plane state' };
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let i = 0; i < rounds; i++) {
      const [weights, expected] = i % 2 === 0 ? [kvOnly, b] : [queueOnly, a];
      const switched = new Array(workers).fill(false);
      const t0 = performance.now();
      const res = await put(weights);
      if (!res.ok) throw new Error(`PUT /v1/weights answered ${res.status}`);
      while (switched.includes(false)) {
        for (let w = 0; w < workers; w++) if (!switched[w] && route(w) === expected) switched[w] = true;
        if (performance.now() - t0 > 10_000) {
          throw new Error(`weights did not reach every worker within 10 s (expected ${expected}; workers route to ${[0, 1].map(route).join(', ')}; state ${JSON.stringify(cp.state(), (_k, v) => typeof v === 'bigint' ? String(v) : v)})`);
        }
        await yieldNow();
      }
      samples.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    host.close?.();
    await cp.close();
    for (const s of servers) { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); }
  }
  return {
    p99Ms: Number(percentile(samples, 99).toFixed(1)),
    note: `${samples.length} weight flips, until every one of ${workers} worker VMs routes with the new weights; median ${percentile(samples, 50).toFixed(1)} ms`,
  };
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
