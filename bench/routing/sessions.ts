// Session workloads: requests that come in sessions, each request's prompt the
// whole session so far. Two shapes:
// - conversation: chat sessions of 2-20 turns behind one of a few shared system
//   prompts; each turn appends the user's message and the model's answer, so
//   prompts grow from about 1k to 30k tokens;
// - long-context (agentic): tasks that start from a shared tool preamble and a
//   long shared document (a repository, a report), then append tool output at
//   every step: 20k-60k-token prompts sharing long prefixes.
// A session's content and timing (think time after each answer) are fixed by
// the seed; only when sessions start depends on the offered rate, so every rung
// of a load ladder replays the same requests. Arrivals are open loop: a turn
// comes its think time plus a nominal answer time after the previous turn
// arrived, whatever the router did, so every policy sees the same arrivals.
import { CHARS_PER_TOKEN, chainHash, ROOT_HASH } from '../../simulator/tokens.js';
import { Rng, deriveSeed } from './random.js';
import { BLOCK_TOKENS, textOf, type SimRequest, type Workload } from './workloads.js';

/** Nominal time per output token the arrival schedule assumes for the previous answer (T4 decode at moderate batch). */
const NOMINAL_DECODE_MS_PER_TOKEN = 20;

export interface SessionShape {
  /** Shared preambles every session starts with one of (system prompts, agent tool definitions). */
  preambles: number;
  preambleTokens: number;
  /** Shared documents after the preamble (0: none): the long shared context of agentic tasks. */
  documents: number;
  documentTokens: [number, number];
  /** Turns (requests) per session, uniform. */
  turns: [number, number];
  /** Tokens appended before each request (user message, tool output), uniform. */
  appendTokens: [number, number];
  /** Output tokens of each request, uniform. */
  outputTokens: [number, number];
  /** A session ends before a prompt would pass this. */
  maxPromptTokens: number;
  /** Mean think time between an answer and the next request, exponential, ms. */
  thinkMs: number;
}

/** Conversation: 8 system prompts of 768 tokens, 2-20 turns, messages of 100-2400 tokens (questions to pasted documents), answers 100-500. */
export const CONVERSATION: SessionShape = {
  preambles: 8, preambleTokens: 768, documents: 0, documentTokens: [0, 0], turns: [2, 20],
  appendTokens: [100, 2400], outputTokens: [100, 500], maxPromptTokens: 30_000, thinkMs: 4_000,
};

/** Agentic long context: 4 tool preambles of 4k tokens, 12 shared documents of 16k-40k, 2-8 steps appending 1k-4k of tool output. */
export const LONG_CONTEXT: SessionShape = {
  preambles: 4, preambleTokens: 4096, documents: 12, documentTokens: [16_000, 40_000], turns: [2, 8],
  appendTokens: [1000, 4000], outputTokens: [100, 300], maxPromptTokens: 60_000, thinkMs: 3_000,
};

interface SessionRequest {
  /** Offset from the session's start, µs. */
  offsetUs: number;
  prompt: string;
  promptTokens: number;
  blockHashes: number[];
  outputTokens: number;
}

export interface SessionTemplate {
  name: string;
  description: string;
  /** Start of each session at a session rate of 1/s, µs. */
  unitStartsUs: number[];
  sessions: SessionRequest[][];
  requestCount: number;
  meanTurns: number;
}

/** Extends the chained block hashes of `text`'s first `known.length` blocks to all of its full blocks. */
function extendHashes(text: string, known: readonly number[]): number[] {
  const charsPerBlock = BLOCK_TOKENS * CHARS_PER_TOKEN;
  const full = Math.floor(Math.ceil(text.length / CHARS_PER_TOKEN) / BLOCK_TOKENS);
  const out = known.slice(0, full);
  let parent = out.length ? out[out.length - 1]! : ROOT_HASH;
  for (let b = out.length; b < full; b++) {
    const from = b * charsPerBlock;
    parent = chainHash(parent, text, from, Math.min(from + charsPerBlock, text.length));
    out.push(parent);
  }
  return out;
}

const uniform = (rng: Rng, [lo, hi]: [number, number]) => lo + rng.int(hi - lo + 1);

/** Builds `minRequests` or a few more requests in whole sessions. */
export function sessionTemplate(name: string, label: string, shape: SessionShape, minRequests: number, seed: number): SessionTemplate {
  const rng = Rng.of(seed, name, 'sessions');
  const startRng = Rng.of(seed, name, 'starts');
  const preamble = new Map<number, string>();
  const documents = new Map<number, string>();
  const sessions: SessionRequest[][] = [];
  const unitStartsUs: number[] = [];
  let count = 0, t = 0;
  while (count < minRequests) {
    const s = sessions.length;
    const p = rng.int(shape.preambles);
    let text = preamble.get(p) ?? textOf(deriveSeed(seed, name, 'preamble', p), shape.preambleTokens);
    preamble.set(p, text);
    if (shape.documents > 0) {
      const d = rng.int(shape.documents);
      let doc = documents.get(d);
      if (doc === undefined) {
        const len = uniform(Rng.of(seed, name, 'document-length', d), shape.documentTokens);
        documents.set(d, (doc = textOf(deriveSeed(seed, name, 'document', d), len)));
      }
      text += doc;
    }
    let hashes: number[] = [];
    const turns = uniform(rng, shape.turns);
    const reqs: SessionRequest[] = [];
    let offsetMs = 0;
    for (let k = 0; k < turns; k++) {
      const append = textOf(deriveSeed(seed, name, 'append', s, k), uniform(rng, shape.appendTokens));
      const out = uniform(rng, shape.outputTokens);
      const prompt = text + append;
      const promptTokens = Math.ceil(prompt.length / CHARS_PER_TOKEN);
      if (promptTokens > shape.maxPromptTokens && k > 0) break;
      hashes = extendHashes(prompt, hashes);
      reqs.push({ offsetUs: Math.round(offsetMs * 1000), prompt, promptTokens, blockHashes: hashes, outputTokens: out });
      // The answer joins the conversation; the next turn comes after it and a think time.
      text = prompt + textOf(deriveSeed(seed, name, 'answer', s, k), out);
      offsetMs += out * NOMINAL_DECODE_MS_PER_TOKEN + rng.exponentialUs(shape.thinkMs * 1000) / 1000;
    }
    t += startRng.exponentialUs(1e6);
    unitStartsUs.push(t);
    sessions.push(reqs);
    count += reqs.length;
  }
  const lens = sessions.flat().map((r) => r.promptTokens);
  const description = `${label}: ${sessions.length} sessions, ${count} requests, prompts ${Math.min(...lens)}-${Math.max(...lens)} tokens (mean ${Math.round(lens.reduce((a, b) => a + b, 0) / lens.length)})`;
  return { name, description, unitStartsUs, sessions, requestCount: count, meanTurns: count / sessions.length };
}

/** Session `s`'s request `r`, the session starting at `startUs`. */
const requestOf = (r: SessionRequest, s: number, startUs: number): Omit<SimRequest, 'id'> =>
  ({ arrivalUs: startUs + r.offsetUs, prompt: r.prompt, promptTokens: r.promptTokens, blockHashes: r.blockHashes, outputTokens: r.outputTokens, group: `s${s}` });

/** The requests in arrival order, numbered. */
function inArrivalOrder(all: Array<Omit<SimRequest, 'id'>>): SimRequest[] {
  all.sort((a, b) => a.arrivalUs - b.arrivalUs);
  return all.map((r, id) => ({ id, ...r }));
}

/** The template's first sessions holding at least `n` requests, starting at `rateRps / meanTurns` sessions a second (Poisson). */
export function sessionWorkload(tpl: SessionTemplate, rateRps: number, n: number): Workload {
  const sessionRate = rateRps / tpl.meanTurns;
  const all: Array<Omit<SimRequest, 'id'>> = [];
  for (let s = 0; s < tpl.sessions.length && all.length < n; s++) {
    const start = Math.round(tpl.unitStartsUs[s]! / sessionRate);
    for (const r of tpl.sessions[s]!) all.push(requestOf(r, s, start));
  }
  return { name: tpl.name, description: tpl.description, rateRps, requests: inArrivalOrder(all) };
}

/**
 * Sessions in their steady state, for a real-time point that cannot run long enough to reach it from
 * an empty start: sessions start (Poisson, `rateRps / meanTurns` a second) from `warmupS` before a
 * window of `windowS` on. Turns that arrive before the window are sent as a warm-up (flagged
 * `warmup`), those inside it are measured, and later ones are not sent, so the window sees the
 * running sessions' later, longer turns at about the nominal rate. Arrivals count from the warm-up's
 * start; the window opens at `warmupS`.
 */
export function sessionWindowWorkload(tpl: SessionTemplate, rateRps: number, warmupS: number, windowS: number): Workload {
  const sessionRate = rateRps / tpl.meanTurns;
  const endUs = (warmupS + windowS) * 1e6;
  const lastStartUs = tpl.unitStartsUs[tpl.unitStartsUs.length - 1]! / sessionRate;
  if (lastStartUs < endUs) throw new Error(`${tpl.name}: its ${tpl.sessions.length} sessions start within ${(lastStartUs / 1e6).toFixed(0)} s at ${rateRps} req/s, short of the ${warmupS + windowS} s asked for: build the template with more requests`);
  const all: Array<Omit<SimRequest, 'id'>> = [];
  for (let s = 0; s < tpl.sessions.length; s++) {
    const start = Math.round(tpl.unitStartsUs[s]! / sessionRate);
    if (start >= endUs) break;
    for (const r of tpl.sessions[s]!) {
      const req = requestOf(r, s, start);
      if (req.arrivalUs >= endUs) break;
      all.push(req.arrivalUs < warmupS * 1e6 ? { ...req, warmup: true } : req);
    }
  }
  return { name: tpl.name, description: `${tpl.description}; ${warmupS} s of warm-up, then ${windowS} s measured`, rateRps, requests: inArrivalOrder(all) };
}
