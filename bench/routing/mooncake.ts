// Replay of a trace in the Mooncake format (kvcache-ai/Mooncake, FAST'25): JSONL,
// one request per line: {"timestamp": ms, "input_length": tokens,
// "output_length": tokens, "hash_ids": [...]}. Each hash id is one 512-token
// block; equal ids mean a shared prefix block. Every id gets one fixed
// pseudo-random 512-token text, so equal ids give equal text and equal
// prefixes give equal hashes in the engines, the filter and the baselines.
// Requests sharing a coarse timestamp arrive spread over its step (arrivalsUs).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHARS_PER_TOKEN, makeRequest, textOf, type SimRequest, type Workload } from './workloads.js';
import { Rng, deriveSeed } from './random.js';

/** The production trace in the repository: the first 11 minutes of Mooncake's conversation trace (data/README.md). */
export const MOONCAKE_CONVERSATION_TRACE = fileURLToPath(new URL('../../data/traces/mooncake-conversation-head-1986.jsonl', import.meta.url));

/** Tokens per Mooncake hash id (the format's block). */
export const MOONCAKE_BLOCK_TOKENS = 512;

export interface MooncakeRecord {
  timestampMs: number;
  inputLength: number;
  outputLength: number;
  hashIds: number[];
}

/** Parses JSONL; throws an Error naming the line and field of the first bad record. Blank lines are skipped. */
export function parseMooncake(text: string, source = 'trace'): MooncakeRecord[] {
  const out: MooncakeRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${source}:${i + 1}`;
    let v: any;
    try { v = JSON.parse(line); } catch (e) { throw new Error(`${where}: not JSON (${(e as Error).message})`); }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected an object`);
    const num = (field: string, min: number) => {
      const x = v[field];
      if (typeof x !== 'number' || !Number.isFinite(x) || x < min) throw new Error(`${where}: ${field} must be a number >= ${min}, got ${JSON.stringify(x)}`);
      return x;
    };
    const timestampMs = num('timestamp', 0);
    const inputLength = num('input_length', 1);
    const outputLength = num('output_length', 0);
    if (!Number.isInteger(inputLength) || !Number.isInteger(outputLength)) throw new Error(`${where}: input_length and output_length must be integers`);
    const ids = v.hash_ids;
    if (!Array.isArray(ids) || ids.some((h: unknown) => typeof h !== 'number' || !Number.isInteger(h) || h < 0)) {
      throw new Error(`${where}: hash_ids must be an array of non-negative integers`);
    }
    out.push({ timestampMs, inputLength, outputLength, hashIds: ids as number[] });
  }
  if (out.length === 0) throw new Error(`${source}: no records`);
  return out;
}

/** The records of the trace in `file`; throws an Error naming the file (unreadable) or the line and field (parseMooncake). */
export function readMooncakeTrace(file: string): MooncakeRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseMooncake(text, file);
}

/**
 * Prompt text of one record: the texts of its hash ids in order, cut to
 * input_length tokens; a prompt longer than its blocks is padded with text of
 * its own (shared with nothing).
 */
export function mooncakePrompt(r: MooncakeRecord, index: number, seed: number): string {
  const parts: string[] = [];
  let tokens = 0;
  for (const id of r.hashIds) {
    if (tokens >= r.inputLength) break;
    parts.push(textOf(deriveSeed(seed, 'mooncake-block', id), MOONCAKE_BLOCK_TOKENS));
    tokens += MOONCAKE_BLOCK_TOKENS;
  }
  if (tokens < r.inputLength) parts.push(textOf(deriveSeed(seed, 'mooncake-tail', index), r.inputLength - tokens));
  return parts.join('').slice(0, r.inputLength * CHARS_PER_TOKEN);
}

/**
 * Arrival times, µs after the first timestamp, of records in timestamp order. A trace whose
 * timestamps are coarse (Mooncake's published ones step by 3 s, with up to 19 requests on one)
 * would deliver each step's requests in the same microsecond, a burst that no two gateways can
 * see each other's part of; requests sharing a timestamp are spread uniformly at random over the
 * step to the next distinct timestamp (the last ones over the median step), as they arrived
 * within it. A trace of distinct timestamps keeps them.
 */
export function arrivalsUs(timestampsMs: readonly number[], seed: number): number[] {
  if (timestampsMs.length === 0) return [];
  const t0 = timestampsMs[0]!;
  const distinct = [...new Set(timestampsMs)];
  const steps = distinct.slice(1).map((t, k) => t - distinct[k]!).sort((a, b) => a - b);
  const medianStep = steps.length ? steps[steps.length >> 1]! : 0;
  const rng = Rng.of(seed, 'mooncake-arrivals');
  const out: number[] = [];
  for (let i = 0, d = 0; i < timestampsMs.length; d++) {
    const t = timestampsMs[i]!;
    let j = i + 1;
    while (j < timestampsMs.length && timestampsMs[j] === t) j++;
    const step = d + 1 < distinct.length ? distinct[d + 1]! - t : medianStep;
    for (let k = i; k < j; k++) out.push(Math.round(((t - t0) + (j - i > 1 ? rng.float() * step : 0)) * 1000));
    i = j;
  }
  return out;
}

/** A trace as a workload: arrivals at the trace's timestamps (relative to the first; arrivalsUs), in arrival order. */
export function mooncakeWorkload(name: string, records: MooncakeRecord[], seed: number, limit = Infinity): Workload {
  const order = records.map((r, i) => ({ r, i })).sort((a, b) => a.r.timestampMs - b.r.timestampMs || a.i - b.i).slice(0, limit);
  const at = arrivalsUs(order.map(({ r }) => r.timestampMs), seed);
  const timed = order.map((o, k) => ({ ...o, us: at[k]! })).sort((a, b) => a.us - b.us || a.i - b.i);
  const requests: SimRequest[] = timed.map(({ r, i, us }, k) =>
    makeRequest(k, us, mooncakePrompt(r, i, seed), Math.max(1, r.outputLength), r.hashIds.length ? `h${r.hashIds[0]}` : `r${i}`));
  const spanS = requests.length ? requests[requests.length - 1]!.arrivalUs / 1e6 : 0;
  return {
    name,
    description: `Mooncake trace replay: ${requests.length} requests over ${spanS.toFixed(1)} s, 512 tokens per hash id`,
    rateRps: spanS > 0 ? requests.length / spanS : 0,
    requests,
  };
}

/** The trace `w` (mooncakeWorkload) at `rateRps`: its arrival times stretched (a lower rate) or compressed. */
export function traceAtRate(w: Workload, rateRps: number): Workload {
  if (w.rateRps === 0 || Math.abs(rateRps - w.rateRps) < 1e-9 * w.rateRps) return w;
  const f = w.rateRps / rateRps;
  return { ...w, rateRps, description: `${w.description}, timestamps x${f.toFixed(3)}`, requests: w.requests.map((r) => ({ ...r, arrivalUs: Math.round(r.arrivalUs * f) })) };
}
