// Scrapes every replica's /metrics on its own timer: one scrape at a time per
// replica (the next starts only after the previous ended), each bounded by a
// timeout, and no replica waits for another.
import { MetricExtractor, type EngineMetrics, type MetricMapping } from './engineMetrics.js';
import { MetricsConnection } from './metricsClient.js';

/** Largest /metrics body read; vLLM's is ~20 KB, so this only stops a runaway endpoint. */
export const MAX_METRICS_BYTES = 4 * 1024 * 1024;

export type ScrapeFailure = 'timeout' | 'connect' | 'status' | 'too_large' | 'no_metrics';

export type ScrapeOutcome =
  | { ok: true; metrics: EngineMetrics; durationMs: number }
  | { ok: false; reason: ScrapeFailure; error: string; durationMs: number };

export interface ScraperOptions {
  intervalMs: number;
  timeoutMs: number;
  metricsPath: string;
  mappings: readonly MetricMapping[];
  onResult(address: string, outcome: ScrapeOutcome): void;
}

export class ReplicaScraper {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly extractor: MetricExtractor;
  private readonly connection: MetricsConnection;

  constructor(readonly address: string, private readonly opts: ScraperOptions) {
    this.extractor = new MetricExtractor(opts.mappings);
    const sep = address.lastIndexOf(':');
    const host = address.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
    this.connection = new MetricsConnection(host, Number(address.slice(sep + 1)), opts.metricsPath, address, MAX_METRICS_BYTES);
  }

  /** First scrape at a random point of the interval, so a fleet's scrapes spread out. */
  start(): void {
    this.schedule(Math.random() * this.opts.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.connection.destroy();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(this.scrape, delayMs);
  }

  private readonly scrape = (): void => {
    this.timer = null;
    const started = performance.now();
    let done = false;
    const finish = (outcome: ScrapeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (this.stopped) return;
      this.opts.onResult(this.address, outcome);
      // Keep the cadence: a scrape that took part of the interval shortens the wait.
      this.schedule(Math.max(0, this.opts.intervalMs - (performance.now() - started)));
    };
    const fail = (reason: ScrapeFailure, error: string) =>
      finish({ ok: false, reason, error, durationMs: performance.now() - started });
    const deadline = setTimeout(() => {
      // The connection is mid-response: it cannot be reused.
      this.connection.destroy();
      fail('timeout', `no complete response within ${this.opts.timeoutMs} ms`);
    }, this.opts.timeoutMs);
    this.connection.get((r) => {
      if (!r.ok) return fail(r.kind === 'too_large' ? 'too_large' : 'connect', r.error);
      if (r.status !== 200) return fail('status', `HTTP ${r.status}`);
      // latin1: metric names and numbers are ASCII, and it decodes fastest.
      const metrics = this.extractor.extract(r.body.toString('latin1'));
      if (metrics.running === undefined && metrics.waiting === undefined && metrics.kvUsage === undefined) {
        return fail('no_metrics', 'no known engine metric (running, waiting or KV usage) in the response; extend metricMappings');
      }
      finish({ ok: true, metrics, durationMs: performance.now() - started });
    });
  };
}

/** The fleet's scrapers, kept in line with the current member list. */
export class Scraper {
  private readonly scrapers = new Map<string, ReplicaScraper>();

  constructor(private readonly opts: ScraperOptions) {}

  setTargets(addresses: Iterable<string>): void {
    const want = new Set(addresses);
    for (const [a, s] of this.scrapers) {
      if (!want.has(a)) { s.stop(); this.scrapers.delete(a); }
    }
    for (const a of want) {
      if (this.scrapers.has(a)) continue;
      const s = new ReplicaScraper(a, this.opts);
      this.scrapers.set(a, s);
      s.start();
    }
  }

  get size(): number { return this.scrapers.size; }

  stop(): void {
    for (const s of this.scrapers.values()) s.stop();
    this.scrapers.clear();
  }
}
