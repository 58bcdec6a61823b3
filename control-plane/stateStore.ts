// The replicas the control plane knows, and the versioned scorer state built
// from them: what /v1/state serves (encoded once per version) and what
// long polls wait on.
import type { EngineMetrics } from './engineMetrics.js';
import { EncodedStateBase, METRICS_AGE_UNKNOWN, type ReplicaState, type RouterState, type StateSection, type Weights } from './stateWire.js';
import { sameLoraInfo, type LoraInfo } from './loraMetrics.js';
import { encodeContextSection } from './contextSection.js';
import { encodeLoraSection } from './loraSection.js';

/** Prefix-cache counters are kept at most this often for the hit-rate window. */
const HIT_RATE_SAMPLE_EVERY_MS = 1000;

export interface Member {
  address: string;
  ready: boolean;
  /** where it came from (pod name, static), for people */
  source?: string;
}

/** Refused connections in a row before a replica counts as down: one can be a blip, two at 50 ms apart is a dead process. */
export const UNREACHABLE_AFTER = 2;

export interface ReplicaRecord {
  address: string;
  source: string;
  discoveryReady: boolean;
  firstSeenMs: number;
  lastSuccessMs: number | null;
  lastError: string | null;
  lastErrorMs: number | null;
  consecutiveFailures: number;
  /** Connections to it were refused or reset this many times in a row (0 after any success). */
  consecutiveConnectFailures: number;
  metrics: EngineMetrics | null;
  /** LoRA adapters as of the last good scrape (null: the engine has no LoRA series) */
  lora: LoraInfo | null;
  /** Context length its /v1/models lists (modelInfo.ts); null: not known */
  maxModelLen: number | null;
  /** (time, queries, hits) samples of the prefix-cache counters, oldest first */
  hitSamples: Array<{ t: number; q: number; h: number }>;
}

/** Timers of the long polls' waits (setTimeout by default; a simulation brings its own clock's). */
export interface PollTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: PollTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface StateStoreOptions {
  stalenessMs: number;
  hitRateWindowMs: number;
  now?: () => number;
  timers?: PollTimers;
}

/**
 * A replica leaves routing when its last good scrape (or its discovery, if
 * never scraped) is older than the bound. `now` and the record's times are on
 * the store's running clock (StateStore.runningNow).
 */
export function isStale(r: ReplicaRecord, now: number, stalenessMs: number): boolean {
  return now - (r.lastSuccessMs ?? r.firstSeenMs) > stalenessMs;
}

/**
 * The longest step the running clock takes between two looks at the wall
 * clock. The store looks at every scrape and every staleness check (100 ms by
 * default, more often under a tight bound: app.ts); a longer gap means the process did not run (stopped, asleep, a GC
 * stall), and no scrape could have happened in it: counting it as metrics age
 * would take every replica out of routing on resume, until the next scrapes.
 * Half the bound leaves the other half for the first scrapes after it.
 */
export function maxClockStepMs(stalenessMs: number): number {
  return Math.min(1000, stalenessMs / 2);
}

interface Waiter {
  timer: unknown;
  done(changed: boolean): void;
}

export class StateStore {
  readonly replicas = new Map<string, ReplicaRecord>();
  private weightsValue: Weights;
  private versionValue: bigint;
  private current: RouterState;
  private encoded: EncodedStateBase;
  /** `encoded` with the features' sections: what a poller without a report gets. */
  private plain: Uint8Array;
  private dirty = false;
  private readonly waiters = new Set<Waiter>();
  private readonly wallNow: () => number;
  private readonly timers: PollTimers;
  /** The running clock (see maxClockStepMs): wall time with the pauses of the process left out. */
  private runningMs = 0;
  private lastWallMs: number;
  private readonly maxStepMs: number;
  private readonly listeners: Array<(state: RouterState) => void> = [];
  /** Hears when something a filter routes on may have changed since the last publish (the publish timer). */
  private dirtyListener: (() => void) | null = null;
  /** The current state's replica records by address. */
  private published = new Map<string, ReplicaState>();
  /** Each feature's section by tag (plugin/STATE_FORMAT.md, "Sections"); served in tag order. */
  private readonly sections = new Map<number, Uint8Array>();
  private publishedAtMs: number;

  constructor(weights: Weights, private readonly opts: StateStoreOptions) {
    this.wallNow = opts.now ?? Date.now;
    this.timers = opts.timers ?? REAL_TIMERS;
    this.lastWallMs = this.wallNow();
    this.maxStepMs = maxClockStepMs(opts.stalenessMs);
    this.weightsValue = { ...weights };
    // Versions start at the wall clock in microseconds, so a restarted control
    // plane never reuses a version a filter still holds (the filter asks
    // "after=<its version>" and must not be told "unchanged").
    this.versionValue = BigInt(Date.now()) * 1000n;
    this.current = { version: this.versionValue, weights: this.weightsValue, replicas: [] };
    this.encoded = new EncodedStateBase(this.current);
    this.plain = this.encoded.v1;
    this.publishedAtMs = this.wallNow();
  }

  /** When the current version was published (ms, the wall clock). */
  get publishedAt(): number { return this.publishedAtMs; }

  get version(): bigint { return this.versionValue; }
  get state(): RouterState { return this.current; }
  get weights(): Weights { return { ...this.weightsValue }; }
  /** The encoded bytes of the current version with its features' sections, for a poller that sends no report (serialized once per version). */
  get bytes(): Uint8Array { return this.plain; }
  /**
   * The current version's bytes with a poller's own sections (the fleet's) besides the
   * features' sections; only the sections are encoded again.
   */
  payloadFor(own: readonly StateSection[]): Uint8Array {
    const shared = this.current.sections ?? [];
    if (own.length === 0) return this.plain;
    if (shared.length === 0) return this.encoded.withSections(own);
    return this.encoded.withSections([...own, ...shared].sort((a, b) => a.tag - b.tag));
  }
  get waiting(): number { return this.waiters.size; }
  /** Something a filter routes on may have changed since the last publish. */
  get isDirty(): boolean { return this.dirty; }

  /**
   * Milliseconds the control plane has been running, as the clock staleness
   * and metrics ages are judged on: the wall clock, but a gap between two looks
   * longer than maxClockStepMs counts as that step only.
   */
  runningNow(): number {
    const wall = this.wallNow();
    const step = wall - this.lastWallMs;
    this.lastWallMs = wall;
    if (step > 0) this.runningMs += Math.min(step, this.maxStepMs);
    return this.runningMs;
  }

  /** isStale on the store's running clock. */
  isStale(r: ReplicaRecord): boolean {
    return isStale(r, this.runningNow(), this.opts.stalenessMs);
  }

  /** Age of the replica's metrics on the running clock; null when never scraped. */
  metricsAgeMs(r: ReplicaRecord): number | null {
    return r.lastSuccessMs === null ? null : this.runningNow() - r.lastSuccessMs;
  }

  onPublish(cb: (state: RouterState) => void): void { this.listeners.push(cb); }

  /** `cb` is called when the store turns dirty: a publish would look for a new version. */
  onDirty(cb: () => void): void { this.dirtyListener = cb; }

  private markDirty(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.dirtyListener?.();
  }

  /** Replaces the member list (discovery). */
  setMembers(members: Member[]): void {
    const now = this.runningNow();
    const seen = new Set<string>();
    for (const m of members) {
      if (seen.has(m.address)) continue;
      seen.add(m.address);
      const r = this.replicas.get(m.address);
      if (r) {
        if (r.discoveryReady !== m.ready) {
          r.discoveryReady = m.ready;
          // Scrapes resume for a pod that comes back; its staleness counts from now.
          if (m.ready) r.firstSeenMs = now;
        }
        r.source = m.source ?? r.source;
      } else {
        this.replicas.set(m.address, {
          address: m.address, source: m.source ?? 'static', discoveryReady: m.ready, firstSeenMs: now,
          lastSuccessMs: null, lastError: null, lastErrorMs: null, consecutiveFailures: 0, consecutiveConnectFailures: 0, metrics: null, lora: null, maxModelLen: null, hitSamples: [],
        });
      }
    }
    for (const a of [...this.replicas.keys()]) if (!seen.has(a)) this.replicas.delete(a);
    this.markDirty();
  }

  /**
   * A good scrape. The store turns dirty only when it moves what the filters route on (the
   * replica's record in the state, or LoRA adapters): a fleet whose engines sit still publishes nothing.
   */
  recordSuccess(address: string, metrics: EngineMetrics, lora: LoraInfo | null = null): void {
    const r = this.replicas.get(address);
    if (!r) return;
    const now = this.runningNow();
    const loraBefore = r.lora;
    r.lastSuccessMs = now;
    r.metrics = metrics;
    r.lora = lora;
    r.consecutiveFailures = 0;
    r.consecutiveConnectFailures = 0;
    if (metrics.prefixCacheQueries !== undefined && metrics.prefixCacheHits !== undefined) {
      const s = r.hitSamples;
      const last = s[s.length - 1];
      if (last && metrics.prefixCacheQueries < last.q) s.length = 0; // counter reset (engine restart)
      if (!last || s.length === 0 || now - last.t >= HIT_RATE_SAMPLE_EVERY_MS) {
        s.push({ t: now, q: metrics.prefixCacheQueries, h: metrics.prefixCacheHits });
      }
      while (s.length > 1 && now - s[0].t > this.opts.hitRateWindowMs) s.shift();
    }
    const was = this.published.get(address);
    if (!sameLoraInfo(loraBefore, lora) || was === undefined || !sameReplica(was, this.recordOf(r, now))) this.markDirty();
  }

  /** The replica's context length was read (null: it lists none); true when that changed what the filters get. */
  recordModelInfo(address: string, maxModelLen: number | null): boolean {
    const r = this.replicas.get(address);
    if (!r || r.maxModelLen === maxModelLen) return false;
    r.maxModelLen = maxModelLen;
    this.markDirty();
    return true;
  }

  /**
   * A failed scrape. A slow or broken /metrics only ages the metrics (the
   * replica leaves routing once stale); a replica that refuses or resets
   * connections UNREACHABLE_AFTER times in a row cannot serve requests either,
   * and leaves routing at once.
   */
  recordFailure(address: string, error: string, reason = 'other'): void {
    const r = this.replicas.get(address);
    if (!r) return;
    r.lastError = error;
    r.lastErrorMs = this.runningNow();
    r.consecutiveFailures++;
    if (reason === 'connect') {
      r.consecutiveConnectFailures++;
      // Publish at once: the filters should stop sending to it now, not at the next tick.
      if (r.consecutiveConnectFailures === UNREACHABLE_AFTER) this.publish();
    }
  }

  /**
   * Hit rate over the window: delta hits / delta queries of the prefix-cache
   * counters, else the engine's own hit-rate gauge; null when unknown or idle.
   */
  observedHitRate(r: ReplicaRecord): number | null {
    const m = r.metrics;
    if (m && m.prefixCacheQueries !== undefined && m.prefixCacheHits !== undefined && r.hitSamples.length > 0) {
      const first = r.hitSamples[0];
      const dq = m.prefixCacheQueries - first.q;
      if (dq > 0) return Math.max(0, Math.min(1, (m.prefixCacheHits - first.h) / dq));
      return null;
    }
    return m?.cacheHitRate ?? null;
  }

  /** Sets the section `tag` (owned by one feature) to `bytes`, or removes it (null), and publishes. */
  setSection(tag: number, bytes: Uint8Array | null): void {
    if (bytes === null) this.sections.delete(tag);
    else this.sections.set(tag, bytes);
    this.dirty = true;
    this.publish();
  }

  setWeights(w: Weights): void {
    this.weightsValue = { ...w };
    this.dirty = true;
    this.publish();
  }

  /** Builds the state as of now; bumps the version only if something a filter routes on changed. */
  publish(force = false): boolean {
    const now = this.runningNow();
    const replicas: ReplicaState[] = [];
    for (const r of this.replicas.values()) replicas.push(this.recordOf(r, now));
    replicas.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    // Sections set by their features (setSection), and the LoRA and context sections built from the scrapes, in tag order.
    const sections: StateSection[] = [...this.sections].map(([tag, bytes]) => ({ tag, bytes }));
    const lora = encodeLoraSection(replicas.map((s) => this.replicas.get(s.address)?.lora));
    if (lora) sections.push(lora);
    const context = encodeContextSection(replicas.map((s) => this.replicas.get(s.address)?.maxModelLen));
    if (context) sections.push(context);
    sections.sort((a, b) => a.tag - b.tag);
    this.dirty = false;
    if (!force && sameRouting(this.current, this.weightsValue, replicas) && sameSections(this.current.sections ?? [], sections)) return false;
    this.versionValue++;
    this.current = { version: this.versionValue, weights: { ...this.weightsValue }, replicas, ...(sections.length > 0 ? { sections } : {}) };
    this.published = new Map(replicas.map((x) => [x.address, x]));
    this.encoded = new EncodedStateBase(this.current);
    this.plain = this.encoded.withSections(sections);
    this.publishedAtMs = this.wallNow();
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) { this.timers.clear(w.timer); w.done(true); }
    for (const l of this.listeners) l(this.current);
    return true;
  }

  /** The replica's record in a state built at `now` (the running clock). */
  private recordOf(r: ReplicaRecord, now: number): ReplicaState {
    const m = r.metrics;
    return {
      address: r.address,
      ready: r.discoveryReady && !isStale(r, now, this.opts.stalenessMs) && r.consecutiveConnectFailures < UNREACHABLE_AFTER,
      metricsKnown: r.lastSuccessMs !== null,
      waiting: Math.max(0, Math.min(65535, Math.round(m?.waiting ?? 0))),
      running: Math.max(0, Math.min(65535, Math.round(m?.running ?? 0))),
      kvUsage: Math.fround(Math.max(0, Math.min(1, m?.kvUsage ?? 0))),
      kvCapacityTokens: Math.max(0, Math.min(0xffffffff, Math.round(m?.kvCapacityTokens ?? 0))),
      metricsAgeMs: r.lastSuccessMs === null ? METRICS_AGE_UNKNOWN : Math.min(0xfffffffe, now - r.lastSuccessMs),
    };
  }

  /** Publishes when something changed since the last publish, or when a replica may have turned stale. */
  tick(checkStaleness: boolean): void {
    this.runningNow();
    if (this.dirty || checkStaleness) this.publish();
  }

  /**
   * Long poll: calls `done(true)` as soon as the version differs from `after`
   * (at once if it already does), or `done(false)` after `waitMs`.
   * Returns a cancel function (client went away).
   */
  waitForChange(after: bigint, waitMs: number, done: (changed: boolean) => void): () => void {
    if (this.versionValue !== after) { done(true); return () => {}; }
    if (waitMs <= 0) { done(false); return () => {}; }
    const w: Waiter = {
      timer: this.timers.set(() => { this.waiters.delete(w); done(false); }, waitMs),
      done,
    };
    this.waiters.add(w);
    return () => { if (this.waiters.delete(w)) this.timers.clear(w.timer); };
  }

  /** Answers every waiting poll (shutdown). */
  releaseWaiters(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) { this.timers.clear(w.timer); w.done(false); }
  }
}

function sameSections(a: readonly StateSection[], b: readonly StateSection[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!.bytes, y = b[i]!.bytes;
    if (a[i]!.tag !== b[i]!.tag || x.length !== y.length || !x.every((v, j) => v === y[j])) return false;
  }
  return true;
}

function sameRouting(prev: RouterState, weights: Weights, replicas: ReplicaState[]): boolean {
  const pw = prev.weights;
  if (pw.prefix !== weights.prefix || pw.queue !== weights.queue || pw.kvCache !== weights.kvCache || pw.inflight !== weights.inflight) return false;
  if (prev.replicas.length !== replicas.length) return false;
  for (let i = 0; i < replicas.length; i++) if (!sameReplica(prev.replicas[i]!, replicas[i]!)) return false;
  return true;
}

/** Two records route alike. metricsAgeMs is left out on purpose: it changes every millisecond; staleness shows up as `ready`. */
function sameReplica(a: ReplicaState, b: ReplicaState): boolean {
  return a.address === b.address && a.ready === b.ready && a.metricsKnown === b.metricsKnown && a.waiting === b.waiting &&
    a.running === b.running && a.kvUsage === b.kvUsage && a.kvCapacityTokens === b.kvCapacityTokens;
}
