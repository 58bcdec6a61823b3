// The replica engine: prefix cache + continuous-batching scheduler + latency model, as a pure
// state machine over a caller-supplied clock (milliseconds, any origin). No timers live here:
// the HTTP server drives it in scaled real time (realtime.ts), a discrete-event simulation can
// drive many engines in virtual time. Same inputs, same outputs: it is deterministic.
//
// Scheduling follows vLLM V1's shape: each step first serves the running requests (one decode
// token each, or the next chunk of an unfinished prefill), then admits waiting requests FIFO
// while there are sequence slots, token budget and KV blocks; a running request that needs a
// block when none is free preempts the most recently admitted one (recompute later).

import { KvBlockPool } from './kvCache.js';
import { LatencyModel, T4_QWEN25_3B, type LatencyParams } from './latency.js';

export interface EngineConfig {
  /** Tokens per KV block (vLLM: 16). */
  blockSize: number;
  /** KV capacity in blocks (vLLM: num_gpu_blocks). */
  numGpuBlocks: number;
  /** Most sequences in one step (vLLM: max_num_seqs). */
  maxNumSeqs: number;
  /** Token budget of one step, decode tokens included (vLLM: max_num_batched_tokens). */
  maxNumBatchedTokens: number;
  /** Longest prompt + output, tokens (vLLM: max_model_len). */
  maxModelLen: number;
  latency: LatencyParams;
  /** Emit a 'token' event for every output token after the first (streaming needs them). */
  tokenEvents: boolean;
  /**
   * LoRA adapters one step can run (vLLM: max_loras, the GPU adapter slots); 0: LoRA off,
   * requests naming an adapter are refused.
   */
  maxLoras: number;
  /** Time a step takes longer for each adapter it loads into a slot (from host memory). */
  loraLoadMs: number;
}

// vLLM V1 defaults for an OpenAI server on a 16 GB GPU, and KV sizing for the reference deployment:
// 36 KiB of KV per token (Qwen2.5-3B: 36 layers x 2 KV heads x 128 dims x K+V x 2 bytes); ~200k
// tokens of KV at gpu_memory_utilization 0.9 leaves ~6.6 GiB for weights and activations, so 0.75
// keeps ~4.6 GiB ~= 134k tokens ~= 8400 blocks of 16.
export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  blockSize: 16,
  numGpuBlocks: 8400,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 2048,
  maxModelLen: 32768,
  latency: T4_QWEN25_3B,
  tokenEvents: false,
  maxLoras: 0,
  // An estimate, not a measurement: copying a rank-16 adapter of a 3B model (tens of MB) over
  // PCIe and setting up its slot.
  loraLoadMs: 20,
};

export interface EngineRequest {
  promptTokens: number;
  /** Chained hashes of the prompt's full blocks (tokens.ts tokenizePrompt). */
  blockHashes: readonly number[];
  /** How many tokens to generate (>= 1); the request finishes after the last. */
  outputTokens: number;
  /** Why it stops after outputTokens (metrics label only); 'length' when absent. */
  finishReason?: 'stop' | 'length';
  /** The LoRA adapter it runs with (vLLM: the request's model names an adapter); none: the base model. */
  lora?: string;
}

export type EngineEvent =
  | { kind: 'first_token'; id: number; atMs: number; cachedTokens: number }
  | { kind: 'token'; id: number; atMs: number; index: number }
  | {
      kind: 'finished'; id: number; atMs: number; promptTokens: number; cachedTokens: number;
      outputTokens: number; queueMs: number; ttftMs: number; e2eMs: number;
    };

export class EngineRequestError extends Error {
  constructor(message: string, readonly param: string) { super(message); }
}

// vLLM V1 bucket bounds (seconds).
export const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
export const E2E_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

export class Histogram {
  readonly counts: number[]; // per bucket, not cumulative; last = +Inf
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) { this.counts = new Array(bounds.length + 1).fill(0); }
  observe(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
  cumulative(): number[] {
    let acc = 0;
    return this.counts.map((c) => (acc += c));
  }
  clone(): Histogram {
    const h = new Histogram(this.bounds);
    h.counts.splice(0, h.counts.length, ...this.counts);
    h.sum = this.sum; h.count = this.count;
    return h;
  }
}

export interface MetricsSnapshot {
  nowMs: number;
  numRequestsRunning: number;
  numRequestsWaiting: number;
  /** 1 - free blocks / all blocks, as vLLM's kv_cache_usage_perc (0..1). */
  kvCacheUsage: number;
  numGpuBlocks: number;
  blockSize: number;
  freeBlocks: number;
  cachedBlocks: number;
  /** Prompt tokens looked up in the prefix cache (vLLM prefix_cache_queries_total). */
  prefixCacheQueries: number;
  /** Prompt tokens found there (vLLM prefix_cache_hits_total). */
  prefixCacheHits: number;
  promptTokens: number;
  generationTokens: number;
  requestSuccess: number;
  /** Finished requests by finish reason. */
  requestSuccessByReason: { stop: number; length: number };
  preemptions: number;
  evictions: number;
  ttftSeconds: Histogram;
  e2eSeconds: Histogram;
  /** LoRA slots (0: LoRA off), and the distinct adapters of running and of waiting requests. */
  maxLoras: number;
  runningLoraAdapters: string[];
  waitingLoraAdapters: string[];
  /** Adapters loaded into a slot so far. */
  loraLoads: number;
}

interface Seq {
  id: number;
  req: EngineRequest;
  arrivalMs: number;
  admittedMs: number;
  firstTokenMs: number; // NaN until the first token
  blocks: number[];
  /** The prompt's block hashes as this engine caches them: salted by the adapter, which never shares KV with another. */
  hashes: readonly number[];
  numComputed: number; // tokens whose KV exists
  numRegistered: number; // leading prompt blocks registered in the cache
  cachedTokens: number; // prefix-cache hit at (first) admission
  generated: number;
  aborted: boolean;
}

interface Step {
  endMs: number;
  scheduled: { seq: Seq; tokens: number }[];
}

export class ReplicaEngine {
  readonly config: EngineConfig;
  readonly kv: KvBlockPool;
  readonly latency: LatencyModel;
  private clock = 0;
  private nextId = 1;
  private readonly waiting: Seq[] = [];
  private readonly running: Seq[] = [];
  private readonly byId = new Map<number, Seq>();
  private step: Step | null = null;
  private stepDue = false; // work is waiting and no step is formed yet
  private pending: EngineEvent[] = [];
  private stats = { prefixCacheQueries: 0, prefixCacheHits: 0, promptTokens: 0, generationTokens: 0, requestSuccess: 0, preemptions: 0 };
  private readonly successByReason = { stop: 0, length: 0 };
  private readonly ttft = new Histogram(TTFT_BUCKETS);
  private readonly e2e = new Histogram(E2E_BUCKETS);
  /** Adapters in GPU slots, least recently used first. */
  private readonly loraSlots: string[] = [];
  private loraLoads = 0;

  constructor(config: Partial<EngineConfig> = {}, startMs = 0) {
    this.config = { ...DEFAULT_ENGINE_CONFIG, ...config, latency: { ...DEFAULT_ENGINE_CONFIG.latency, ...config.latency } };
    const c = this.config;
    for (const k of ['blockSize', 'numGpuBlocks', 'maxNumSeqs', 'maxNumBatchedTokens', 'maxModelLen'] as const) {
      if (!Number.isInteger(c[k]) || c[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${c[k]}`);
    }
    if (c.maxNumBatchedTokens < c.maxNumSeqs) throw new RangeError(`maxNumBatchedTokens (${c.maxNumBatchedTokens}) must be >= maxNumSeqs (${c.maxNumSeqs})`);
    this.kv = new KvBlockPool(c.numGpuBlocks);
    this.latency = new LatencyModel(c.latency);
    this.clock = startMs;
  }

  get numWaiting(): number { return this.waiting.length; }
  get numRunning(): number { return this.running.length; }

  /** The engine's current time (the last time it was advanced to). */
  get nowMs(): number { return this.clock; }

  /**
   * Queues a request arriving at nowMs (>= nowMs of previous calls; the engine first advances
   * to nowMs and keeps any events that produces for the next advance()). Returns its id.
   * Throws EngineRequestError for a request this engine could never serve.
   */
  submit(req: EngineRequest, nowMs: number): number {
    const c = this.config;
    if (!Number.isInteger(req.promptTokens) || req.promptTokens < 1) throw new EngineRequestError('prompt must have at least one token', 'prompt');
    if (!Number.isInteger(req.outputTokens) || req.outputTokens < 1) throw new EngineRequestError('max_tokens must be at least 1', 'max_tokens');
    const total = req.promptTokens + req.outputTokens;
    if (total > c.maxModelLen) {
      throw new EngineRequestError(`This model's maximum context length is ${c.maxModelLen} tokens. However, you requested ${total} tokens (${req.promptTokens} in the messages, ${req.outputTokens} in the completion). Please reduce the length of the messages or completion.`, 'max_tokens');
    }
    if (Math.ceil(total / c.blockSize) > c.numGpuBlocks) throw new EngineRequestError(`request needs ${Math.ceil(total / c.blockSize)} KV blocks, the cache has ${c.numGpuBlocks}`, 'max_tokens');
    if (req.blockHashes.length > Math.floor(req.promptTokens / c.blockSize)) throw new EngineRequestError('more block hashes than full prompt blocks', 'prompt');
    if (req.lora !== undefined && c.maxLoras === 0) throw new EngineRequestError(`LoRA adapter '${req.lora}' requested, but LoRA is not enabled`, 'model');
    this.pending.push(...this.run(nowMs));
    const seq: Seq = {
      id: this.nextId++, req, arrivalMs: this.clock, admittedMs: NaN, firstTokenMs: NaN, blocks: [], hashes: loraHashes(req),
      numComputed: 0, numRegistered: 0, cachedTokens: 0, generated: 0, aborted: false,
    };
    this.byId.set(seq.id, seq);
    this.waiting.push(seq);
    if (!this.step) this.stepDue = true;
    return seq.id;
  }

  /** Drops a request (client went away); its blocks are released at once. False if unknown. */
  abort(id: number, nowMs: number): boolean {
    this.pending.push(...this.run(nowMs));
    const seq = this.byId.get(id);
    if (!seq) return false;
    seq.aborted = true;
    this.byId.delete(id);
    const w = this.waiting.indexOf(seq);
    if (w >= 0) this.waiting.splice(w, 1);
    const r = this.running.indexOf(seq);
    if (r >= 0) { this.running.splice(r, 1); this.kv.release(seq.blocks); seq.blocks = []; }
    return true;
  }

  /**
   * When the next event (end of the current step) happens; Infinity when idle. Asking closes
   * the batch of a step due now: requests submitted later at the same time wait for the next.
   */
  nextEventTime(): number {
    this.formStep();
    return this.step ? this.step.endMs : Infinity;
  }

  /** Runs every step that ends at or before toMs; returns the events in time order. */
  advance(toMs: number): EngineEvent[] {
    const out = this.pending.length ? this.pending : [];
    this.pending = [];
    out.push(...this.run(toMs));
    return out;
  }

  metricsSnapshot(): MetricsSnapshot {
    return {
      nowMs: this.clock,
      numRequestsRunning: this.running.length,
      numRequestsWaiting: this.waiting.length,
      kvCacheUsage: this.kv.usage(),
      numGpuBlocks: this.config.numGpuBlocks,
      blockSize: this.config.blockSize,
      freeBlocks: this.kv.numFree,
      cachedBlocks: this.kv.numCached,
      ...this.stats,
      requestSuccessByReason: { ...this.successByReason },
      evictions: this.kv.evictions,
      ttftSeconds: this.ttft.clone(),
      e2eSeconds: this.e2e.clone(),
      maxLoras: this.config.maxLoras,
      runningLoraAdapters: adaptersOf(this.running),
      waitingLoraAdapters: adaptersOf(this.waiting),
      loraLoads: this.loraLoads,
    };
  }

  /** Whether these chained hashes are cached, leading blocks only (for tests and routing studies). */
  cachedPrefixBlocks(blockHashes: readonly number[], lora?: string): number {
    const hashes = loraHashes({ blockHashes, lora });
    return this.kv.longestPrefix(hashes, hashes.length).length;
  }

  private run(toMs: number): EngineEvent[] {
    if (!(toMs >= this.clock)) {
      if (Number.isNaN(toMs)) throw new RangeError('time is NaN');
      toMs = this.clock; // time never goes back; a late caller sees the present
    }
    const events: EngineEvent[] = [];
    for (;;) {
      if (toMs > this.clock) this.formStep();
      if (!this.step || this.step.endMs > toMs) break;
      const step = this.step;
      this.step = null;
      this.clock = step.endMs;
      this.finishStep(step, events);
      this.stepDue = this.waiting.length > 0 || this.running.length > 0;
    }
    this.clock = toMs;
    return events;
  }

  /**
   * Decides the batch of the step that starts at the current time. Deferred until time moves
   * on (or nextEventTime() is asked) so that every request arriving at the same instant joins it.
   */
  private formStep(): void {
    if (this.step || !this.stepDue) return;
    this.stepDue = false;
    const loadsBefore = this.loraLoads;
    const scheduled = this.schedule();
    if (scheduled.length === 0) return; // unreachable while submit() rejects requests larger than the cache
    let prefillTokens = 0;
    for (const s of scheduled) if (s.seq.generated === 0 || s.tokens > 1) prefillTokens += s.tokens;
    const loadMs = (this.loraLoads - loadsBefore) * this.config.loraLoadMs;
    this.step = { endMs: this.clock + this.latency.stepMs(scheduled.length, prefillTokens) + loadMs, scheduled };
  }

  private schedule(): { seq: Seq; tokens: number }[] {
    const bs = this.config.blockSize;
    let budget = this.config.maxNumBatchedTokens;
    const scheduled: { seq: Seq; tokens: number }[] = [];
    // 1. running requests, oldest first
    for (let i = 0; i < this.running.length && budget > 0; i++) {
      const seq = this.running[i]!;
      const tokens = Math.min(this.numTokens(seq) - seq.numComputed, budget);
      const need = Math.ceil((seq.numComputed + tokens) / bs) - seq.blocks.length;
      while (need > this.kv.numFree) {
        const victim = this.running[this.running.length - 1]!;
        this.preempt(victim);
        if (victim === seq) break;
      }
      if (this.running[i] !== seq) break; // preempted itself: nothing else can run
      if (need > 0) seq.blocks.push(...this.kv.allocate(need));
      this.registerBlocks(seq, seq.numComputed + tokens);
      scheduled.push({ seq, tokens });
      budget -= tokens;
    }
    // 2. waiting requests, FIFO, while there are slots, budget and blocks. As vLLM's scheduler,
    // a request whose adapter would take one slot more than max_loras is passed over (it stays
    // first in line) and the next is tried.
    const active = new Set<string>();
    for (const seq of this.running) if (seq.req.lora !== undefined) active.add(seq.req.lora);
    let w = 0;
    while (w < this.waiting.length && budget > 0 && this.running.length < this.config.maxNumSeqs) {
      const seq = this.waiting[w]!;
      const lora = seq.req.lora;
      if (lora !== undefined && !active.has(lora) && active.size >= this.config.maxLoras) { w++; continue; }
      const numTokens = this.numTokens(seq);
      // vLLM always computes the last prompt token, so a hit covers at most numTokens - 1 tokens
      const hit = this.kv.longestPrefix(seq.hashes, Math.floor((numTokens - 1) / bs));
      const cachedTokens = hit.length * bs;
      const tokens = Math.min(numTokens - cachedTokens, budget);
      const need = Math.ceil((cachedTokens + tokens) / bs) - hit.length;
      if (need > this.kv.numFree - this.kv.countFree(hit)) break;
      this.waiting.splice(w, 1);
      if (lora !== undefined) { active.add(lora); this.useLoraSlot(lora, active); }
      this.kv.touch(hit);
      seq.blocks = [...hit, ...this.kv.allocate(need)];
      seq.numComputed = cachedTokens;
      seq.numRegistered = hit.length;
      if (Number.isNaN(seq.admittedMs)) {
        seq.admittedMs = this.clock;
        seq.cachedTokens = cachedTokens;
      }
      this.stats.prefixCacheQueries += numTokens;
      this.stats.prefixCacheHits += cachedTokens;
      this.registerBlocks(seq, cachedTokens + tokens);
      this.running.push(seq);
      scheduled.push({ seq, tokens });
      budget -= tokens;
    }
    return scheduled;
  }

  private numTokens(seq: Seq): number { return seq.req.promptTokens + seq.generated; }

  /** Blocks being computed this step count as cached from now on, as in vLLM's allocate_slots. */
  private registerBlocks(seq: Seq, computedAfterStep: number): void {
    const full = Math.min(Math.floor(computedAfterStep / this.config.blockSize), seq.hashes.length);
    for (let b = seq.numRegistered; b < full; b++) this.kv.register(seq.blocks[b]!, seq.hashes[b]!);
    if (full > seq.numRegistered) seq.numRegistered = full;
  }

  /** The adapter runs this step: loaded into a slot unless it is in one (evicting the least recently used adapter no running request uses). */
  private useLoraSlot(lora: string, active: Set<string>): void {
    const at = this.loraSlots.indexOf(lora);
    if (at >= 0) { this.loraSlots.splice(at, 1); this.loraSlots.push(lora); return; }
    if (this.loraSlots.length >= this.config.maxLoras) {
      const victim = this.loraSlots.findIndex((a) => !active.has(a));
      if (victim >= 0) this.loraSlots.splice(victim, 1);
    }
    this.loraSlots.push(lora);
    this.loraLoads++;
  }

  private preempt(seq: Seq): void {
    const i = this.running.indexOf(seq);
    this.running.splice(i, 1);
    this.kv.release(seq.blocks);
    seq.blocks = [];
    seq.numComputed = 0;
    seq.numRegistered = 0;
    this.waiting.unshift(seq);
    this.stats.preemptions++;
  }

  private finishStep(step: Step, events: EngineEvent[]): void {
    const now = this.clock;
    for (const { seq, tokens } of step.scheduled) {
      if (seq.aborted) continue;
      seq.numComputed += tokens;
      if (seq.numComputed < this.numTokens(seq)) continue; // chunked prefill continues next step
      seq.generated++;
      this.stats.generationTokens++;
      if (Number.isNaN(seq.firstTokenMs)) {
        seq.firstTokenMs = now;
        this.stats.promptTokens += seq.req.promptTokens;
        this.ttft.observe((now - seq.arrivalMs) / 1000);
        events.push({ kind: 'first_token', id: seq.id, atMs: now, cachedTokens: seq.cachedTokens });
      } else if (this.config.tokenEvents) {
        events.push({ kind: 'token', id: seq.id, atMs: now, index: seq.generated - 1 });
      }
      if (seq.generated >= seq.req.outputTokens) {
        this.running.splice(this.running.indexOf(seq), 1);
        this.kv.release(seq.blocks);
        seq.blocks = [];
        this.byId.delete(seq.id);
        this.stats.requestSuccess++;
        this.successByReason[seq.req.finishReason ?? 'length']++;
        this.e2e.observe((now - seq.arrivalMs) / 1000);
        events.push({
          kind: 'finished', id: seq.id, atMs: now, promptTokens: seq.req.promptTokens, cachedTokens: seq.cachedTokens,
          outputTokens: seq.generated, queueMs: seq.admittedMs - seq.arrivalMs, ttftMs: seq.firstTokenMs - seq.arrivalMs,
          e2eMs: now - seq.arrivalMs,
        });
      }
    }
  }
}

/** Distinct adapters of these requests, in order. */
function adaptersOf(seqs: readonly Seq[]): string[] {
  const out = new Set<string>();
  for (const s of seqs) if (s.req.lora !== undefined) out.add(s.req.lora);
  return [...out];
}

/** FNV-1a of a string, 32 bits. */
function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A request's block hashes as the cache keys them: the base model's as given, an adapter's
 * salted with its name (vLLM adds the LoRA id to every block hash's extra keys).
 */
function loraHashes(req: { blockHashes: readonly number[]; lora?: string }): readonly number[] {
  if (req.lora === undefined) return req.blockHashes;
  const salt = stringHash(req.lora);
  return req.blockHashes.map((h) => (Math.imul((h ^ salt) >>> 0, 0x9e3779b1) >>> 0) + 0x100000000 * (salt & 0xffff));
}
