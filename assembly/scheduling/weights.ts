/**
 * Scorer weights. `work` (predicted time to first token, lower is better)
 * decides by default: a replica predicted 1% slower loses 10 points, more
 * than the other four defaults (the seed deployment's prefix 3, queue 1,
 * KV 1, plus in-flight 1) together, which then settle near-ties. Set `work`
 * to 0 for the weighted routing of those four alone.
 */
@final
export class Weights {
  prefix: f64 = 3;
  queue: f64 = 1;
  kvCache: f64 = 1;
  // In-flight load is the only load signal that is current between scrapes;
  // weighted like queue depth so neither dominates the other.
  inflight: f64 = 1;
  work: f64 = 1000;

  copyFrom(o: Weights): void {
    this.prefix = o.prefix;
    this.queue = o.queue;
    this.kvCache = o.kvCache;
    this.inflight = o.inflight;
    this.work = o.work;
  }
}
