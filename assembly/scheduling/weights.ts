/** Scorer weights. Defaults are the seed deployment's (prefix 3, queue 1, KV 1) plus in-flight 1. */
@final
export class Weights {
  prefix: f64 = 3;
  queue: f64 = 1;
  kvCache: f64 = 1;
  // In-flight load is the only load signal that is current between scrapes;
  // weighted like queue depth so neither dominates the other.
  inflight: f64 = 1;

  copyFrom(o: Weights): void {
    this.prefix = o.prefix;
    this.queue = o.queue;
    this.kvCache = o.kvCache;
    this.inflight = o.inflight;
  }
}
