// Scrapes every replica's /metrics on its own timer: one scrape at a time per
// replica (the next starts only after the previous ended), each bounded by a
// timeout, and no replica waits for another.
import http from 'node:http';
import { MetricExtractor, type EngineMetrics, type MetricMapping } from './engineMetrics.js';

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
  private request: http.ClientRequest | null = null;
  private stopped = false;
  private readonly extractor: MetricExtractor;
  private readonly host: string;
  private readonly port: number;

  constructor(readonly address: string, private readonly opts: ScraperOptions, private readonly agent: http.Agent) {
    this.extractor = new MetricExtractor(opts.mappings);
    const sep = address.lastIndexOf(':');
    this.host = address.slice(0, sep).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(address.slice(sep + 1));
  }

  /** First scrape at a random point of the interval, so a fleet's scrapes spread out. */
  start(): void {
    this.schedule(Math.random() * this.opts.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.request?.destroy();
    this.request = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.scrape(), delayMs);
  }

  private scrape(): void {
    this.timer = null;
    const started = performance.now();
    let done = false;
    const finish = (outcome: ScrapeOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      this.request = null;
      if (this.stopped) return;
      this.opts.onResult(this.address, outcome);
      // Keep the cadence: a scrape that took part of the interval shortens the wait.
      this.schedule(Math.max(0, this.opts.intervalMs - (performance.now() - started)));
    };
    const fail = (reason: ScrapeFailure, error: string) =>
      finish({ ok: false, reason, error, durationMs: performance.now() - started });
    const deadline = setTimeout(() => {
      fail('timeout', `no complete response within ${this.opts.timeoutMs} ms`);
      req.destroy();
    }, this.opts.timeoutMs);
    const req = http.request({
      host: this.host, port: this.port, path: this.opts.metricsPath, method: 'GET', agent: this.agent,
      headers: { accept: 'text/plain' },
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        fail('status', `HTTP ${res.statusCode}`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_METRICS_BYTES) {
          fail('too_large', `body larger than ${MAX_METRICS_BYTES} bytes`);
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        if (done) return;
        // latin1: metric names and numbers are ASCII, and it decodes fastest.
        const text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)).toString('latin1');
        const metrics = this.extractor.extract(text);
        if (metrics.running === undefined && metrics.waiting === undefined && metrics.kvUsage === undefined) {
          fail('no_metrics', 'no known engine metric (running, waiting or KV usage) in the response; extend metricMappings');
          return;
        }
        finish({ ok: true, metrics, durationMs: performance.now() - started });
      });
      res.on('error', (e) => fail('connect', e.message));
    });
    req.on('error', (e) => fail('connect', e.message));
    req.end();
    this.request = req;
  }
}

/** The fleet's scrapers, kept in line with the current member list. */
export class Scraper {
  private readonly scrapers = new Map<string, ReplicaScraper>();
  // Keep-alive: a fresh TCP connection per scrape would cost more than the scrape.
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, scheduling: 'lifo' });

  constructor(private readonly opts: ScraperOptions) {}

  setTargets(addresses: Iterable<string>): void {
    const want = new Set(addresses);
    for (const [a, s] of this.scrapers) {
      if (!want.has(a)) { s.stop(); this.scrapers.delete(a); }
    }
    for (const a of want) {
      if (this.scrapers.has(a)) continue;
      const s = new ReplicaScraper(a, this.opts, this.agent);
      this.scrapers.set(a, s);
      s.start();
    }
  }

  get size(): number { return this.scrapers.size; }

  stop(): void {
    for (const s of this.scrapers.values()) s.stop();
    this.scrapers.clear();
    this.agent.destroy();
  }
}
