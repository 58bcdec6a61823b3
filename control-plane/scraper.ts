// Scrapes every replica's /metrics on its own timer: one scrape at a time per
// replica (the next starts only after the previous ended), each bounded by a
// timeout, and no replica waits for another.
import { MetricExtractor, type EngineMetrics, type MetricMapping } from './engineMetrics.js';
import { MetricsConnection, type FetchResult } from './metricsClient.js';
import { LORA_METRIC, parseLoraInfo, type LoraInfo } from './loraMetrics.js';

/** Largest /metrics body read; vLLM's is ~20 KB, so this only stops a runaway endpoint. */
export const MAX_METRICS_BYTES = 4 * 1024 * 1024;

export type ScrapeFailure = 'timeout' | 'connect' | 'status' | 'too_large' | 'no_metrics';

export type ScrapeOutcome =
  | { ok: true; metrics: EngineMetrics; lora: LoraInfo | null; durationMs: number }
  | { ok: false; reason: ScrapeFailure; error: string; durationMs: number };

export interface ScraperOptions {
  intervalMs: number;
  timeoutMs: number;
  metricsPath: string;
  /** ask for the mapped metric names only (prometheus_client's `name[]` filter) */
  nameFilter: boolean;
  mappings: readonly MetricMapping[];
  onResult(address: string, outcome: ScrapeOutcome): void;
}

/**
 * The path scraped. With `nameFilter`, the mapped names go along as `name[]`
 * parameters: prometheus_client's exposition app (which vLLM mounts at
 * /metrics) then returns only those samples, ~1 KB instead of ~20 KB, which
 * saves the engine's time rendering them and ours reading them. Servers that
 * do not know the parameter ignore it and send everything, which is parsed the same.
 */
export function metricsRequestPath(opts: Pick<ScraperOptions, 'metricsPath' | 'nameFilter' | 'mappings'>): string {
  if (!opts.nameFilter) return opts.metricsPath;
  const names = [...new Set([...opts.mappings.map((m) => m.metric), LORA_METRIC])];
  const query = names.map((n) => `name[]=${encodeURIComponent(n)}`).join('&');
  return opts.metricsPath + (opts.metricsPath.includes('?') ? '&' : '?') + query;
}

/**
 * Scheduler resolution. One fleet-wide timer starts due scrapes and expires
 * slow ones, instead of two timers per scrape (10k timer operations/s at 256
 * replicas x 20/s). It sleeps until the earliest scrape due or timeout, but
 * never less than this: a large fleet wakes it at most every 5 ms (a tenth of
 * the default interval), a small one only when a scrape is due.
 */
const SCHEDULER_TICK_MS = 5;
/** A node timer can fire up to about a millisecond before performance.now() reaches its time: a scrape this close to due starts. */
const TIMER_SLACK_MS = 2;

export class ReplicaScraper {
  private readonly extractor: MetricExtractor;
  private readonly connection: MetricsConnection;
  /** performance.now() when the next scrape is due */
  nextDueMs: number;
  /** performance.now() when the running scrape started, or -1 */
  startedMs = -1;
  private stopped = false;
  private readonly onResponse = (r: FetchResult) => this.finishWith(r);

  /** `onSettled` hears when a scrape ended (its deadline moved to the next one's due time). */
  constructor(readonly address: string, private readonly opts: ScraperOptions, private readonly onSettled: (s: ReplicaScraper) => void = () => {}) {
    this.extractor = new MetricExtractor(opts.mappings);
    const sep = address.lastIndexOf(':');
    const host = address.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
    this.connection = new MetricsConnection(host, Number(address.slice(sep + 1)), metricsRequestPath(opts), address, MAX_METRICS_BYTES);
    // First scrape at a random point of the interval, so a fleet's scrapes spread out.
    this.nextDueMs = performance.now() + Math.random() * opts.intervalMs;
  }

  stop(): void {
    this.stopped = true;
    this.startedMs = -1;
    this.connection.destroy();
  }

  /**
   * When poll() next may have something to do: the next scrape's due time, and while one runs, its
   * timeout. A running scrape that has not yet passed the next one's due time wakes the scheduler
   * then too, so the timer the scheduler holds is never later than this replica's next scrape and
   * a scrape that ends seldom has to set it again.
   */
  deadlineMs(now: number): number {
    if (this.startedMs < 0) return this.nextDueMs;
    const timeout = this.startedMs + this.opts.timeoutMs;
    return this.nextDueMs > now ? Math.min(this.nextDueMs, timeout) : timeout;
  }

  /** Called by the scheduler tick: starts a due scrape, or expires one that ran out of time. */
  poll(now: number): void {
    if (this.stopped) return;
    if (this.startedMs >= 0) {
      if (now - this.startedMs >= this.opts.timeoutMs) {
        // The connection is mid-response: it cannot be reused.
        this.connection.destroy();
        this.report({ ok: false, reason: 'timeout', error: `no complete response within ${this.opts.timeoutMs} ms`, durationMs: now - this.startedMs });
      }
      return;
    }
    if (now < this.nextDueMs - TIMER_SLACK_MS) return;
    this.startedMs = now;
    // Keep the cadence: the next one is due an interval after this one was (never two at once).
    this.nextDueMs = Math.max(now, this.nextDueMs) + this.opts.intervalMs;
    this.connection.get(this.onResponse);
  }

  private finishWith(r: FetchResult): void {
    if (this.startedMs < 0 || this.stopped) return;
    const durationMs = performance.now() - this.startedMs;
    if (!r.ok) return this.report({ ok: false, reason: r.kind === 'too_large' ? 'too_large' : 'connect', error: r.error, durationMs });
    if (r.status !== 200) return this.report({ ok: false, reason: 'status', error: `HTTP ${r.status}`, durationMs });
    // latin1: metric names and numbers are ASCII, and it decodes fastest.
    const text = r.body.toString('latin1');
    const metrics = this.extractor.extract(text);
    if (metrics.running === undefined && metrics.waiting === undefined && metrics.kvUsage === undefined) {
      return this.report({ ok: false, reason: 'no_metrics', error: 'no known engine metric (running, waiting or KV usage) in the response; extend metricMappings', durationMs });
    }
    this.report({ ok: true, metrics, lora: parseLoraInfo(text), durationMs });
  }

  private report(outcome: ScrapeOutcome): void {
    this.startedMs = -1;
    if (this.stopped) return;
    this.opts.onResult(this.address, outcome);
    this.onSettled(this);
  }
}

/** The fleet's scrapers, kept in line with the current member list. */
export class Scraper {
  private readonly scrapers = new Map<string, ReplicaScraper>();
  private timer: NodeJS.Timeout | null = null;
  /** performance.now() the timer is set for. */
  private timerAtMs = Infinity;
  private readonly onTimer = () => {
    this.timer = null;
    this.timerAtMs = Infinity;
    this.tick();
  };
  private readonly onSettled = (s: ReplicaScraper) => {
    const now = performance.now();
    this.arm(s.deadlineMs(now), now);
  };

  constructor(private readonly opts: ScraperOptions) {}

  setTargets(addresses: Iterable<string>): void {
    const want = new Set(addresses);
    for (const [a, s] of this.scrapers) {
      if (!want.has(a)) { s.stop(); this.scrapers.delete(a); }
    }
    for (const a of want) {
      if (!this.scrapers.has(a)) this.scrapers.set(a, new ReplicaScraper(a, this.opts, this.onSettled));
    }
    this.tick();
  }

  get size(): number { return this.scrapers.size; }

  stop(): void {
    this.disarm();
    for (const s of this.scrapers.values()) s.stop();
    this.scrapers.clear();
  }

  /** Starts what is due, expires what ran out of time, and sleeps until the next deadline. */
  private tick(): void {
    const now = performance.now();
    let next = Infinity;
    for (const s of this.scrapers.values()) {
      s.poll(now);
      next = Math.min(next, s.deadlineMs(now));
    }
    if (next === Infinity) return this.disarm();
    this.arm(next, now);
  }

  /** Makes sure the timer fires by `at` (but not within SCHEDULER_TICK_MS of now). */
  private arm(at: number, now: number): void {
    const when = Math.max(at, now + Math.min(SCHEDULER_TICK_MS, this.opts.intervalMs));
    if (this.timer && this.timerAtMs <= when) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAtMs = when;
    this.timer = setTimeout(this.onTimer, when - now);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAtMs = Infinity;
  }
}
