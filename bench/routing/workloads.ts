// Workloads of the routing simulation: request lists (arrival time, prompt text,
// output length) built deterministically from a seed. Shapes come from the real
// inference-perf / llm-d-benchmark configs (read with `yaml`), a Mooncake trace,
// or the two synthetic edge cases (one shared system prompt; unique prompts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { CHARS_PER_TOKEN, randomText, tokenizePrompt } from '../../simulator/tokens.js';
import { Rng, deriveSeed } from './random.js';

/** vLLM's KV block size; the engines and the oracle count hits in these blocks. */
export const BLOCK_TOKENS = 16;
/** The model name every request carries (the seed deployment's model). */
export const MODEL = 'Qwen/Qwen2.5-3B-Instruct';
/** The real workload configs in the repository (data/README.md). */
export const DEFAULT_WORKLOAD_DIR = fileURLToPath(new URL('../../data/workloads', import.meta.url));

export interface SimRequest {
  /** Arrival order, 0-based. */
  id: number;
  /** Arrival time in whole microseconds since the start of the run. */
  arrivalUs: number;
  prompt: string;
  promptTokens: number;
  /** The simulator's chained hashes of the prompt's full 16-token blocks. */
  blockHashes: number[];
  outputTokens: number;
  /** What the request shares a prefix with (system prompt, conversation, first trace block): for agreement. */
  group: string;
  /** The session it belongs to (sent as x-session-id by the filter policy), if any. */
  session?: string;
  /** The LoRA adapter it names as its model, if any (engines salt its cache blocks with it). */
  lora?: string;
  /** Sent to bring the replicas and the router to a steady state before a measured window, and not measured. */
  warmup?: boolean;
}

export interface Workload {
  name: string;
  /** One line on the shape and where it comes from. */
  description: string;
  /** Offered load, requests/s (0 for a trace that brings its own timestamps). */
  rateRps: number;
  requests: SimRequest[];
}

/** inference-perf `data.shared_prefix` (either naming generation). */
export interface SharedPrefixShape {
  numGroups: number;
  promptsPerGroup: number;
  systemPromptLen: number;
  questionLen: number;
  outputLen: number;
  multiTurn: boolean;
}

function positiveInt(v: unknown, field: string, file: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${file}: ${field} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads `data.shared_prefix` (or `config.data.shared_prefix`) from an inference-perf config. */
export function readSharedPrefixShape(path: string): SharedPrefixShape {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read workload config ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let doc: Record<string, any>;
  try {
    doc = parseYaml(text) as Record<string, any>;
  } catch (e) {
    throw new Error(`${path}: not valid YAML: ${(e as Error).message}`);
  }
  const data = doc?.data ?? doc?.config?.data;
  const sp = data?.shared_prefix;
  if (data?.type !== 'shared_prefix' || typeof sp !== 'object' || sp === null) throw new Error(`${path}: no data.shared_prefix section`);
  return {
    numGroups: positiveInt(sp.num_groups ?? sp.num_unique_system_prompts, 'shared_prefix.num_groups', path),
    promptsPerGroup: positiveInt(sp.num_prompts_per_group ?? sp.num_users_per_system_prompt, 'shared_prefix.num_prompts_per_group', path),
    systemPromptLen: positiveInt(sp.system_prompt_len, 'shared_prefix.system_prompt_len', path),
    questionLen: positiveInt(sp.question_len, 'shared_prefix.question_len', path),
    outputLen: positiveInt(sp.output_len, 'shared_prefix.output_len', path),
    multiTurn: sp.enable_multi_turn_chat === true,
  };
}

/** Fixed pseudo-random text of `tokens` tokens (4 characters each), the same for the same seed. */
export function textOf(seed: number, tokens: number): string {
  return randomText(seed, tokens).join('');
}

/** The prompt tokens two requests share from their start, in whole blocks (BLOCK_TOKENS). */
export function sharedPrefixTokens(a: SimRequest, b: SimRequest): number {
  const x = a.blockHashes, y = b.blockHashes;
  let k = 0;
  while (k < x.length && k < y.length && x[k] === y[k]) k++;
  return k * BLOCK_TOKENS;
}

export function makeRequest(id: number, arrivalUs: number, prompt: string, outputTokens: number, group: string): SimRequest {
  const { promptTokens, blockHashes } = tokenizePrompt(prompt, BLOCK_TOKENS);
  return { id, arrivalUs, prompt, promptTokens, blockHashes, outputTokens, group };
}

/** Poisson arrival times (whole µs) of n requests at `rateRps`. */
export function poissonArrivals(n: number, rateRps: number, rng: Rng): number[] {
  const meanUs = 1e6 / rateRps;
  const out: number[] = new Array(n);
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += rng.exponentialUs(meanUs);
    out[i] = t;
  }
  return out;
}

/**
 * inference-perf shared_prefix: `numGroups` system prompts, `promptsPerGroup`
 * questions each; every arrival draws one (group, question) pair at random.
 * Multi-turn: each (group, question) is a user whose turns append the previous
 * question and answer to the context, as inference-perf's multi-turn chat does.
 */
export function sharedPrefixWorkload(name: string, description: string, shape: SharedPrefixShape, n: number, rateRps: number, seed: number): Workload {
  const rng = Rng.of(seed, name, 'pick');
  const arrivals = poissonArrivals(n, rateRps, Rng.of(seed, name, 'arrivals'));
  const systems = new Map<number, string>();
  const system = (g: number) => {
    let s = systems.get(g);
    if (s === undefined) systems.set(g, (s = textOf(deriveSeed(seed, name, 'system', g), shape.systemPromptLen)));
    return s;
  };
  const contexts = new Map<number, { text: string; turn: number }>(); // multi-turn: conversation so far per user
  const requests: SimRequest[] = [];
  for (let i = 0; i < n; i++) {
    const g = rng.int(shape.numGroups);
    const q = rng.int(shape.promptsPerGroup);
    const user = g * shape.promptsPerGroup + q;
    let prompt: string;
    if (shape.multiTurn) {
      const ctx = contexts.get(user) ?? { text: system(g), turn: 0 };
      const question = textOf(deriveSeed(seed, name, 'question', user, ctx.turn), shape.questionLen);
      prompt = ctx.text + question;
      const answer = textOf(deriveSeed(seed, name, 'answer', user, ctx.turn), shape.outputLen);
      contexts.set(user, { text: prompt + answer, turn: ctx.turn + 1 });
    } else {
      prompt = system(g) + textOf(deriveSeed(seed, name, 'question', user), shape.questionLen);
    }
    requests.push(makeRequest(i, arrivals[i]!, prompt, shape.outputLen, shape.multiTurn ? `u${user}` : `g${g}`));
  }
  return { name, description, rateRps, requests };
}

/** Every request a fresh prompt: nothing to share, routing can only balance load. */
export function uniqueWorkload(name: string, promptTokens: number, outputTokens: number, n: number, rateRps: number, seed: number): Workload {
  const arrivals = poissonArrivals(n, rateRps, Rng.of(seed, name, 'arrivals'));
  const requests = arrivals.map((t, i) => makeRequest(i, t, textOf(deriveSeed(seed, name, 'prompt', i), promptTokens), outputTokens, `r${i}`));
  return { name, description: `unique prompts: ${promptTokens} prompt / ${outputTokens} output tokens, nothing shared`, rateRps, requests };
}

/**
 * `warm`'s requests as warm-up (not measured), then `measured`'s, arriving from one mean gap of
 * its rate after the last of them: a change in the traffic, met by a router and replicas in the
 * state the traffic before it left. Groups are kept apart by a prefix on each side's.
 */
export function afterWarmup(name: string, description: string, warm: Workload, measured: Workload): Workload {
  const last = warm.requests.length ? warm.requests[warm.requests.length - 1]!.arrivalUs : 0;
  const gapUs = measured.rateRps > 0 ? Math.round(1e6 / measured.rateRps) : 0;
  const requests = [
    ...warm.requests.map((r) => ({ ...r, group: `warm:${r.group}`, warmup: true })),
    ...measured.requests.map((r, i) => ({ ...r, id: warm.requests.length + i, arrivalUs: last + gapUs + r.arrivalUs })),
  ];
  return { name, description, rateRps: measured.rateRps, requests };
}

export const sharedPrefixConfigPath = (dir: string, file: string) => join(dir, file);

/** Chars of one token, the simulator's rule (re-exported for trace replay). */
export { CHARS_PER_TOKEN };
