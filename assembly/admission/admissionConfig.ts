// What admission does when every replica is saturated (plugin/CONFIG.md,
// `admission`): how many requests a worker VM holds, for how long, and the
// priority each request has.

/** Held requests per worker VM at most: bounds memory and what a burst can queue. */
export const DEFAULT_MAX_HELD: i32 = 256;
/**
 * How long a request of priority 0 is held: a second is about the time a
 * saturated T4 replica takes to finish a few short requests and make room,
 * and short enough that a client's own timeout does not fire first.
 */
export const DEFAULT_WAIT_MS: u32 = 1000;
/** Requests of priority above 0 wait this long: they are the last to be refused. */
export const DEFAULT_HIGH_PRIORITY_WAIT_MS: u32 = 4000;
/** What `retry-after` tells a refused client, in seconds. */
export const DEFAULT_RETRY_AFTER_S: u32 = 1;
/** The inference extension's header naming the request's objective, whose priority it takes. */
export const DEFAULT_OBJECTIVE_HEADER = "x-gateway-inference-objective";

@final
export class AdmissionConfig {
  /** Off unless configured: refusing requests is a policy the operator turns on, never a side effect of an upgrade. */
  enabled: bool = false;
  maxHeld: i32 = DEFAULT_MAX_HELD;
  waitMs: u32 = DEFAULT_WAIT_MS;
  highPriorityWaitMs: u32 = DEFAULT_HIGH_PRIORITY_WAIT_MS;
  retryAfterS: u32 = DEFAULT_RETRY_AFTER_S;
  /** Lower case. */
  objectiveHeader: string = DEFAULT_OBJECTIVE_HEADER;
  /** Objective names (UTF-8, as the header carries them) and their priorities; any other request has priority 0. */
  objectiveNames: Array<ArrayBuffer> = [];
  objectivePriorities: Array<i32> = [];

  /** How long a request of `priority` may be held, in ns; 0: refused at once (below 0, the inference extension's "sheddable"). */
  waitNs(priority: i32): u64 {
    if (priority < 0) return 0;
    return <u64>(priority > 0 ? this.highPriorityWaitMs : this.waitMs) * 1000000;
  }
}
