// When a replica is saturated: past the bound on requests waiting in its
// engine queue, or on KV-cache use. Admission holds requests only when every
// candidate is saturated (the scheduling cycle's admit point, admits());
// session affinity moves a session off a saturated replica. Both read the
// marks of the last mark().
import { Candidates } from "../scheduling/candidates";
import { MAX_SLOTS } from "../prefix/prefixIndex";

/**
 * The inference extension's saturation detector defaults (queue depth 5, KV
 * use 0.8): a few waiting requests is a batch filling up, more is a queue
 * that only adds latency; past 80% KV, vLLM starts preempting running
 * requests to admit new ones.
 */
export const DEFAULT_SATURATION_WAITING: f64 = 5;
export const DEFAULT_SATURATION_KV_USAGE: f64 = 0.8;

@final
export class SaturationBound {
  waiting: f64 = DEFAULT_SATURATION_WAITING;
  kvUsage: f64 = DEFAULT_SATURATION_KV_USAGE;
}

@final
export class Saturation {
  private readonly bound: SaturationBound;
  /** Per candidate, from the last mark(). */
  readonly saturated: StaticArray<bool> = new StaticArray<bool>(MAX_SLOTS);
  /** Candidates not saturated, from the last mark(). */
  unsaturated: i32 = 0;
  /**
   * Requests the candidates with room can take before they reach the bound
   * (at least one each), from the last mark(): how many held requests a tick releases.
   */
  room: f64 = 0;

  constructor(bound: SaturationBound) {
    this.bound = bound;
  }

  /**
   * The cycle's admit point: marks the candidates, and false when none has
   * room and `holding` (admission is on and the request is an inference
   * request): admission then holds or refuses it.
   */
  @inline admits(c: Candidates, withMetrics: bool, holding: bool): bool {
    return this.mark(c, withMetrics) != 0 || !holding;
  }

  /**
   * Marks each candidate. Without trusted metrics nothing is saturated: the
   * filter cannot tell, and it never refuses a request it cannot show is
   * past the bound. Returns the candidates with room.
   */
  mark(c: Candidates, withMetrics: bool): i32 {
    const b = this.bound;
    let free = 0;
    let room: f64 = 0;
    for (let k = 0; k < c.n; k++) {
      const waiting = unchecked(c.waiting[k]);
      const full = withMetrics && (waiting >= b.waiting || unchecked(c.kvUsage[k]) >= b.kvUsage);
      unchecked(this.saturated[k] = full);
      if (full) continue;
      free++;
      const left = Math.ceil(b.waiting - (withMetrics ? waiting : 0));
      room += left > 1 ? left : 1;
    }
    this.unsaturated = free;
    this.room = room;
    return free;
  }
}
