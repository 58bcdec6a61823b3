// Once per ladder: the same point driven by kubernetes-sigs inference-perf (its shared_prefix data
// generator, streaming completions, a tokenizer built locally by buildTokenizer.py with
// HF_HUB_OFFLINE=1) through round robin on fresh replicas, set beside what our load generator
// measured there. inference-perf replays our point's arrival times (its trace_replay load, the
// Azure trace format), so the two send the same number of requests at the same moments; what still
// differs is the prompt text (each generator draws its own prompts of the same shape). The replicas'
// own counters show both runs' request shapes (prompt and output tokens per request) and their own
// end-to-end time, so a gap between the two clients can be told from a gap in what was served.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { MODEL } from '../routing/workloads.js';
import { PEERS_DIR, REPO, ROUTERS } from './routers.js';
import { startChild, tail } from './processes.js';
import { readCounters, diffCounters, servedShape } from './replicaCounters.js';
import { pointWorkload, type RunResult } from './main.js';
import type { PeerShape } from './shapes.js';

export interface InferencePerfCheck {
  point: string;
  status: 'agree' | 'differ' | 'skipped' | 'failed';
  detail: string;
  /** compared: part of the verdict (within 10%); the others explain it. */
  metrics: { name: string; ours: number; theirs: number; differencePct: number; compared: boolean }[];
}

interface CheckInput {
  out: string;
  runs: RunResult[];
  shapes: PeerShape[];
  replicas: number;
  loads: number[];
  durationS: number;
  seed: number;
  startReplicaSet(replicas: number, kvBlocks: number | null, logFile: string): Promise<{ urls: string[]; stop(): Promise<void> }>;
  log(line: string): void;
}

function findFile(dir: string, name: string): string | null {
  if (!existsSync(dir)) return null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    } else if (e.name === name) return p;
  }
  return null;
}

/** Reads a number at a dotted path in inference-perf's summary, trying the names it has used. */
function pick(obj: unknown, paths: string[]): number {
  for (const p of paths) {
    let cur: unknown = obj;
    for (const k of p.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
    if (typeof cur === 'number' && Number.isFinite(cur)) return cur;
  }
  return NaN;
}

/**
 * Arrival times as an Azure public dataset trace (the format inference-perf's trace_replay reads:
 * TIMESTAMP,ContextTokens,GeneratedTokens; it replays the timestamps relative to the first).
 */
export function azureTrace(requests: { arrivalUs: number; outputTokens: number }[], promptTokens: number): string {
  const base = Date.UTC(2026, 0, 1);
  const stamp = (arrivalUs: number) => {
    const us = Math.floor(arrivalUs);
    return `${new Date(base + Math.floor(us / 1000)).toISOString().slice(0, 19).replace('T', ' ')}.${String(us % 1_000_000).padStart(6, '0')}`;
  };
  return ['TIMESTAMP,ContextTokens,GeneratedTokens', ...requests.map((r) => `${stamp(r.arrivalUs)},${promptTokens},${r.outputTokens}`)].join('\n') + '\n';
}

export async function runInferencePerfCheck(c: CheckInput): Promise<InferencePerfCheck> {
  const python = join(PEERS_DIR, 'venv/bin/python');
  const exe = join(PEERS_DIR, 'venv/bin/inference-perf');
  const shape = c.shapes.find((s) => s.kind === 'shared-prefix' && s.sharedPrefix() !== null && !s.sharedPrefix()!.multiTurn);
  const load = c.loads.includes(0.7) ? 0.7 : c.loads[Math.floor(c.loads.length / 2)]!;
  const ours = shape && c.runs.find((r) => r.router === 'round-robin' && r.shape === shape.name && r.replicas === c.replicas && r.load === load);
  const point = shape ? `round-robin, ${shape.name}@${c.replicas}, load ${load}` : 'no shared-prefix shape in this run';
  const skip = (detail: string): InferencePerfCheck => { c.log(`inference-perf check skipped: ${detail}`); return { point, status: 'skipped', detail, metrics: [] }; };
  if (!existsSync(exe)) return skip(`inference-perf is not installed (${exe})`);
  if (!shape || !ours) return skip('needs round-robin and a shared-prefix shape in the run');
  const shapeNumbers = shape.sharedPrefix()!;
  const sp = { num_groups: shapeNumbers.numGroups, num_prompts_per_group: shapeNumbers.promptsPerGroup, system_prompt_len: shapeNumbers.systemPromptLen, question_len: shapeNumbers.questionLen, output_len: shapeNumbers.outputLen };
  const dir = join(c.out, 'inference-perf');
  mkdirSync(dir, { recursive: true });
  const tokenizer = join(dir, 'tokenizer');
  const env = { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' };
  if (!existsSync(join(tokenizer, 'tokenizer.json'))) {
    const b = startChild('tokenizer', python, [join(REPO, 'bench/peers/buildTokenizer.py'), tokenizer], join(dir, 'tokenizer.log'), env);
    await new Promise((r) => b.process.once('exit', r));
    if (!existsSync(join(tokenizer, 'tokenizer.json'))) return { point, status: 'failed', detail: `building the tokenizer failed: ${tail(join(dir, 'tokenizer.log'), 3)}`, metrics: [] };
  }
  const { workload } = pointWorkload(shape, c.replicas, load, c.durationS, c.seed);
  const traceFile = join(dir, 'arrivals.csv');
  writeFileSync(traceFile, azureTrace(workload.requests, shape.promptTokens));
  const n = workload.requests.length;
  const stageS = Math.ceil(workload.requests.at(-1)!.arrivalUs / 1e6) + 1;
  const sims = await c.startReplicaSet(c.replicas, shape.kvBlocks(c.replicas), join(dir, 'replicas.log'));
  const rr = ROUTERS.find((r) => r.name === 'round-robin')!;
  const router = await rr.start(sims.urls, join(dir, 'round-robin.log')).catch(async (e) => { await sims.stop(); throw e; });
  const reports = join(dir, 'reports');
  try {
    const config = {
      // inference-perf sends int(rate x duration) requests of a stage, at the trace's times.
      load: { type: 'trace_replay', trace: { file: traceFile, format: 'AzurePublicDataset' }, stages: [{ rate: (n + 0.5) / stageS, duration: stageS }], num_workers: 1, worker_max_concurrency: 1000 },
      api: { type: 'completion', streaming: true },
      server: { type: 'vllm', model_name: MODEL, base_url: router.url, ignore_eos: true },
      tokenizer: { pretrained_model_name_or_path: tokenizer },
      data: { type: 'shared_prefix', shared_prefix: sp },
      report: { request_lifecycle: { summary: true, per_stage: true, per_request: true } },
      storage: { local_storage: { path: reports } },
    };
    const file = join(dir, 'config.yml');
    writeFileSync(file, toYaml(config));
    const before = await readCounters(sims.urls);
    const run = startChild('inference-perf', exe, ['--config_file', file], join(dir, 'inference-perf.log'), env);
    const code = await new Promise<number | null>((r) => run.process.once('exit', (x) => r(x)));
    const served = servedShape(diffCounters(await readCounters(sims.urls), before));
    const summaryFile = findFile(reports, 'summary_lifecycle_metrics.json');
    if (code !== 0 || !summaryFile) return { point, status: 'failed', detail: `inference-perf exited ${code}: ${tail(join(dir, 'inference-perf.log'), 4)}`, metrics: [] };
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as unknown;
    const theirs = {
      requests: pick(s, ['successes.count', 'load_summary.count']),
      throughput: pick(s, ['successes.throughput.requests_per_sec', 'throughput.requests_per_sec']),
      ttftP50: 1000 * pick(s, ['successes.latency.time_to_first_token.median', 'latency.time_to_first_token.median']),
      e2eP50: 1000 * pick(s, ['successes.latency.request_latency.median', 'latency.request_latency.median']),
    };
    const pct = (a: number, b: number) => Math.round((1000 * (a - b)) / b) / 10;
    const row = (name: string, ours: number, theirs: number, compared: boolean) => ({ name, ours, theirs, differencePct: pct(ours, theirs), compared });
    // The two clients' latencies are the verdict; the rest says whether both runs asked the same of
    // the replicas (requests, prompt and output tokens each) and how long the replicas themselves took.
    const metrics = [
      row('TTFT p50 ms', ours.ttftMs.p50, theirs.ttftP50, true),
      row('end-to-end p50 ms', ours.e2eP50Ms, theirs.e2eP50, true),
      row('requests served', ours.ok, theirs.requests, false),
      row('prompt tokens per request (replicas)', ours.served.promptTokensPerRequest, served.promptTokensPerRequest, false),
      row('output tokens per request (replicas)', ours.served.outputTokensPerRequest, served.outputTokensPerRequest, false),
      row('end-to-end mean ms (replicas)', ours.served.e2eMeanMs, served.e2eMeanMs, false),
      row('throughput req/s', ours.throughputRps, theirs.throughput, false),
    ];
    const agree = metrics.filter((m) => m.compared).every((m) => Math.abs(m.differencePct) <= 10);
    c.log(`inference-perf check (${point}): ${metrics.map((m) => `${m.name} ours ${m.ours} vs ${Number.isFinite(m.theirs) ? m.theirs.toFixed(1) : m.theirs} (${m.differencePct}%)`).join(', ')}`);
    return { point, status: agree ? 'agree' : 'differ', detail: agree ? 'TTFT and end-to-end p50 within 10%' : 'TTFT or end-to-end p50 more than 10% apart', metrics };
  } finally {
    await router.stop();
    await sims.stop();
  }
}
