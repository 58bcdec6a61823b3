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
// (prefixLocator.ts). A prefix first seen after other requests is read from
// the requests since its first (readShare), so a system prompt every request
// starts sending reads 1 within a few of them, not as the half-life's older
// requests fade. Direct-mapped: a clash restarts the count of the prefix that
// took the cell, which only delays its spreading.
//
// With other worker VMs routing for the gateway, each sees a fraction of its
// requests: counted alone, a VM of 16 would read a share from a sixteenth of
// the evidence. SharedDemand keeps the counts in proxy-wasm shared data
// instead, one key per bucket ("prefix_router.demand." + 4 hex digits, the
// top 16 bits of the checkpoint hash; 2^16 keys at most), each up to
// BUCKET_ENTRIES entries, little-endian:
//   [u64: the checkpoint hash's low 48 bits (the bucket is its top 16), then
//    the clock's low 16 bits at the prefix's first request]
//   [f32 count as of its stamp][u32 stamp: the gateway's request clock]
// Its clock is the gateway's count of routed requests, from the rows of
// prefix_router.inflight that every request reads anyway (sharedKeys.ts), not
// time: the half-life stays 256 of the gateway's requests whatever their rate,
// as with one VM, and the moving total is then a function of the clock alone,
// so no hot total key is written. A request that finds a prefix held reads
// and CAS-writes that prefix's bucket; a write lost to other VMs is evidence
// lost. A VM alone keeps PrefixDemand.
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
/**
 * Requests since a prefix's first from which its share is read from them
 * alone (readShare): with fewer, all of them is as likely a third's share
 * at 3 replicas ((1/3)^3 = 3.7%).
 */
const YOUNG_MIN_REQUESTS: f64 = 4;
/** Requests after which a prefix's first no longer tells its share (GROWTH^-4096 = 2^-16). */
const YOUNG_SPAN: u32 = 4096;
/** A shared entry's first word: the hash's low ID_BITS (its bucket is the top 16), then the gateway's clock at the prefix's first request, mod 2^16. */
const ID_BITS: u64 = 48;
const ID_MASK: u64 = (<u64>1 << ID_BITS) - 1;
const FIRST_MASK: u32 = 0xffff;

@final
export class PrefixDemand {
  private readonly keys: StaticArray<u64> = new StaticArray<u64>(1 << DEMAND_BITS);
  private readonly counts: StaticArray<f64> = new StaticArray<f64>(1 << DEMAND_BITS);
  /** Per cell, the request clock at its prefix's first request. */
  private readonly firsts: StaticArray<u32> = new StaticArray<u32>(1 << DEMAND_BITS);
  /** The weight of the request being counted. */
  private weight: f64 = 1;
  private total: f64 = 0;
  /** Requests observed (mod 2^32). */
  private clock: u32 = 0;
  /** The requests behind the share countAt() or observe() last returned (readShare). */
  evidence: f64 = 0;

  /** The moving count of all requests observed. */
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
    this.clock++;
    this.evidence = this.requests;
    return held ? this.countAt(key) : 0;
  }

  /** Counts the request being observed at prefix `key` (observe() at its deepest held one, the router at its prompt start too) and returns that prefix's share. */
  countAt(key: u64): f64 {
    const w = this.weight;
    const cell = <i32>(mix64(key) & DEMAND_MASK);
    let count = w;
    if (unchecked(this.keys[cell]) == key) count += unchecked(this.counts[cell]);
    else {
      unchecked(this.keys[cell] = key);
      unchecked(this.firsts[cell] = this.clock);
    }
    unchecked(this.counts[cell] = count);
    const share = readShare(count / w, this.clock - unchecked(this.firsts[cell]), this.requests);
    this.evidence = shareEvidence;
    return share;
  }

  private rescale(): void {
    this.weight *= RESCALE;
    this.total *= RESCALE;
    for (let i = 0; i < this.counts.length; i++) unchecked(this.counts[i] = unchecked(this.counts[i]) * RESCALE);
  }
}

/** The requests behind readShare()'s last answer. */
let shareEvidence: f64 = 0;

/**
 * A prefix's share: `count` of the `requests` counted (both as weighed now,
 * this request 1), or, where it was first counted `age` requests ago after
 * others, its share of the requests since, its first not counted. A system
 * prompt that begins drawing every request on a busy gateway so reads nearly
 * 1 within a few of them, not as the half-life's older requests fade; its
 * first request is what made it a prefix to count. Read from so few requests,
 * the share is counted half a request short (a continuity correction): the
 * work model's normal test would otherwise pass 2 of 8 against a sixteenth's
 * share 8.5% of the time, not the 2.3% its two deviations mean, and copy
 * groups' prefixes on chance (with 32 groups on 4 gateways, sp-32x32's TTFT
 * p95 at 70% went from 191 to 299 ms).
 */
function readShare(count: f64, age: u32, requests: f64): f64 {
  const first = decay(age < YOUNG_SPAN ? age : YOUNG_SPAN);
  // The requests since: the sum of GROWTH^-k for k < age, a little under age (4 of them weigh 3.98).
  const since = MAX_REQUESTS * (1 - first);
  if (since > YOUNG_MIN_REQUESTS - 0.5 && since < requests - 1) {
    shareEvidence = since;
    const s = (count - first - 0.5) / since;
    return s > 0 ? (s < 1 ? s : 1.0) : 0.0;
  }
  shareEvidence = requests;
  return count / requests;
}

/** PrefixDemand's counts, shared by the gateway's worker VMs (see the header). */
@final
export class SharedDemand extends SharedBucket {
  private clock: u32 = 0;
  /** The gateway's moving count of requests at the last observe(). */
  requests: f64 = 0;
  /** The requests behind the share observe() last returned (readShare). */
  evidence: f64 = 0;

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
    this.evidence = requests;
    if (!held) return 0;
    const v = this.entries;
    const n = this.read(key);
    const id = key & ID_MASK;
    let count: f64 = 1;
    // Requests since the prefix's first: 0, its first is this one.
    let age: u32 = 0;
    // Its own entry, else a free one, else the one counted longest ago.
    let at = n < BUCKET_ENTRIES ? n : 0;
    let oldest: u32 = 0;
    for (let e = 0; e < n; e++) {
      const p = v + <usize>(e * ENTRY_BYTES);
      const stamped = now - load<u32>(p, 12);
      const word = load<u64>(p);
      if ((word & ID_MASK) == id) {
        // Any content reads safely: not a positive number, none; a stamp ahead of the clock, not decayed yet.
        const c = <f64>load<f32>(p, 8);
        if (c > 0) count += c * decay(<i32>stamped > 0 ? stamped : 0);
        age = (now - <u32>(word >> ID_BITS)) & FIRST_MASK;
        at = e;
        break;
      }
      if (n == BUCKET_ENTRIES && stamped > oldest) { oldest = stamped; at = e; }
    }
    // No share above 1, nor a count above the requests kept (a malformed one's, or a clock's skew between VMs).
    if (!(count < requests)) count = requests;
    // Past YOUNG_SPAN its first request no longer tells (its weight is gone); kept there, the clock's 16 bits never wrap on it.
    if (age > YOUNG_SPAN) age = YOUNG_SPAN;
    if (n >= 0) {
      const p = v + <usize>(at * ENTRY_BYTES);
      store<u64>(p, id | (<u64>((now - age) & FIRST_MASK) << ID_BITS));
      store<f32>(p, <f32>count, 8);
      store<u32>(p, now, 12);
      // One write: lost to another VM's, it is one request's evidence lost.
      this.write(at < n ? n : n + 1);
    }
    const share = readShare(count, age, requests);
    this.evidence = shareEvidence;
    return share;
  }
}

/** GROWTH^-d, 2^(-d/256), by squaring (the module has no pow); past 2^18 the factors underflow to 0. */
function decay(d: u32): f64 {
  let r: f64 = 1;
  for (let f: f64 = 1 / GROWTH; d != 0; d >>= 1, f *= f) if (d & 1) r *= f;
  return r;
}
