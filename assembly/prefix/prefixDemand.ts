// How much of the traffic the prefix a request finds held draws, for the work
// model's copy charge. Per checkpoint hash, a moving count of the requests
// whose deepest held prefix ended there, against the moving count of all
// requests this VM routed: a prefix that draws a share s of the requests keeps
// about s x n of n replicas busy. One system prompt for all draws every
// request and needs every replica; one of 32 groups' prefixes, or a
// conversation's history, needs one. A request whose prompt goes on past the
// prompt start it shares with others (a conversation's later turn, held on
// its own replica) counts at its prompt start too: the start's share is then
// that of every request beginning with it, which is what a new
// conversation's first turn, finding only the start held, reads
// (prefixLocator.ts). Direct-mapped: a clash restarts the count of the
// prefix that took the cell, which only delays its spreading.
//
// With other worker VMs routing for the gateway, each sees a fraction of its
// requests: counted alone, a VM of 16 would read a share from a sixteenth of
// the evidence. SharedDemand keeps the counts in proxy-wasm shared data
// instead, one key per bucket ("prefix_router.demand." + 4 hex digits, the
// top 16 bits of the checkpoint hash; 2^16 keys at most), each up to
// BUCKET_ENTRIES entries, little-endian:
//   [u64 checkpoint hash][f32 count as of its stamp][u32 stamp: the gateway's request clock]
// Its clock is the gateway's count of routed requests, from the rows of
// prefix_router.inflight that every request reads anyway (sharedKeys.ts), not
// time: the half-life stays 256 of the gateway's requests whatever their rate,
// as with one VM, and the moving total is then a function of the clock alone,
// so no hot total key is written. A request that finds a prefix held reads
// and CAS-writes that prefix's bucket; a write lost to other VMs is evidence
// lost. A VM alone keeps PrefixDemand, exactly as before.
import { mix64 } from "./hash";
import { BUCKET_ENTRIES, ENTRY_BYTES, SharedBucket } from "./sharedBucket";

const DEMAND_BITS: i32 = 12;
const DEMAND_MASK: u64 = (1 << DEMAND_BITS) - 1;
/**
 * Requests over which a count halves: long enough to tell a share of 1/32
 * (eight requests of a group within the half-life), short enough that a
 * system prompt that stops being sent loses its credit within a few hundred.
 * Each request weighs GROWTH times the one before (2^(1/256)), which decays
 * every older count alike without touching it; weights are scaled down by
 * RESCALE before they leave f64's range.
 */
const GROWTH: f64 = 1.0027112750502025;
const RESCALE: f64 = 5.421010862427522e-20; // 2^-64
/** The moving count of requests at length, 1 / (1 - 1/GROWTH): about 370. */
const MAX_REQUESTS: f64 = 1 / (1 - 1 / GROWTH);

@final
export class PrefixDemand {
  private readonly keys: StaticArray<u64> = new StaticArray<u64>(1 << DEMAND_BITS);
  private readonly counts: StaticArray<f64> = new StaticArray<f64>(1 << DEMAND_BITS);
  /** The weight of the request being counted. */
  private weight: f64 = 1;
  private total: f64 = 0;

  /** The moving count of all requests observed, the evidence behind a share (as many requests as a share's denominator). */
  @inline get requests(): f64 {
    return this.total / this.weight;
  }

  /**
   * Counts a request whose deepest held prefix ends at checkpoint hash `key`
   * (`held`: some candidate holds part of the prompt; otherwise it counts only
   * in the total) and returns that prefix's share of the recent requests, 0..1.
   */
  observe(key: u64, held: bool): f64 {
    this.weight *= GROWTH;
    if (this.weight > 1 / RESCALE) this.rescale();
    this.total += this.weight;
    return held ? this.countAt(key) : 0;
  }

  /** Counts the request being observed at prefix `key` (observe() at its deepest held one, the router at its prompt start too) and returns that prefix's share. */
  countAt(key: u64): f64 {
    const w = this.weight;
    const cell = <i32>(mix64(key) & DEMAND_MASK);
    const count = unchecked(this.keys[cell]) == key ? unchecked(this.counts[cell]) + w : w;
    unchecked(this.keys[cell] = key);
    unchecked(this.counts[cell] = count);
    return count / this.total;
  }

  private rescale(): void {
    this.weight *= RESCALE;
    this.total *= RESCALE;
    for (let i = 0; i < this.counts.length; i++) unchecked(this.counts[i] = unchecked(this.counts[i]) * RESCALE);
  }
}

/** PrefixDemand's counts, shared by the gateway's worker VMs (see the header). */
@final
export class SharedDemand extends SharedBucket {
  private clock: u32 = 0;
  /** The gateway's moving count of requests at the last observe(), the evidence behind a share. */
  requests: f64 = 0;

  constructor() {
    super("prefix_router.demand.0000");
  }

  /**
   * PrefixDemand.observe for the gateway, whose worker VMs have routed
   * `routed` requests (mod 2^32): counts this one in the shared bucket of
   * `key` and returns the gateway's share of the recent requests, 0..1.
   */
  observe(key: u64, held: bool, routed: u32): f64 {
    // The clock never runs back (the row of a VM gone leaves the sum); this request is its next tick.
    if (<i32>(routed - this.clock) > 0) this.clock = routed;
    const now = this.clock + 1;
    // The sum of GROWTH^-k for k < now, 1 at the first request, MAX_REQUESTS at length.
    const requests = MAX_REQUESTS - decay(this.clock) * (MAX_REQUESTS - 1);
    this.requests = requests;
    if (!held) return 0;
    const v = this.entries;
    const n = this.read(key);
    let count: f64 = 1;
    // Its own entry, else a free one, else the one counted longest ago.
    let at = n < BUCKET_ENTRIES ? n : 0;
    let oldest: u32 = 0;
    for (let e = 0; e < n; e++) {
      const p = v + <usize>(e * ENTRY_BYTES);
      const age = now - load<u32>(p, 12);
      if (load<u64>(p) == key) {
        // Any content reads safely: not a positive number, none; a stamp ahead of the clock, not decayed yet.
        const c = <f64>load<f32>(p, 8);
        if (c > 0) count += c * decay(<i32>age > 0 ? age : 0);
        at = e;
        break;
      }
      if (n == BUCKET_ENTRIES && age > oldest) { oldest = age; at = e; }
    }
    // No share above 1, nor a count above the requests kept (a malformed one's, or a clock's skew between VMs).
    if (!(count < requests)) count = requests;
    if (n >= 0) {
      const p = v + <usize>(at * ENTRY_BYTES);
      store<u64>(p, key);
      store<f32>(p, <f32>count, 8);
      store<u32>(p, now, 12);
      // One write: lost to another VM's, it is one request's evidence lost.
      this.write(at < n ? n : n + 1);
    }
    return count / requests;
  }
}

/** GROWTH^-d, 2^(-d/256), by squaring (the module has no pow); past 2^18 the factors underflow to 0. */
function decay(d: u32): f64 {
  let r: f64 = 1;
  for (let f: f64 = 1 / GROWTH; d != 0; d >>= 1, f *= f) if (d & 1) r *= f;
  return r;
}
