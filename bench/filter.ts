// npm run bench:filter [-- --json] [--quick] [--case 8192x16 ...] [--api chat] [--lines] [--wasm path] [--against path] [--requests n] [--warmup n] [--breakdown] [--host-calls]
// Times the filter's own work per request inside our proxy-wasm host (V8, as
// Envoy's default engine): every hook of a request, summed, from the host's
// clock around each call into the module, up to its response's first body
// chunk (where the filter counts it as decoding); the response's later
// chunks are timed apart, per chunk. Prompts of 1 KB to 400 KB against
// 3 to 256 replicas, with a live control-plane state so every scorer runs.
// Then, per case, what a new state version costs the next request of the
// worker VM that does not poll (newStateUs: its decode and install; a fleet
// publishes a version per placement it hears of, and every worker VM of every
// gateway pays this once per version).
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProxyWasmHost, SharedDataStore } from '../host/index.js';
import { StateServer } from './stateServer.js';
import type { ReplicaState } from '../control-plane/stateWire.js';
import { encodeContextSection } from '../control-plane/contextSection.js';
import { intFlags } from '../cli/toolArgs.js';

/** With --lines, a line break about this often: lines of a system prompt or of code. */
const LINE_CHARS = 80;
const USAGE = `usage: node --import tsx bench/filter.ts [options]
  --json              one JSON line: {"wasmBytes", "cases": [{"promptBytes", "replicas", "p50Us", "p99Us", "responseChunkP50Us", "newStateUs", ...}]}
  --case <P>x<R>      only this case (prompt bytes x replicas), e.g. --case 8192x16; repeatable
  --api <api>         completions (default: /v1/completions with a string prompt) or chat
                      (/v1/chat/completions: the shared part as a system message, the question as a user message)
  --lines             the shared part of each prompt breaks into lines of about ${LINE_CHARS} characters
                      (each break written \\n in the JSON, as real system prompts are): the decoding path
  --wasm <path>       the module to time (default plugin/prefix-router.wasm)
  --against <path>    also time this module, in the same process, each request sent to both in turn
                      (alternating which goes first), so machine slowdowns hit both alike: adds
                      "against": {"p50Us", "p99Us"} and fasterSharePct (requests where --wasm was faster)
  --requests <n>      timed requests per case (default ${'3000, 600 from 64 KB prompts; 200 with --quick'})
  --warmup <n>        exactly n untimed requests per case before timing (default: until V8 has tiered the module up, see WARMUP_*)
  --quick             fewer requests and a shorter warm-up (a smoke run, numbers less steady)
  --breakdown         also time the host functions the module calls (hostP50Us, hostSharePct, and the module alone: moduleP50Us, moduleP99Us); adds two clock reads per host call
  --host-calls        instead: the host's own cost per host call (a WAT module calling one host function in a loop), ns/call
  --help`;

const DEFAULT_WASM = fileURLToPath(new URL('../plugin/prefix-router.wasm', import.meta.url));
const PROMPT_BYTES = [1024, 8192, 65536, 409600];
/** The replicas' max_model_len in the state (section 17): a long-context deployment's, above the largest prompt's 102k tokens. */
const CONTEXT_TOKENS = 131072;
const REPLICA_COUNTS = [3, 16, 64, 256];
/** Envoy hands a body to filters in chunks of about this size. */
const CHUNK = 16384;
/**
 * Each timed request's response: headers, then server-sent events; the first
 * carries the first token (the filter counts the request as decoding from
 * it), the rest pass through the module's body hook, timed apart per chunk.
 */
const RESPONSE_CHUNKS = 16;
const SSE_CHUNK = new TextEncoder().encode('data: {"choices":[{"index":0,"text":" token"}]}\n\n');
const NO_BYTES = new Uint8Array(0);
/** Timed requests per case: enough for a p99 from 30 samples above it (600 for the large prompts, which take ~1 ms each). */
const DEFAULT_REQUESTS_SMALL = 3000;
const DEFAULT_REQUESTS_LARGE = 600;
const LARGE_PROMPT_BYTES = 65536;
const QUICK_REQUESTS = 200;
/**
 * V8 runs a module first from Liftoff (baseline) code and recompiles each hot function with
 * TurboFan in the background once it has used up an execution budget, so tier-up follows the
 * work done inside the module, not the request count: measured on the 8 KB/16 case, p50 kept
 * falling for the first ~3000 requests (~100 ms inside the module) and on 400 KB/256 for the
 * first ~250 (~70 ms). Warm-up runs until both minimums below are met, with a margin.
 */
const WARMUP_MIN_REQUESTS = 500;
const WARMUP_MIN_WASM_MS = 300;
const QUICK_WARMUP_MIN_REQUESTS = 100;
const QUICK_WARMUP_MIN_WASM_MS = 60;
/** Shared system prompts; each request is one of them plus its own question. */
const GROUPS = 32;
const QUESTION_BYTES = 200;
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';

type Api = 'completions' | 'chat';

interface Options {
  against: string | null;
  api: Api;
  lines: boolean;
  json: boolean;
  quick: boolean;
  breakdown: boolean;
  hostCalls: boolean;
  wasm: string;
  cases: Array<{ promptBytes: number; replicas: number }>;
  requests: number | null;
  warmup: number | null;
}

function fail(message: string): never {
  console.error(`bench/filter: ${message}\n${USAGE}`);
  process.exit(2);
}

const int = intFlags(fail);

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        breakdown: { type: 'boolean', default: false },
        'host-calls': { type: 'boolean', default: false },
        wasm: { type: 'string' },
        against: { type: 'string' },
        api: { type: 'string', default: 'completions' },
        lines: { type: 'boolean', default: false },
        case: { type: 'string', multiple: true },
        requests: { type: 'string' },
        warmup: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    fail((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const cases: Options['cases'] = [];
  for (const c of v.case ?? []) {
    const m = /^(\d+)x(\d+)$/.exec(c);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) fail(`--case must look like <promptBytes>x<replicas> with both >= 1, e.g. 8192x16; got '${c}'`);
    cases.push({ promptBytes: Number(m[1]), replicas: Number(m[2]) });
  }
  if (cases.length === 0) for (const promptBytes of PROMPT_BYTES) for (const replicas of REPLICA_COUNTS) cases.push({ promptBytes, replicas });
  const wasm = v.wasm ?? DEFAULT_WASM;
  if (v.api !== 'completions' && v.api !== 'chat') fail(`--api must be completions or chat; got '${v.api}'`);
  const against = v.against ?? null;
  if (!v['host-calls']) {
    for (const [flag, path] of [['--wasm', wasm], ['--against', against]] as Array<[string, string | null]>) {
      if (path === null) continue;
      let isFile = false;
      try {
        isFile = statSync(path).isFile();
      } catch {
        fail(`${flag} ${path}: no such file`);
      }
      if (!isFile) fail(`${flag} ${path} is not a file`);
    }
  }
  if (against !== null && v.breakdown) fail('--against and --breakdown cannot be combined');
  return {
    json: v.json!, quick: v.quick!, breakdown: v.breakdown!, hostCalls: v['host-calls']!, wasm, against, cases, api: v.api as Api, lines: v.lines!,
    requests: int('requests', v.requests, null, 1), warmup: int('warmup', v.warmup, null, 0),
  };
}

function words(seed: number, n: number): string {
  let x = seed >>> 0 || 1;
  const w = ['the', 'model', 'replica', 'cache', 'prefix', 'token', 'system', 'prompt', 'answer', 'question', 'router', 'envoy'];
  const out: string[] = [];
  let len = 0;
  while (len < n) {
    x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0;
    const s = w[x % w.length];
    out.push(s);
    len += s.length + 1;
  }
  return out.join(' ').slice(0, n);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

const round2 = (x: number) => +x.toFixed(2);

/**
 * Request bodies, built into one reused buffer: the same bytes as
 * JSON.stringify({model, prompt: group + ' ' + question, max_tokens: 64}), or for chat
 * JSON.stringify({model, messages: [{role: 'system', content: group}, {role: 'user',
 * content: question}], max_tokens: 64}) (the text is only lowercase words and spaces,
 * nothing to escape), without the bench itself making hundreds of KB of garbage per
 * request whose collection would land inside timed calls.
 */
class Bodies {
  private readonly head: Uint8Array;
  private readonly middle: Uint8Array;
  private readonly tail: Uint8Array;
  private readonly groups: Uint8Array[];
  private readonly buf: Uint8Array;
  private readonly enc = new TextEncoder();
  constructor(promptBytes: number, api: Api, lines: boolean) {
    const model = JSON.stringify(MODEL);
    this.head = this.enc.encode(api === 'chat' ? `{"model":${model},"messages":[{"role":"system","content":"` : `{"model":${model},"prompt":"`);
    this.middle = this.enc.encode(api === 'chat' ? '"},{"role":"user","content":"' : ' ');
    this.tail = this.enc.encode(api === 'chat' ? '"}],"max_tokens":64}' : '","max_tokens":64}');
    const shared = (g: number) => {
      const text = words(g + 1, Math.max(0, promptBytes - QUESTION_BYTES));
      // A space after every LINE_CHARS characters becomes a line break, escaped as JSON writes it.
      return lines ? text.replace(new RegExp(`(.{${LINE_CHARS - 1}}[^ ]*) `, 'g'), '$1\\n') : text;
    };
    this.groups = Array.from({ length: GROUPS }, (_, g) => this.enc.encode(shared(g)));
    const longest = Math.max(...this.groups.map((g) => g.length));
    this.buf = new Uint8Array(this.head.length + longest + this.middle.length + QUESTION_BYTES + this.tail.length);
  }
  /** Request i's body (valid until the next call). */
  body(i: number): Uint8Array {
    const b = this.buf;
    let n = 0;
    b.set(this.head, n); n += this.head.length;
    const g = this.groups[i % GROUPS];
    b.set(g, n); n += g.length;
    b.set(this.middle, n); n += this.middle.length;
    n += this.enc.encodeInto(words(100000 + i, QUESTION_BYTES - 1), b.subarray(n)).written;
    b.set(this.tail, n); n += this.tail.length;
    return b.subarray(0, n);
  }
}

interface CaseResult {
  api: Api;
  lines: boolean;
  promptBytes: number;
  replicas: number;
  p50Us: number;
  p99Us: number;
  /** p50 of the first and of the second half of the timed requests: they differ when warm-up was too short. */
  p50FirstHalfUs: number;
  p50SecondHalfUs: number;
  /** Where the tail starts: on a noisy machine p99 is set by bursts that slow every call alike, p95/p98 less so. */
  p95Us: number;
  p98Us: number;
  warmupRequests: number;
  hostP50Us?: number;
  hostSharePct?: number;
  /** With --breakdown: time inside the module alone (host functions left out). */
  moduleP50Us?: number;
  moduleP99Us?: number;
  /** With --against: the other module, timed on the same requests. */
  against?: { p50Us: number; p99Us: number };
  /** With --against: the share of requests on which --wasm was faster than --against. */
  fasterSharePct?: number;
  /** A streamed response's chunks after the first and its end, per chunk: the body hook's cost on every token. */
  responseChunkP50Us: number;
  responseChunkP99Us: number;
  /**
   * A new state's cost on the request path: the next request on a worker VM that does not poll
   * decodes and installs it (the poller does so on the poll's answer). Per worker VM, the median
   * of (a request right after a new version) minus (the request just before it), the larger of
   * the two VMs; its module then the same for --against. What a gateway pays per state version on
   * each of its other worker VMs.
   */
  newStateUs: number;
  againstNewStateUs?: number;
}

async function runCase(opts: Options, wasm: Uint8Array, against: Uint8Array | null, promptBytes: number, replicas: number): Promise<CaseResult> {
  const reps: ReplicaState[] = [];
  for (let i = 0; i < replicas; i++) {
    reps.push({ address: `10.${(i >> 8) & 255}.${i & 255}.1:8000`, ready: true, metricsKnown: true, waiting: i % 5, running: 8 + (i % 7), kvUsage: (i % 10) / 10, kvCapacityTokens: 150000, metricsAgeMs: 20 });
  }
  // Each replica's context length, as the control plane reads it from vLLM's /v1/models: long enough for every case's prompt.
  const sections = [encodeContextSection(reps.map(() => CONTEXT_TOKENS))!];
  const cp = new StateServer({ version: 1n, weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, replicas: reps, sections });
  const cpUrl = await cp.listen();
  // With --against each module gets its own shared-data store: they must not see each other's rows.
  const hostFor = (module: Uint8Array, own: boolean) => ProxyWasmHost.create({
    wasm: module, workers: 2, logLevel: 'warn', timeHostCalls: opts.breakdown,
    pluginConfig: JSON.stringify({ controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 1000 } }),
    clusters: { prefix_router_control_plane: cpUrl },
    ...(own ? { sharedData: new SharedDataStore() } : {}),
  });
  const hosts = [await hostFor(wasm, against !== null)];
  if (against !== null) hosts.push(await hostFor(against, true));
  try {
    for (const host of hosts) {
      const deadline = Date.now() + 5000;
      let routed = false;
      while (!routed && Date.now() < deadline) {
        const s = host.newStream({});
        s.requestHeaders([[':method', 'GET'], [':path', '/v1/models'], [':authority', 'gw']], true);
        routed = s.requestHeaderList().some(([k]) => k === 'x-gateway-destination-endpoint');
        s.complete();
        if (!routed) await new Promise((r) => setTimeout(r, 20));
      }
      if (!routed) throw new Error(`case ${promptBytes}x${replicas}: the filter got no control-plane state within 5 s`);
    }
    const bodies = new Bodies(promptBytes, opts.api, opts.lines);
    const path = opts.api === 'chat' ? '/v1/chat/completions' : '/v1/completions';
    JSON.parse(Buffer.from(bodies.body(0)).toString()); // the hand-built bytes are JSON
    const requests = opts.requests ?? (opts.quick ? QUICK_REQUESTS : promptBytes >= LARGE_PROMPT_BYTES ? DEFAULT_REQUESTS_LARGE : DEFAULT_REQUESTS_SMALL);
    const minWarmup = opts.warmup ?? (opts.quick ? QUICK_WARMUP_MIN_REQUESTS : WARMUP_MIN_REQUESTS);
    const warmupWasmNs = opts.warmup !== null ? 0 : 1e6 * (opts.quick ? QUICK_WARMUP_MIN_WASM_MS : WARMUP_MIN_WASM_MS);
    const warmedNs = hosts.map(() => 0);
    const times: number[][] = hosts.map(() => []);
    const hostTimes: number[] = [];
    const chunkTimes: number[] = [];
    let warmup = 0;
    const one = (k: number, i: number, timed: boolean) => {
      const body = bodies.body(i);
      const s = hosts[k].newStream({ worker: i % 2 });
      s.requestHeaders([[':method', 'POST'], [':path', path], [':authority', 'gw'], ['content-type', 'application/json'], ['content-length', String(body.length)]], false);
      for (let o = 0; o < body.length; o += CHUNK) s.requestBody(body.subarray(o, Math.min(body.length, o + CHUNK)), o + CHUNK >= body.length);
      s.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
      s.responseBody(SSE_CHUNK, false);
      const routingNs = s.wasmNumberNs;
      for (let c = 1; c < RESPONSE_CHUNKS; c++) s.responseBody(SSE_CHUNK, false);
      s.responseBody(NO_BYTES, true);
      const perChunkUs = (s.wasmNumberNs - routingNs) / RESPONSE_CHUNKS / 1000;
      s.complete();
      if (!timed) warmedNs[k] += s.wasmNumberNs;
      else {
        times[k].push(routingNs / 1000);
        if (k === 0) chunkTimes.push(perChunkUs);
        if (opts.breakdown) hostTimes.push(s.hostNs / 1000);
      }
    };
    // Each request goes to every module, which one first alternating.
    const each = (i: number, timed: boolean) => {
      for (let j = 0; j < hosts.length; j++) one((i + j) % hosts.length, i, timed);
    };
    // Warm-up requests continue the same sequence of prompts as the timed ones (the prefix index fills up as it would).
    while (warmup < minWarmup || warmedNs.some((ns) => ns < warmupWasmNs)) each(warmup++, false);
    for (let i = 0; i < requests; i++) each(warmup + i, true);
    const newState = await newStateCost(hosts, cp, reps, opts.quick ? QUICK_STATE_ROUNDS : STATE_ROUNDS, (k, worker, i) => {
      const body = bodies.body(i);
      const s = hosts[k].newStream({ worker });
      s.requestHeaders([[':method', 'POST'], [':path', path], [':authority', 'gw'], ['content-type', 'application/json'], ['content-length', String(body.length)]], false);
      s.requestBody(body, true);
      s.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
      s.responseBody(NO_BYTES, true);
      const ns = s.wasmNumberNs;
      s.complete();
      return ns / 1000;
    }, warmup + requests);
    const mine = times[0];
    const half = Math.floor(mine.length / 2);
    const p50FirstHalfUs = round2(median(mine.slice(0, Math.max(1, half))));
    const p50SecondHalfUs = round2(median(mine.slice(half)));
    const sorted = [...mine].sort((a, b) => a - b);
    const chunks = [...chunkTimes].sort((a, b) => a - b);
    const r: CaseResult = {
      api: opts.api, lines: opts.lines, promptBytes, replicas, p50Us: round2(percentile(sorted, 0.5)), p99Us: round2(percentile(sorted, 0.99)),
      p50FirstHalfUs, p50SecondHalfUs, warmupRequests: warmup,
      p95Us: round2(percentile(sorted, 0.95)), p98Us: round2(percentile(sorted, 0.98)),
      responseChunkP50Us: round2(percentile(chunks, 0.5)), responseChunkP99Us: round2(percentile(chunks, 0.99)),
      newStateUs: newState[0]!,
    };
    if (against !== null) {
      r.againstNewStateUs = newState[1];
      const other = [...times[1]].sort((a, b) => a - b);
      r.against = { p50Us: round2(percentile(other, 0.5)), p99Us: round2(percentile(other, 0.99)) };
      r.fasterSharePct = round2((100 * mine.filter((t, i) => t < times[1][i]).length) / mine.length);
    }
    if (opts.breakdown) {
      const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
      r.hostP50Us = round2(median(hostTimes));
      r.hostSharePct = round2((100 * sum(hostTimes)) / sum(mine));
      // The module's own time: each request's total less its host-function time.
      const own = mine.map((t, i) => t - hostTimes[i]).sort((a, b) => a - b);
      r.moduleP50Us = round2(percentile(own, 0.5));
      r.moduleP99Us = round2(percentile(own, 0.99));
    }
    return r;
  } finally {
    for (const host of hosts) await host.close();
    await cp.close();
  }
}

/** State versions each case's new-state cost is measured on (--quick: fewer). */
const STATE_ROUNDS = 200;
const QUICK_STATE_ROUNDS = 20;

/**
 * newStateUs of each host: `rounds` times, a request on each worker VM, a new version (the same
 * replicas, their queues moved, as a scrape moves them), once every host's poller has polled again
 * (it answered and installed) a request on each worker VM again. `request(k, worker, i)` is a
 * request's wasm time in host k, us.
 */
async function newStateCost(hosts: ProxyWasmHost[], cp: StateServer, reps: ReplicaState[], rounds: number,
  request: (k: number, worker: number, i: number) => number, firstBody: number): Promise<number[]> {
  const extra: number[][][] = hosts.map(() => [[], []]);
  let version = cp.state.version;
  let i = firstBody;
  for (let round = 0; round < rounds; round++) {
    const before = hosts.map((_, k) => [0, 1].map((w) => request(k, w, i++)));
    const polls = cp.polls;
    version++;
    cp.set({ ...cp.state, version, replicas: reps.map((r, j) => ({ ...r, waiting: (r.waiting + round + j) % 7 })) });
    const deadline = Date.now() + 2000;
    while (cp.polls < polls + hosts.length) {
      if (Date.now() > deadline) throw new Error(`state version ${version}: the pollers did not poll again within 2 s`);
      await new Promise((r) => setTimeout(r, 1));
    }
    hosts.forEach((_, k) => [0, 1].forEach((w) => extra[k]![w]!.push(request(k, w, i++) - before[k]![w]!)));
  }
  return extra.map((byWorker) => round2(Math.max(...byWorker.map((x) => median(x)))));
}

/** Calls per timed hook in --host-calls: enough that the two clock reads around the hook vanish. */
const HOST_CALL_LOOP = 2000;
const HOST_CALL_HOOKS = 400;
const HOST_CALL_ROUNDS = 6;

/**
 * --host-calls: what one host call costs the host (the JS side and the wasm/JS transitions), apart
 * from any filter. A WAT module's on_request_headers calls one host function HOST_CALL_LOOP times;
 * the mode is the number of request headers. Per call: median hook time / loop count, minus the
 * empty loop, best of HOST_CALL_ROUNDS (the machine is shared).
 */
async function hostCalls(): Promise<Record<string, number>> {
  // Loaded here, not at the top: binaryen takes seconds to load and only --host-calls needs it.
  const { default: binaryen } = await import('binaryen');
  const calls: Array<[string, string]> = [
    ['loop only', ''],
    ['get_header_map_value', '(drop (call $ghv (i32.const 0) (i32.const 64) (i32.const 7) (i32.const 0) (i32.const 4)))'],
    ['replace_header_map_value', '(drop (call $rhv (i32.const 0) (i32.const 16) (i32.const 30) (i32.const 80) (i32.const 13)))'],
    ['get_shared_data (100 B)', '(drop (call $gsd (i32.const 112) (i32.const 22) (i32.const 0) (i32.const 4) (i32.const 8)))'],
    ['set_shared_data (100 B)', '(drop (call $ssd (i32.const 112) (i32.const 22) (i32.const 160) (i32.const 100) (i32.const 0)))'],
    ['get_current_time_nanoseconds', '(drop (call $now (i32.const 0)))'],
    ['proxy_log below the level', '(drop (call $log (i32.const 0) (i32.const 160) (i32.const 50)))'],
    ['get_buffer_bytes (8 KB body)', '(drop (call $gbb (i32.const 0) (i32.const 0) (i32.const 8192) (i32.const 0) (i32.const 4)))'],
  ];
  const BODY_CALL = calls.length - 1;
  const FIRST_MODE = 4; // the stream below always has at least 4 request headers
  const wat = `(module
    (import "env" "proxy_get_header_map_value" (func $ghv (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_replace_header_map_value" (func $rhv (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_get_shared_data" (func $gsd (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_set_shared_data" (func $ssd (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
    (import "env" "proxy_get_buffer_bytes" (func $gbb (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
    (memory (export "memory") 4)
    (global $bump (mut i32) (i32.const 8192))
    (data (i32.const 16) "x-gateway-destination-endpoint") (data (i32.const 64) ":method") (data (i32.const 80) "10.0.0.1:8000")
    (data (i32.const 112) "prefix_router.inflight") (data (i32.const 160) "${'0123456789'.repeat(10)}")
    (func (export "malloc") (param $n i32) (result i32) (local $p i32)
      (if (i32.gt_u (i32.add (global.get $bump) (local.get $n)) (i32.const 200000)) (then (global.set $bump (i32.const 8192))))
      (local.set $p (global.get $bump)) (global.set $bump (i32.add (global.get $bump) (local.get $n))) (local.get $p))
    (global $mode (mut i32) (i32.const 0))
    (func (export "proxy_abi_version_0_2_0"))
    (func (export "proxy_on_context_create") (param i32 i32))
    (func $loop (local $i i32)
      (loop $l
        ${calls.map(([, call], i) => (call ? `(if (i32.eq (global.get $mode) (i32.const ${FIRST_MODE + i})) (then ${call}))` : '')).join('\n        ')}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const ${HOST_CALL_LOOP})))))
    ;; the mode is the number of request headers; the body mode loops in on_request_body (StopIteration until then)
    (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $eos i32) (result i32)
      (global.set $mode (local.get $n))
      (if (i32.eq (local.get $n) (i32.const ${FIRST_MODE + BODY_CALL})) (then (return (i32.const 1))))
      (call $loop)
      (i32.const 0))
    (func (export "proxy_on_request_body") (param $id i32) (param $size i32) (param $eos i32) (result i32)
      (call $loop)
      (i32.const 0)))`;
  const m = binaryen.parseText(wat);
  let bytes: Uint8Array;
  try {
    if (!m.validate()) throw new Error('--host-calls: the WAT module does not validate');
    bytes = m.emitBinary();
  } finally {
    m.dispose();
  }
  const host = await ProxyWasmHost.create({ wasm: bytes, workers: 1, logLevel: 'warn', sharedData: new SharedDataStore() });
  try {
    const body = new Uint8Array(8192);
    const best = new Array<number>(calls.length).fill(Infinity);
    for (let round = 0; round < HOST_CALL_ROUNDS; round++) {
      calls.forEach((_, c) => {
        const headers: Array<[string, string]> = [[':method', 'POST'], [':path', '/'], [':authority', 'gw'], ['content-length', '8192']];
        while (headers.length < FIRST_MODE + c) headers.push(['x-pad', String(headers.length)]);
        const ts: number[] = [];
        for (let r = 0; r < HOST_CALL_HOOKS; r++) {
          const s = host.newStream({ worker: 0 });
          s.requestHeaders(headers, c !== BODY_CALL);
          if (c === BODY_CALL) s.requestBody(body, true);
          ts.push(s.wasmNumberNs);
          s.complete();
        }
        best[c] = Math.min(best[c], median(ts) / HOST_CALL_LOOP);
      });
    }
    const out: Record<string, number> = {};
    calls.forEach(([name], c) => (out[name] = round2(c === 0 ? best[0] : best[c] - best[0])));
    return out;
  } finally {
    await host.close();
  }
}

const opts = parseOptions(process.argv.slice(2));
if (opts.hostCalls) {
  const r = await hostCalls();
  if (opts.json) console.log(JSON.stringify({ hostCallNs: r }));
  else for (const [name, ns] of Object.entries(r)) console.log(`${name.padEnd(30)} ${ns.toFixed(0).padStart(6)} ns/call`);
  process.exit(0);
}
const wasm = readFileSync(opts.wasm);
const against = opts.against === null ? null : readFileSync(opts.against);
const cases: CaseResult[] = [];
for (const { promptBytes, replicas } of opts.cases) {
  const r = await runCase(opts, wasm, against, promptBytes, replicas);
  cases.push(r);
  if (!opts.json) {
    const host = r.hostP50Us === undefined ? '' : `   host p50 ${r.hostP50Us.toFixed(1).padStart(7)} us (${r.hostSharePct!.toFixed(0)}% of all); module alone p50 ${r.moduleP50Us!.toFixed(1)} us p99 ${r.moduleP99Us!.toFixed(1)} us`;
    console.log(
      `${String(promptBytes).padStart(7)} B prompt, ${String(replicas).padStart(3)} replicas: p50 ${r.p50Us.toFixed(1).padStart(8)} us   p99 ${r.p99Us.toFixed(1).padStart(8)} us` +
        `   (p50 1st/2nd half ${r.p50FirstHalfUs.toFixed(1)}/${r.p50SecondHalfUs.toFixed(1)}, warm-up ${r.warmupRequests})${host}`,
    );
    console.log(`${' '.repeat(30)}each later response chunk: p50 ${r.responseChunkP50Us.toFixed(2)} us   p99 ${r.responseChunkP99Us.toFixed(2)} us`);
    console.log(`${' '.repeat(30)}a new state, on the next request of a worker VM that does not poll: +${r.newStateUs.toFixed(1)} us` +
      (r.againstNewStateUs === undefined ? '' : ` (--against +${r.againstNewStateUs.toFixed(1)} us)`));
    if (r.against) {
      console.log(`${' '.repeat(30)}--against: p50 ${r.against.p50Us.toFixed(1).padStart(8)} us   p99 ${r.against.p99Us.toFixed(1).padStart(8)} us   (--wasm faster on ${r.fasterSharePct!.toFixed(1)}% of requests)`);
    }
  }
}
const wasmBytes = wasm.length;
if (opts.json) console.log(JSON.stringify({ wasmBytes, cases }));
else console.log(`module: ${opts.wasm}, ${wasmBytes} bytes\ntargets: p99 <= 20 us at 8 KB / 16 replicas; <= 1000 us at 400 KB / 256 replicas; module <= 104 KB (106,496 bytes)`);
