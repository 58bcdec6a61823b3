// Where the host reads time: the wall clock (gateway) or a clock a driver moves (simulation).

export interface Clock {
  /** Nanoseconds since the Unix epoch (Envoy answers proxy_get_current_time_nanoseconds from its system clock). */
  nowNs(): bigint;
  /**
   * Optional: the same instant as a double, for clocks that compute it as one (no BigInt per
   * read on the host's hot path). It must equal Number(nowNs()) exactly.
   */
  nowNsNumber?(): number;
  /** True when time only moves when a driver moves it; ticks then fire only from host.advanceTo / host.runDueTicks. */
  readonly manual: boolean;
}

/** performance.now bound once: called on every clock read. */
const perfNow = performance.now.bind(performance);

export class RealClock implements Clock {
  readonly manual = false;
  /** performance.timeOrigin is fixed for the process; read once (its getter is not free). */
  private readonly originMs = performance.timeOrigin;
  nowNs(): bigint {
    return BigInt(this.nowNsNumber());
  }
  nowNsNumber(): number {
    // timeOrigin + now() keeps sub-millisecond resolution that Date.now() lacks. The product is
    // past 2^53, so the double is an integer already; round() only matters for small clocks.
    return Math.round((this.originMs + perfNow()) * 1e6);
  }
}

/** A clock that stands still until advanced; never goes backwards. */
export class ManualClock implements Clock {
  readonly manual = true;
  private now: bigint;
  constructor(startNs: bigint = 0n) {
    this.now = startNs;
  }
  nowNs(): bigint {
    return this.now;
  }
  set(ns: bigint): void {
    if (ns < this.now) throw new Error(`ManualClock cannot go backwards (now ${this.now} ns, asked ${ns} ns)`);
    this.now = ns;
  }
  advanceBy(ns: bigint): void {
    this.set(this.now + ns);
  }
}
