// How much of the traffic the prefix a request finds held draws, for the work
// model's copy charge. Per checkpoint hash, a moving count of the requests
// whose deepest held prefix ended there, against the moving count of all
// requests this VM routed: a prefix that draws a share s of the requests keeps
// about s x n of n replicas busy. One system prompt for all draws every
// request and needs every replica; one of 32 groups' prefixes, or a
// conversation's history, needs one. Direct-mapped: a clash restarts the
// count of the prefix that took the cell, which only delays its spreading.
import { mix64 } from "./hash";

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
    const w = this.weight;
    this.total += w;
    if (!held) return 0;
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
