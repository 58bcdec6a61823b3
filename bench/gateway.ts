// `npm run bench -- --gateway URL`: end-to-end benchmark of any OpenAI-compatible gateway in front
// of vLLM(-like) replicas (our embedded gateway, or a real Envoy with the filter). Phases:
//   health        all replicas ready? (control plane GET /v1/replicas, else GET /health per replica)
//   prefix        10 sequential requests sharing a system prompt: how many replicas served them
//   distribution  15 concurrent requests with distinct prompts: requests per replica
//   throughput    N (50) concurrent streaming requests: requests/s, plus TTFT and latency percentiles
// Writes result.json and report.html (inline SVG) to --out; --json prints the summary on stdout.
// Loopback URLs only; every request and the whole run are bounded in time.

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseIntFlag } from '../cli/toolArgs.js';
import { performance } from 'node:perf_hooks';
import { setMaxListeners } from 'node:events';
import OpenAI from 'openai';
import cliProgress from 'cli-progress';
import { renderGatewayReport } from './report/gatewayReport.js';

// Headers that name the replica that served a response, most specific first.
export const REPLICA_HEADERS = ['x-prefix-router-endpoint', 'x-gateway-destination-endpoint-served', 'x-simulator-replica'];

const DEFAULTS = {
  out: 'out/bench-gateway',
  timeoutMs: 180_000, // whole run
  requestTimeoutMs: 60_000, // one request; a 1000-token prompt on a loaded T4 takes seconds, not a minute
  concurrency: 50,
  maxTokens: 16, // short answers: the phases measure routing, not generation
  throughputMaxTokens: 32,
  systemPromptTokens: 1000, // the common shared-prefix shape uses long system prompts
  prefixRequests: 10,
  distributionRequests: 15,
  throughputGroups: 5, // distinct system prompts in the throughput phase
};

export interface GatewayBenchOptions {
  gateway: string;
  controlPlane?: string;
  replicas?: string[];
  model?: string;
  out: string;
  timeoutMs: number;
  requestTimeoutMs: number;
  concurrency: number;
  maxTokens: number;
  /** Live progress bar on stderr. */
  progress: boolean;
}

export interface Percentiles { p50: number; p95: number; p99: number; mean: number; min: number; max: number }

export interface ReplicaHealth { replica: string; ready: boolean; detail: string }

export interface GatewayBenchResult {
  gateway: string;
  model: string;
  startedAt: string;
  durationMs: number;
  health: { ready: number; total: number; source: 'control-plane' | 'replicas' | 'observed'; replicas: ReplicaHealth[] };
  prefixRouting: { requests: number; ok: number; distinctReplicas: number; replicas: Record<string, number>; sequence: string[]; cachedTokens: number[] };
  distribution: Record<string, number>;
  throughput: { concurrency: number; requests: number; ok: number; failed: number; wallMs: number; rps: number; outputTokensPerSec: number; replicas: Record<string, number> };
  latencyMs: Percentiles;
  ttftMs: Percentiles;
  samples: { latencyMs: number[]; ttftMs: number[] };
  errors: string[];
}

/** The summary --json prints. */
export function summary(r: GatewayBenchResult) {
  return {
    health: { ready: r.health.ready, total: r.health.total },
    prefixRouting: { requests: r.prefixRouting.requests, distinctReplicas: r.prefixRouting.distinctReplicas },
    distribution: r.distribution,
    throughput: { concurrency: r.throughput.concurrency, rps: r.throughput.rps },
    latencyMs: { p50: r.latencyMs.p50, p95: r.latencyMs.p95, p99: r.latencyMs.p99 },
  };
}

/** `v` rounded to `d` decimals. */
export function roundTo(v: number, d: number): number {
  return Math.round(v * 10 ** d) / 10 ** d;
}

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p95: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!; // nearest rank
  const round = (v: number) => roundTo(v, 1);
  return { p50: round(rank(50)), p95: round(rank(95)), p99: round(rank(99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length), min: round(s[0]!), max: round(s.at(-1)!) };
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

function loopbackUrl(flag: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`--${flag}: not a URL: '${raw}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`--${flag}: expected http(s)://, got '${raw}'`);
  if (!LOOPBACK.test(u.hostname)) throw new Error(`--${flag}: only loopback addresses are allowed (localhost, 127.x.x.x, ::1), got '${u.hostname}'`);
  return u.toString().replace(/\/+$/, '');
}

/** Deterministic filler text of about `tokens` tokens (4 characters each). */
function filler(seed: string, tokens: number): string {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa'];
  let h = 2166136261;
  for (const c of seed) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  let out = '';
  while (out.length < tokens * 4) {
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
    out += words[(h >>> 0) % words.length] + ' ';
  }
  return out.slice(0, tokens * 4);
}

interface Outcome { ok: boolean; replica: string; latencyMs: number; ttftMs: number; outputTokens: number; cachedTokens: number; error?: string }

function replicaOf(headers: Headers): string {
  for (const h of REPLICA_HEADERS) {
    const v = headers.get(h);
    if (v) return v;
  }
  return 'unknown';
}

class Bench {
  private readonly client: OpenAI;
  readonly errors: string[] = [];
  private readonly deadline: AbortSignal;
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly o: GatewayBenchOptions, public model: string) {
    this.client = new OpenAI({ baseURL: `${o.gateway}/v1`, apiKey: process.env.OPENAI_API_KEY ?? 'unused', maxRetries: 0, timeout: o.requestTimeoutMs });
    this.deadline = AbortSignal.timeout(o.timeoutMs);
    setMaxListeners(0, this.deadline); // every in-flight request listens to the run's deadline
  }

  startProgress(total: number): void {
    if (!this.o.progress) return;
    this.bar = new cliProgress.SingleBar({ format: ' {phase} |{bar}| {value}/{total} requests | {duration_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    this.bar.start(total, 0, { phase: 'health'.padEnd(12) });
  }
  phase(name: string): void { this.bar?.update({ phase: name.padEnd(12) }); }
  tick(): void { this.bar?.increment(); }
  stopProgress(): void { this.bar?.stop(); this.bar = null; }

  private note(err: unknown): string {
    const msg = err instanceof Error ? err.message : String(err);
    if (this.errors.length < 20) this.errors.push(msg);
    return msg;
  }

  async resolveModel(): Promise<void> {
    if (this.model) return;
    try {
      const list = await this.client.models.list({ signal: this.deadline });
      this.model = list.data[0]?.id ?? '';
    } catch (err) {
      this.note(`GET /v1/models: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!this.model) this.model = 'Qwen/Qwen2.5-3B-Instruct';
  }

  async health(): Promise<GatewayBenchResult['health']> {
    const o = this.o;
    const get = async (url: string) => {
      const res = await fetch(url, { signal: AbortSignal.any([this.deadline, AbortSignal.timeout(5000)]) });
      return res;
    };
    if (o.controlPlane) {
      try {
        const res = await get(`${o.controlPlane}/v1/replicas`);
        if (!res.ok) throw new Error(`GET ${o.controlPlane}/v1/replicas: HTTP ${res.status}`);
        const replicas = parseReplicaList(await res.json());
        return { ready: replicas.filter((r) => r.ready).length, total: replicas.length, source: 'control-plane', replicas };
      } catch (err) {
        this.note(err);
        return { ready: 0, total: 0, source: 'control-plane', replicas: [] };
      }
    }
    if (o.replicas?.length) {
      const replicas = await Promise.all(o.replicas.map(async (url): Promise<ReplicaHealth> => {
        try {
          const res = await get(`${url}/health`);
          return { replica: url, ready: res.ok, detail: `HTTP ${res.status}` };
        } catch (err) {
          return { replica: url, ready: false, detail: this.note(`${url}/health: ${err instanceof Error ? err.message : String(err)}`) };
        }
      }));
      return { ready: replicas.filter((r) => r.ready).length, total: replicas.length, source: 'replicas', replicas };
    }
    return { ready: 0, total: 0, source: 'observed', replicas: [] }; // filled in from responses at the end
  }

  /** One streaming chat request; never throws. */
  async request(system: string, question: string, maxTokens: number): Promise<Outcome> {
    const t0 = performance.now();
    let ttft = NaN;
    try {
      const { data: stream, response } = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: [{ role: 'system', content: system }, { role: 'user', content: question }],
          max_tokens: maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: this.deadline },
      ).withResponse();
      let outputTokens = 0, cachedTokens = 0;
      for await (const chunk of stream) {
        if (Number.isNaN(ttft) && chunk.choices[0]?.delta?.content) ttft = performance.now() - t0;
        if (chunk.usage) {
          outputTokens = chunk.usage.completion_tokens;
          cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
        }
      }
      return { ok: true, replica: replicaOf(response.headers), latencyMs: performance.now() - t0, ttftMs: ttft, outputTokens, cachedTokens };
    } catch (err) {
      return { ok: false, replica: 'error', latencyMs: performance.now() - t0, ttftMs: ttft, outputTokens: 0, cachedTokens: 0, error: this.note(err) };
    } finally {
      this.tick();
    }
  }
}

/** Accepts the control plane's replica list in the shapes it may take: an array or {replicas: [...]}. */
export function parseReplicaList(body: unknown): ReplicaHealth[] {
  const list = Array.isArray(body) ? body : (body as { replicas?: unknown })?.replicas;
  if (!Array.isArray(list)) throw new Error('GET /v1/replicas: expected an array or {"replicas": [...]}');
  return list.map((item: unknown, i): ReplicaHealth => {
    if (typeof item === 'string') return { replica: item, ready: true, detail: 'listed' };
    const r = (item ?? {}) as Record<string, unknown>;
    const name = String(r.name ?? r.address ?? r.endpoint ?? r.url ?? r.id ?? `replica-${i}`);
    const state = r.ready ?? r.healthy ?? r.state ?? r.status ?? r.phase;
    const ready = state === undefined ? true : state === true || (typeof state === 'string' && /^(ready|healthy|up|ok|serving|active)$/i.test(state));
    return { replica: name, ready, detail: state === undefined ? 'listed' : String(state) };
  });
}

function count(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of [...names].sort()) out[n] = (out[n] ?? 0) + 1;
  return out;
}

export async function runGatewayBench(o: GatewayBenchOptions): Promise<GatewayBenchResult> {
  const started = new Date();
  const t0 = performance.now();
  const bench = new Bench(o, o.model ?? '');
  const nonce = started.getTime().toString(36); // keeps this run's prompts distinct from earlier runs'
  bench.startProgress(DEFAULTS.prefixRequests + DEFAULTS.distributionRequests + o.concurrency);
  try {
    const health = await bench.health();
    await bench.resolveModel();

    bench.phase('prefix');
    const system = `Run ${nonce}. You are a meticulous assistant. ` + filler(`system-${nonce}`, DEFAULTS.systemPromptTokens);
    const prefix: Outcome[] = [];
    for (let i = 0; i < DEFAULTS.prefixRequests; i++) prefix.push(await bench.request(system, `Question ${i}: what is ${i} + ${i}?`, o.maxTokens));
    const prefixOk = prefix.filter((p) => p.ok);

    bench.phase('distribution');
    const dist = await Promise.all(Array.from({ length: DEFAULTS.distributionRequests }, (_, i) =>
      bench.request(`Distinct ${nonce}-${i}. ` + filler(`distinct-${nonce}-${i}`, 200), `Summarise item ${i}.`, o.maxTokens)));

    bench.phase('throughput');
    const systems = Array.from({ length: DEFAULTS.throughputGroups }, (_, g) => `Group ${g} of run ${nonce}. ` + filler(`group-${nonce}-${g}`, DEFAULTS.systemPromptTokens));
    const tStart = performance.now();
    const load = await Promise.all(Array.from({ length: o.concurrency }, (_, i) =>
      bench.request(systems[i % systems.length]!, `Request ${i}: ` + filler(`q-${nonce}-${i}`, 50), DEFAULTS.throughputMaxTokens)));
    const wallMs = performance.now() - tStart;
    const loadOk = load.filter((r) => r.ok);

    if (health.source === 'observed') {
      const seen = new Set([...prefix, ...dist, ...load].filter((r) => r.ok).map((r) => r.replica));
      health.replicas = [...seen].sort().map((replica) => ({ replica, ready: true, detail: 'answered' }));
      health.ready = health.total = seen.size;
    }
    const latencies = loadOk.map((r) => r.latencyMs);
    const ttfts = loadOk.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v));
    return {
      gateway: o.gateway,
      model: bench.model,
      startedAt: started.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      health,
      prefixRouting: {
        requests: DEFAULTS.prefixRequests,
        ok: prefixOk.length,
        distinctReplicas: new Set(prefixOk.map((p) => p.replica)).size,
        replicas: count(prefixOk.map((p) => p.replica)),
        sequence: prefix.map((p) => p.replica),
        cachedTokens: prefix.map((p) => p.cachedTokens),
      },
      distribution: count(dist.filter((d) => d.ok).map((d) => d.replica)),
      throughput: {
        concurrency: o.concurrency,
        requests: load.length,
        ok: loadOk.length,
        failed: load.length - loadOk.length,
        wallMs: Math.round(wallMs),
        rps: Math.round((loadOk.length / (wallMs / 1000)) * 100) / 100,
        outputTokensPerSec: Math.round(loadOk.reduce((a, r) => a + r.outputTokens, 0) / (wallMs / 1000)),
        replicas: count(loadOk.map((r) => r.replica)),
      },
      latencyMs: percentiles(latencies),
      ttftMs: percentiles(ttfts),
      samples: { latencyMs: latencies.map((v) => Math.round(v * 10) / 10), ttftMs: ttfts.map((v) => Math.round(v * 10) / 10) },
      errors: bench.errors,
    };
  } finally {
    bench.stopProgress();
  }
}

export async function writeGatewayReport(result: GatewayBenchResult, outDir: string): Promise<{ json: string; html: string }> {
  await mkdir(outDir, { recursive: true });
  const json = join(outDir, 'result.json');
  const html = join(outDir, 'report.html');
  await writeFile(json, JSON.stringify(result, null, 2) + '\n');
  await writeFile(html, renderGatewayReport(result));
  return { json, html };
}

const USAGE = `usage: npm run bench -- --gateway URL [options]
  --gateway URL            the gateway's base URL (OpenAI API under /v1), loopback only
  --control-plane URL      ask GET URL/v1/replicas for replica health
  --replicas URL,...       else probe GET URL/health on each replica
  --model NAME             model to request (default: first of GET /v1/models)
  --concurrency N          concurrent requests in the throughput phase (default ${DEFAULTS.concurrency})
  --max-tokens N           output tokens per request in the routing phases (default ${DEFAULTS.maxTokens})
  --timeout S              bound on the whole run, seconds (default ${DEFAULTS.timeoutMs / 1000})
  --out DIR                where result.json and report.html go (default ${DEFAULTS.out})
  --json                   print the summary as JSON on stdout (no progress bar)`;

export function parseGatewayBenchArgs(args: string[]): (GatewayBenchOptions & { json: boolean }) | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      gateway: { type: 'string' }, 'control-plane': { type: 'string' }, replicas: { type: 'string' }, model: { type: 'string' },
      concurrency: { type: 'string' }, 'max-tokens': { type: 'string' }, timeout: { type: 'string' }, out: { type: 'string' },
      json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (!values.gateway) throw new Error('--gateway URL is required');
  const int = (flag: string, v: string | undefined, def: number, min: number, max: number) => (v === undefined ? def : parseIntFlag(flag, v, min, max));
  const json = values.json === true;
  return {
    gateway: loopbackUrl('gateway', values.gateway),
    controlPlane: values['control-plane'] ? loopbackUrl('control-plane', values['control-plane']) : undefined,
    replicas: values.replicas ? values.replicas.split(',').filter(Boolean).map((u) => loopbackUrl('replicas', u.trim())) : undefined,
    model: values.model,
    out: resolve(values.out ?? DEFAULTS.out),
    timeoutMs: int('timeout', values.timeout, DEFAULTS.timeoutMs / 1000, 1, 3600) * 1000,
    requestTimeoutMs: DEFAULTS.requestTimeoutMs,
    concurrency: int('concurrency', values.concurrency, DEFAULTS.concurrency, 1, 1000),
    maxTokens: int('max-tokens', values['max-tokens'], DEFAULTS.maxTokens, 1, 4096),
    progress: !json && process.stderr.isTTY === true,
    json,
  };
}

export async function runGatewayBenchCli(args: string[]): Promise<number> {
  let o;
  try {
    o = parseGatewayBenchArgs(args);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (o === 'help') { console.log(USAGE); return 0; }
  const result = await runGatewayBench(o);
  const files = await writeGatewayReport(result, o.out);
  if (o.json) {
    console.log(JSON.stringify(summary(result)));
  } else {
    const s = summary(result);
    console.log(`gateway ${result.gateway} (model ${result.model}), ${(result.durationMs / 1000).toFixed(1)} s`);
    console.log(`  health          ${s.health.ready}/${s.health.total} ready (${result.health.source})`);
    console.log(`  prefix routing  ${result.prefixRouting.ok}/${s.prefixRouting.requests} ok on ${s.prefixRouting.distinctReplicas} replica(s): ${JSON.stringify(result.prefixRouting.replicas)}`);
    console.log(`  distribution    ${JSON.stringify(s.distribution)}`);
    console.log(`  throughput      ${s.throughput.rps} req/s at concurrency ${s.throughput.concurrency} (${result.throughput.ok}/${result.throughput.requests} ok, ${result.throughput.outputTokensPerSec} output tok/s)`);
    console.log(`  latency ms      p50 ${s.latencyMs.p50}  p95 ${s.latencyMs.p95}  p99 ${s.latencyMs.p99}   (TTFT p50 ${result.ttftMs.p50}  p95 ${result.ttftMs.p95})`);
    console.log(`  report          ${files.html}`);
    for (const e of result.errors.slice(0, 5)) console.log(`  error: ${e}`);
  }
  const failed = result.throughput.failed + (result.prefixRouting.requests - result.prefixRouting.ok) + (DEFAULTS.distributionRequests - Object.values(result.distribution).reduce((a, b) => a + b, 0));
  return failed === 0 && result.health.ready === result.health.total && result.health.total > 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  runGatewayBenchCli(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => { console.error(`bench: ${err instanceof Error ? err.stack : String(err)}`); process.exitCode = 1; },
  );
}
