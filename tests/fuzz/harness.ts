// Runs generated and mutated inputs through plugin/prefix-router.wasm in the proxy-wasm
// host (two worker VMs, as Envoy runs one per worker) and checks, for every case:
// no trap; the request is routed to a replica the filter may know (its configuration or
// the state it holds), or answered with a clear error; a client-sent destination never
// survives; a bad state is rejected and the last good one kept; a bad configuration is
// rejected with a log line.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ManualClock, ProxyWasmHost, SharedDataStore, type HeaderPairs, type LogEvent } from '../../host/index.js';
import { STATE_CONTENT_TYPE, type RouterState } from '../../control-plane/stateWire.js';
import { decodeStateAsFilter } from '../../control-plane/stateSections.js';
import { Rng } from './rng.js';
import { generateConfig, generateRequest, statePayload, type FuzzRequest } from './generators.js';
import { KEY_INFLIGHT, writeStamp } from '../../plugin/sharedData.js';

export const WASM_PATH = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
const SCHEMA_PATH = fileURLToPath(new URL('../../plugin/config.schema.json', import.meta.url));
const VM_ID = 'prefix_router';
const KEY_STATE = 'prefix_router.state';
const DESTINATION = 'x-gateway-destination-endpoint';
const FALLBACK = 'x-prefix-router-fallback-endpoint';
/** Worker VMs per host: Envoy runs one per worker thread; two show cross-VM effects. */
export const FUZZ_WORKERS = 2;
export const STATIC_REPLICAS = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'];

export interface FuzzCounts {
  requests: number;
  statePayloads: number;
  httpStatePayloads: number;
  configs: number;
}

export interface FuzzOptions extends FuzzCounts {
  seed: number;
  onProgress?: (phase: string, done: number, total: number) => void;
}

export interface Finding {
  kind: string;
  case: string;
  detail: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  traps: number;
  /** Neither routed to a replica the filter may know nor answered with a clear error. */
  unroutedWithoutError: number;
  routed: number;
  /** The filter's 503 with an OpenAI-style JSON error (no ready replica). */
  errors503: number;
  /** The host's (Envoy's) 413: a buffered body passed the buffer limit. */
  payloadTooLarge413: number;
  /** A client-sent destination or fallback header reached the upstream. */
  hostileLeaks: number;
  /** The filter accepted a state the reference decoder (control-plane/stateSections.ts, decodeStateAsFilter) rejects, or the other way round. */
  stateDecoderDisagreements: number;
  statesAccepted: number;
  statesRejected: number;
  configsAccepted: number;
  configsRejected: number;
  /** A configuration rejected without a log line naming why. */
  configRejectedSilently: number;
  /** The filter's verdict differs from plugin/config.schema.json's (diagnostic: the schema is the documented contract). */
  configSchemaDisagreements: number;
  /** The long poll stopped after a control-plane answer (no further poll arrived). */
  pollStalls: number;
  /** State answers the stand-in control plane gave (HTTP phase). */
  httpStatePayloadsDone: number;
  findings: Finding[];
  byBodyKind: Record<string, number>;
}

const MAX_FINDINGS_KEPT = 50;

function newReport(seed: number): FuzzReport {
  return {
    seed, cases: 0, traps: 0, unroutedWithoutError: 0, routed: 0, errors503: 0, payloadTooLarge413: 0, hostileLeaks: 0,
    stateDecoderDisagreements: 0, statesAccepted: 0, statesRejected: 0, configsAccepted: 0, configsRejected: 0,
    configRejectedSilently: 0, configSchemaDisagreements: 0, pollStalls: 0, httpStatePayloadsDone: 0, findings: [], byBodyKind: {},
  };
}

function note(r: FuzzReport, kind: string, where: string, detail: string, maxChars = 500): void {
  if (r.findings.length < MAX_FINDINGS_KEPT) r.findings.push({ kind, case: where, detail: detail.slice(0, maxChars) });
}

/** What a worker VM should be routing on, tracked independently of the module. */
interface ExpectedTable {
  version: bigint;
  fromControlPlane: boolean;
  ready: Set<string>;
}

function fromState(s: RouterState): ExpectedTable {
  return { version: s.version, fromControlPlane: true, ready: new Set(s.replicas.filter((r) => r.ready).map((r) => r.address)) };
}

function tryDecode(payload: Uint8Array): RouterState | null {
  try {
    return decodeStateAsFilter(payload);
  } catch {
    return null;
  }
}

/** What the oracle knows of one worker VM: the table it routes on, and the last stamp version it fetched the published bytes for. */
export interface WorkerModel {
  table: ExpectedTable;
  fetchedStamp: bigint;
}

export function newWorkerModel(): WorkerModel {
  return { table: { version: 0n, fromControlPlane: false, ready: new Set(STATIC_REPLICAS) }, fetchedStamp: 0n };
}

/**
 * What a worker VM does with the published state on its next request that reaches routing
 * (assembly/state/stateDelivery.ts, notice()): it fetches and decodes the bytes under `stored`
 * only when the stamp names a version other than its table's and other than the last it
 * fetched, accepted or rejected, so bytes rewritten under a stamp it has seen are not read
 * again. The stamp is written as a u64: one past 2^64 - 1 wraps (to 0: no state published).
 * `decoded`: the reference decoding of `stored`, when the caller has it.
 */
export function expectPickup(vm: WorkerModel, written: bigint | null, stored: Uint8Array | null, decoded?: RouterState | null): { reject: boolean; next: WorkerModel } {
  const stamp = BigInt.asUintN(64, written ?? 0n);
  if (stamp === 0n || !stored) return { reject: false, next: vm };
  if ((stamp === vm.table.version && vm.table.fromControlPlane) || stamp === vm.fetchedStamp) return { reject: false, next: vm };
  const d = decoded === undefined ? tryDecode(stored) : decoded;
  if (!d) return { reject: true, next: { table: vm.table, fetchedStamp: stamp } };
  const same = d.version === vm.table.version && vm.table.fromControlPlane;
  return { reject: false, next: { table: same ? vm.table : fromState(d), fetchedStamp: stamp } };
}

type Outcome = 'routed' | 'error503' | 'tooLarge' | 'unrouted' | 'trap';

/**
 * Drives one request through a worker and classifies it against the replicas that worker
 * may route to. Returns the outcome; records leaks and findings in the report.
 */
export function driveRequest(host: ProxyWasmHost, worker: number, req: FuzzRequest, allowed: Set<string>, report: FuzzReport, where: string, respond = true): Outcome {
  const trapsBefore = host.traps;
  const s = host.newStream({ worker });
  let outcome: Outcome = 'unrouted';
  try {
    const noBody = req.chunks.length === 0 && !req.trailers;
    s.requestHeaders(req.headers, noBody);
    for (let i = 0; i < req.chunks.length && !s.localResponse; i++) {
      s.requestBody(req.chunks[i], i === req.chunks.length - 1 && !req.trailers);
    }
    if (req.trailers && !s.localResponse) s.requestTrailers(req.trailers);
    if (host.traps !== trapsBefore) {
      outcome = 'trap';
    } else if (s.localResponse) {
      const lr = s.localResponse;
      if (lr.status === 503 && isJsonError(lr.body)) outcome = 'error503';
      else if (lr.status === 413) outcome = 'tooLarge';
      else note(report, 'unclear-local-response', where, `status ${lr.status} details ${lr.details} body ${Buffer.from(lr.body).toString().slice(0, 100)}`);
    } else if (s.continued) {
      const up = s.requestHeaderList();
      const dest = up.filter(([k]) => k === DESTINATION).map(([, v]) => v);
      const fallback = up.filter(([k]) => k === FALLBACK).map(([, v]) => v);
      const trailers = s.requestTrailerList() ?? [];
      if (dest.length !== 1 || fallback.length > 1 || fallback.some((f) => !allowed.has(f) || f === dest[0]) || trailers.some(([k]) => k === DESTINATION || k === FALLBACK)) {
        report.hostileLeaks++;
        note(report, 'destination-leak', where, JSON.stringify({ dest, fallback, trailers: trailers.filter(([k]) => k.startsWith('x-')) }));
      }
      if (dest.length >= 1 && allowed.has(dest[0])) outcome = 'routed';
      else note(report, 'unknown-endpoint', where, `endpoint ${JSON.stringify(dest[0])} not in ${JSON.stringify([...allowed].slice(0, 8))}`);
    } else {
      note(report, 'stalled', where, 'request neither continued nor answered after end of stream');
    }
    if (respond && outcome === 'routed') {
      s.responseHeaders([[':status', '200'], ['content-type', 'application/json']], false);
      s.responseBody(new TextEncoder().encode('{"ok":true}'), true);
      if (host.traps !== trapsBefore) outcome = 'trap';
    }
  } finally {
    s.complete();
  }
  if (host.traps !== trapsBefore) outcome = 'trap';
  return outcome;
}

function isJsonError(body: Uint8Array): boolean {
  try {
    const j = JSON.parse(Buffer.from(body).toString('utf8')) as { error?: { message?: unknown } };
    return typeof j.error?.message === 'string' && j.error.message.length > 0;
  } catch {
    return false;
  }
}

function tally(report: FuzzReport, o: Outcome): void {
  report.cases++;
  if (o === 'routed') report.routed++;
  else if (o === 'error503') report.errors503++;
  else if (o === 'tooLarge') report.payloadTooLarge413++;
  else if (o === 'trap') report.traps++;
  else report.unroutedWithoutError++;
}

function u64le(...xs: bigint[]): Uint8Array {
  const b = new Uint8Array(8 * xs.length);
  const dv = new DataView(b.buffer);
  xs.forEach((x, i) => dv.setBigUint64(8 * i, BigInt.asUintN(64, x), true));
  return b;
}

/** Phase 1: requests, interleaved with state payloads written straight into shared data. */
async function fuzzRequestsAndSharedState(o: FuzzOptions, report: FuzzReport, wasm: Uint8Array): Promise<void> {
  const rng = new Rng(o.seed);
  const clock = new ManualClock(1_700_000_000_000_000_000n);
  const store = new SharedDataStore();
  let rejectLogs = 0;
  let lastReject = '';
  const host = await ProxyWasmHost.create({
    wasm, workers: FUZZ_WORKERS, pluginConfig: JSON.stringify({ replicas: STATIC_REPLICAS }), clock, sharedData: store, logLevel: 'warn',
    onLog: (e: LogEvent) => { if (e.message.includes('state rejected')) { rejectLogs++; lastReject = e.message; } },
  });
  const vms: WorkerModel[] = Array.from({ length: FUZZ_WORKERS }, newWorkerModel);
  // Every request path re-reads shared data; these mirror what sits there now.
  let stamp: { version: bigint } | null = null;
  let stored: Uint8Array | null = null;
  const total = o.requests + o.statePayloads;
  // Spread state deliveries evenly over the request stream.
  const stateEvery = o.statePayloads > 0 ? Math.max(1, Math.floor(total / o.statePayloads)) : Infinity;
  let statesLeft = o.statePayloads;
  let requestsLeft = o.requests;
  let step = 0;
  try {
    while (requestsLeft > 0 || statesLeft > 0) {
      step++;
      if (step % 1000 === 0) {
        clock.advanceBy(50_000_000n); // 50 ms: ticks flush counters and refresh heartbeats
        host.runDueTicks();
        o.onProgress?.('requests+state', step, total);
        if (step % 20000 === 0) await new Promise((r) => setImmediate(r));
      }
      const doState = statesLeft > 0 && (requestsLeft === 0 || step % stateEvery === 0);
      if (doState) {
        statesLeft--;
        const where = `state#${o.statePayloads - statesLeft} seed ${o.seed}`;
        const current = vms[rng.int(vms.length)].table;
        const version = rng.weighted([[6, current.version + 1n + BigInt(rng.int(1000))], [1, current.version], [1, BigInt(rng.u32())], [0.2, 0n]] as const);
        const { payload } = statePayload(rng, version === 0n ? 1n : version);
        // The envelope: [u64 receivedAtNs][payload], sometimes broken too, and the stamp [u64 version][u64 seenNs].
        const receivedAt = rng.weighted([[8, clock.nowNs()], [1, 0n], [1, 0xffffffffffffffffn]] as const);
        let envelope = new Uint8Array(8 + payload.length);
        envelope.set(u64le(receivedAt), 0);
        envelope.set(payload, 8);
        if (rng.chance(0.03)) envelope = envelope.subarray(0, rng.int(9));
        const decoded = tryDecode(payload);
        const stampVersion = rng.weighted([[8, decoded?.version ?? version], [1, BigInt(rng.u32())]] as const);
        const seenNs = rng.chance(0.9) ? clock.nowNs() : BigInt(rng.u32());
        // The stamp is raised in the in-flight blob, keeping its rows (plugin/sharedData.ts); now and
        // then a foreign writer leaves that key too short to hold a stamp, which must read as none.
        const broken = rng.chance(0.03);
        store.set(VM_ID, KEY_STATE, envelope, 0);
        if (broken) store.set(VM_ID, KEY_INFLIGHT, u64le(stampVersion, seenNs).subarray(0, rng.int(16)), 0);
        else writeStamp(store, { version: stampVersion, seenNs }, VM_ID);
        stamp = !broken && stampVersion !== 0n ? { version: stampVersion } : null;
        stored = envelope.length > 8 ? envelope.subarray(8) : null;
        // Each worker picks it up on its next request that reaches routing (one the host answers
        // 413 while buffering never does, nor needs to): check both.
        for (let w = 0, tries = 0; w < FUZZ_WORKERS && tries < 16; tries++) {
          const vm = vms[w];
          const sameBytes = stored !== null && (stored === payload || (stored.length === payload.length && Buffer.compare(stored, payload) === 0));
          const { reject: expectReject, next } = expectPickup(vm, stamp?.version ?? null, stored, sameBytes ? decoded : undefined);
          const logsBefore = rejectLogs;
          const req = generateRequest(rng, false);
          // Either table is one the filter may know; whether it took the one the reference codec
          // says it should is checked by the log line, and counted as a disagreement.
          const outcome = driveRequest(host, w, req, next.table === vm.table ? vm.table.ready : new Set([...vm.table.ready, ...next.table.ready]), report, where);
          if (outcome === 'tooLarge') {
            tally(report, outcome);
            continue;
          }
          const rejected = rejectLogs > logsBefore;
          if (rejected !== expectReject) {
            report.stateDecoderDisagreements++;
            note(report, 'state-decoder-disagreement', where, `filter ${rejected ? `rejected (${lastReject})` : 'accepted'}, decodeStateAsFilter ${expectReject ? 'rejects' : 'accepts'}: ${Buffer.from(stored ?? []).toString('hex')}`, 20000);
          }
          if (expectReject) report.statesRejected++;
          else if (next.table !== vm.table) report.statesAccepted++;
          vms[w] = rejected ? { table: vm.table, fetchedStamp: next.fetchedStamp } : next;
          tally(report, outcome);
          w++;
        }
        continue;
      }
      requestsLeft--;
      const w = rng.int(FUZZ_WORKERS);
      const req = generateRequest(rng, true);
      report.byBodyKind[req.bodyKind] = (report.byBodyKind[req.bodyKind] ?? 0) + 1;
      tally(report, driveRequest(host, w, req, vms[w].table.ready, report, `request#${o.requests - requestsLeft} seed ${o.seed}`));
    }
  } finally {
    await host.close();
  }
}

/** Phase 2: configurations, each accepted (and then routing) or rejected with a log line. */
async function fuzzConfigs(o: FuzzOptions, report: FuzzReport, wasm: Uint8Array): Promise<void> {
  const rng = new Rng(o.seed ^ 0x5eed);
  const ajv = new Ajv2020({ allErrors: false, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object);
  for (let i = 0; i < o.configs; i++) {
    if (i % 100 === 0) o.onProgress?.('configs', i, o.configs);
    const where = `config#${i} seed ${o.seed}`;
    const text = generateConfig(rng);
    const logs: LogEvent[] = [];
    let trapped = 0;
    let host: ProxyWasmHost | null = null;
    try {
      host = await ProxyWasmHost.create({
        wasm, workers: FUZZ_WORKERS, pluginConfig: text, clock: new ManualClock(1n), sharedData: new SharedDataStore(), logLevel: 'info',
        onLog: (e) => logs.push(e), onTrap: () => { trapped++; },
      });
    } catch (e) {
      if (trapped === 0 && !String(e).includes('rejects the filter configuration')) note(report, 'config-load-error', where, String(e));
    }
    report.cases++;
    if (trapped > 0) {
      report.traps += trapped;
      note(report, 'config-trap', where, text.slice(0, 300));
      await host?.close();
      continue;
    }
    let parsed: unknown;
    let schemaOk = false;
    try {
      parsed = JSON.parse(text);
      const addresses = replicaAddresses(parsed);
      schemaOk = (validate(parsed) as boolean) && new Set(addresses).size === addresses.length;
    } catch { /* not JSON: the schema rejects it too */ }
    if (!host) {
      report.configsRejected++;
      if (!logs.some((l) => l.message.includes('configuration rejected'))) {
        report.configRejectedSilently++;
        note(report, 'config-rejected-silently', where, text.slice(0, 300));
      }
      if (schemaOk) {
        report.configSchemaDisagreements++;
        note(report, 'config-schema-disagreement', where, `schema accepts, filter rejects (${logs.map((l) => l.message).join(' | ').slice(0, 200)}): ${text.slice(0, 300)}`);
      }
      continue;
    }
    report.configsAccepted++;
    if (!schemaOk) {
      report.configSchemaDisagreements++;
      note(report, 'config-schema-disagreement', where, `filter accepts, schema rejects (${ajv.errorsText(validate.errors)}): ${text.slice(0, 300)}`);
    }
    try {
      const allowed = new Set(replicaAddresses(parsed));
      for (let w = 0; w < FUZZ_WORKERS; w++) {
        tally(report, driveRequest(host, w, generateRequest(rng, false), allowed, report, where));
      }
    } finally {
      await host.close();
    }
  }
}

/** A stand-in control plane whose every answer the driver chooses. */
class StandInControlPlane {
  private pending: http.ServerResponse[] = [];
  private arrivals: Array<() => void> = [];
  readonly server = http.createServer((_req, res) => {
    this.pending.push(res);
    const a = this.arrivals;
    this.arrivals = [];
    for (const f of a) f();
  });
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  /** The next poll, or null if none arrives within ms. */
  async nextPoll(ms: number): Promise<http.ServerResponse | null> {
    if (this.pending.length) return this.pending.shift()!;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.arrivals.push(() => { clearTimeout(t); resolve(); });
    });
    return this.pending.shift() ?? null;
  }
  async close(): Promise<void> {
    for (const r of this.pending) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Phase 3: state payloads served over HTTP to the filter's long poll (proxy_http_call). */
async function fuzzHttpState(o: FuzzOptions, report: FuzzReport, wasm: Uint8Array): Promise<void> {
  if (o.httpStatePayloads === 0) return;
  const rng = new Rng(o.seed ^ 0xc0ffee);
  const cp = new StandInControlPlane();
  const url = await cp.listen();
  const clock = new ManualClock(1_700_000_000_000_000_000n);
  let rejectLogs = 0;
  const host = await ProxyWasmHost.create({
    wasm, workers: FUZZ_WORKERS, clock, sharedData: new SharedDataStore(), logLevel: 'warn',
    pluginConfig: JSON.stringify({ controlPlane: { cluster: 'cp', retryMs: 10, longPollMs: 1000 }, replicas: STATIC_REPLICAS }),
    clusters: { cp: url },
    onLog: (e) => { if (e.message.includes('state rejected')) rejectLogs++; },
  });
  let published: ExpectedTable = { version: 0n, fromControlPlane: false, ready: new Set(STATIC_REPLICAS) };
  /** Waits for the filter's next poll, moving the manual clock so retry ticks fire. */
  const awaitPoll = async (): Promise<http.ServerResponse | null> => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const res = await cp.nextPoll(attempt === 0 ? 20 : 5);
      if (res) return res;
      clock.advanceBy(110_000_000n); // past retryMs and one 100 ms tick
      host.runDueTicks();
    }
    return null;
  };
  try {
    let res = await awaitPoll();
    for (let i = 0; i < o.httpStatePayloads && res; i++) {
      if (i % 200 === 0) o.onProgress?.('http state', i, o.httpStatePayloads);
      const where = `http-state#${i} seed ${o.seed}`;
      const version = rng.weighted([[6, published.version + 1n + BigInt(rng.int(1000))], [1, published.version], [1, BigInt(rng.u32())]] as const);
      const { payload } = statePayload(rng, version === 0n ? 1n : version);
      const answer = rng.weighted([[10, 'state'], [1, '304'], [1, '500'], [1, 'empty'], [1, 'reset'], [0.5, 'wrongType']] as const);
      const logsBefore = rejectLogs;
      let expectReject = false;
      if (answer === 'state' || answer === 'wrongType') {
        const d = tryDecode(payload);
        if (!d) expectReject = true;
        else if (d.version > published.version || !published.fromControlPlane) published = fromState(d);
        res.writeHead(200, { 'content-type': answer === 'state' ? STATE_CONTENT_TYPE : 'text/html', 'content-length': payload.length }).end(payload);
      } else if (answer === '304') res.writeHead(304).end();
      else if (answer === '500') res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
      else if (answer === 'empty') res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': 0 }).end();
      else {
        res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': payload.length + 100 });
        res.write(payload.subarray(0, payload.length >> 1));
        const cut = res;
        setTimeout(() => cut.destroy(), 1);
      }
      // The previous answer is fully handled once the next poll arrives.
      res = await awaitPoll();
      if (!res) {
        report.pollStalls++;
        note(report, 'poll-stall', where, `no poll after a '${answer}' answer`);
        break;
      }
      const rejected = rejectLogs > logsBefore;
      if (answer === 'empty' ? false : rejected !== expectReject) {
        report.stateDecoderDisagreements++;
        note(report, 'state-decoder-disagreement', where, `filter ${rejected ? 'rejected' : 'accepted'} over HTTP, decodeStateAsFilter ${expectReject ? 'rejects' : 'accepts'}: ${Buffer.from(payload).toString('hex').slice(0, 400)}`);
      }
      if (expectReject) report.statesRejected++;
      else if (answer === 'state' || answer === 'wrongType') report.statesAccepted++;
      report.httpStatePayloadsDone++;
      for (let w = 0; w < FUZZ_WORKERS; w++) tally(report, driveRequest(host, w, generateRequest(rng, false), published.ready, report, where));
    }
  } finally {
    await host.close();
    await cp.close();
  }
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const wasm = readFileSync(WASM_PATH);
  const report = newReport(o.seed);
  await fuzzRequestsAndSharedState(o, report, wasm);
  await fuzzHttpState(o, report, wasm);
  await fuzzConfigs(o, report, wasm);
  return report;
}

/** Splits a total case budget over the kinds of input. */
export function splitCases(total: number): FuzzCounts {
  const configs = Math.max(20, Math.round(total * 0.004));
  const httpStatePayloads = Math.max(20, Math.round(total * 0.004));
  const statePayloads = Math.max(50, Math.round(total * 0.04));
  // Each state payload is followed by a request per worker, each counted as a case; an
  // accepted configuration adds a request per worker on top of its own case.
  const requests = Math.max(0, total - configs - httpStatePayloads * FUZZ_WORKERS - statePayloads * FUZZ_WORKERS);
  return { requests, statePayloads, httpStatePayloads, configs };
}

export type { HeaderPairs };

/**
 * The replica addresses a configuration lists, in either form ("ip:port" or
 * {"address": ...}). Also the one rule of the configuration contract JSON
 * Schema cannot state: each appears once (uniqueItems only catches identical
 * entries).
 */
function replicaAddresses(config: unknown): string[] {
  const reps = (config as { replicas?: unknown })?.replicas;
  if (!Array.isArray(reps)) return [];
  const out: string[] = [];
  for (const r of reps) {
    const a = typeof r === 'string' ? r : (r as { address?: unknown } | null)?.address;
    if (typeof a === 'string') out.push(a);
  }
  return out;
}
