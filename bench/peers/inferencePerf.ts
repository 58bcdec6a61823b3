// Once per ladder: the same point driven by kubernetes-sigs inference-perf (its shared_prefix data
// generator, Poisson load, streaming completions, a tokenizer built locally by buildTokenizer.py
// with HF_HUB_OFFLINE=1) through round robin on fresh replicas, set beside what our load generator
// measured there. The two generate different prompts of the same shape, so they agree only as far
// as the shape, not the exact text, decides the numbers.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { MODEL } from '../routing/workloads.js';
import { PEERS_DIR, REPO, ROUTERS } from './routers.js';
import { startChild, tail } from './processes.js';
import type { PeerShape, RunResult } from './main.js';

export interface InferencePerfCheck {
  point: string;
  status: 'agree' | 'differ' | 'skipped' | 'failed';
  detail: string;
  metrics: { name: string; ours: number; theirs: number; differencePct: number }[];
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
  const sims = await c.startReplicaSet(c.replicas, shape.kvBlocks(c.replicas), join(dir, 'replicas.log'));
  const rr = ROUTERS.find((r) => r.name === 'round-robin')!;
  const router = await rr.start(sims.urls, join(dir, 'round-robin.log')).catch(async (e) => { await sims.stop(); throw e; });
  const reports = join(dir, 'reports');
  try {
    const config = {
      load: { type: 'poisson', stages: [{ rate: ours.offeredRps, duration: Math.round(c.durationS) }], num_workers: 1, worker_max_concurrency: 1000 },
      api: { type: 'completion', streaming: true },
      server: { type: 'vllm', model_name: MODEL, base_url: router.url, ignore_eos: true },
      tokenizer: { pretrained_model_name_or_path: tokenizer },
      data: { type: 'shared_prefix', shared_prefix: sp },
      report: { request_lifecycle: { summary: true, per_stage: true, per_request: false } },
      storage: { local_storage: { path: reports } },
    };
    const file = join(dir, 'config.yml');
    writeFileSync(file, toYaml(config));
    const run = startChild('inference-perf', exe, ['--config_file', file], join(dir, 'inference-perf.log'), env);
    const code = await new Promise<number | null>((r) => run.process.once('exit', (x) => r(x)));
    const summaryFile = findFile(reports, 'summary_lifecycle_metrics.json');
    if (code !== 0 || !summaryFile) return { point, status: 'failed', detail: `inference-perf exited ${code}: ${tail(join(dir, 'inference-perf.log'), 4)}`, metrics: [] };
    const s = JSON.parse(readFileSync(summaryFile, 'utf8')) as unknown;
    const theirs = {
      throughput: pick(s, ['successes.throughput.requests_per_sec', 'throughput.requests_per_sec']),
      ttftP50: 1000 * pick(s, ['successes.latency.time_to_first_token.median', 'latency.time_to_first_token.median']),
      e2eP50: 1000 * pick(s, ['successes.latency.request_latency.median', 'latency.request_latency.median']),
    };
    // Latencies are compared; throughput is shown beside them but depends on where the last random
    // arrival of each generator's own Poisson draw fell in a short window, so it is not part of the verdict.
    const metrics = [
      { name: 'TTFT p50 ms', ours: ours.ttftMs.p50, theirs: theirs.ttftP50 },
      { name: 'end-to-end p50 ms', ours: ours.e2eP50Ms, theirs: theirs.e2eP50 },
    ].map((m) => ({ ...m, differencePct: Math.round((1000 * (m.ours - m.theirs)) / m.theirs) / 10 }));
    const agree = metrics.every((m) => Math.abs(m.differencePct) <= 10);
    const tput = { name: 'throughput req/s (not compared)', ours: ours.throughputRps, theirs: theirs.throughput };
    metrics.push({ ...tput, differencePct: Math.round((1000 * (tput.ours - tput.theirs)) / tput.theirs) / 10 });
    c.log(`inference-perf check (${point}): ${metrics.map((m) => `${m.name} ours ${m.ours} vs ${m.theirs.toFixed(2)} (${m.differencePct}%)`).join(', ')}`);
    return { point, status: agree ? 'agree' : 'differ', detail: agree ? 'TTFT and end-to-end p50 within 10%' : 'TTFT or end-to-end p50 more than 10% apart', metrics };
  } finally {
    await router.stop();
    await sims.stop();
  }
}
