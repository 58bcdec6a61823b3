// How much of a replica's cache is prompt content that requests come back
// for, for the work model's copy charge. A warmed vLLM cache is full and
// evicts its least recently used blocks: where most of it is prompt starts in
// reuse, a copy evicts one of them; where it is mostly unique tails (one hot
// system prompt among many questions and answers), it evicts a tail nobody
// asks for again. Per replica, a clock of the tokens this VM's requests wrote
// into its cache (new prompt tokens and output) and, per prompt start, the
// clock when it was last sent there. A request that finds `held` tokens of
// its prompt there, its start last sent d written tokens ago, shows `held`
// tokens kept in use for d (at most the cache, C): over a stretch of W
// written tokens each such prefix comes back W / d times, so
// sum(held x d) / W is the tokens the replica holds in reuse, and over C
// their share of its cache. Each VM (or gateway) sees a share of the
// requests and of the written tokens, so the estimate is about the whole
// replica's. Two things it knows before requests come back: a cache never
// yet filled evicts nothing (the estimate scales with the share of the cache
// the fleet's worker VMs have written, from the gateway blob and the other
// gateways' counts in the state: one VM alone sees a fraction of the
// writes), and a filled one with no evidence yet is read as in reuse (the
// sums start from a full share): otherwise every copy made while a scarce
// cache fills, before any prefix returns, would look free.
import { mix64 } from "./hash";
import { MAX_SLOTS } from "./prefixIndex";

/** (prompt start, replica) last-sent clocks, direct-mapped: a clash loses one sample. */
const SEEN_BITS: i32 = 12;
/**
 * A share this high counts as all (estimate() is 1): the share understates
 * how often a copy evicts content in reuse where that content is spread over
 * many replicas. Chosen with bench:routing (bench/routing/README.md).
 */
const FULL_SHARE: f64 = 0.25;
/** Weight of each request in a replica's moving sums. */
const ALPHA: f64 = 1.0 / 32;
/**
 * Written tokens per request the moving sums start from, at a full share:
 * until requests come back to a replica, nothing tells its cache is mostly
 * unique tails, and a copy made then (every prefix is cold at the start) is
 * charged in full. It weighs as one request of this size and fades with the
 * moving sums.
 */
const PRIOR_TOKENS: f64 = 2048;

@final
export class CacheReuse {
  private readonly written: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Moving sums of held x d / C and of written tokens per request. */
  private readonly kept: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  private readonly wrote: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  private readonly keys: StaticArray<u64> = new StaticArray<u64>(1 << SEEN_BITS);
  private readonly seenAt: StaticArray<f64> = new StaticArray<f64>(1 << SEEN_BITS);

  constructor() {
    for (let s = 0; s < MAX_SLOTS; s++) this.forget(s);
  }

  /**
   * The share of the cache of the replica in `slot` (-1: none, 0), of
   * `capacityTokens`, held by prompt content in reuse, over FULL_SHARE, at
   * most 1; scaled by how much of the cache has been written (`writtenTokens`,
   * by every worker VM of the fleet): a copy into a cache never filled
   * evicts nothing (vLLM hands out never-used blocks first).
   */
  @inline estimate(slot: i32, capacityTokens: f64, writtenTokens: f64): f64 {
    if (slot < 0) return 0;
    const w = unchecked(this.wrote[slot]);
    const s = w > 0 ? unchecked(this.kept[slot]) / (w * FULL_SHARE) : 0;
    const f = writtenTokens / capacityTokens;
    return (s < 1 ? s : 1) * (f < 1 ? f : 1);
  }

  /**
   * A request was sent to `slot` (KV capacity `capacityTokens`), finding
   * `heldTokens` of its prompt there and writing `tokens`; `start` keys its
   * prompt start (0: none).
   */
  note(slot: i32, start: u64, heldTokens: f64, tokens: f64, capacityTokens: f64): void {
    if (slot < 0) return;
    const now = unchecked(this.written[slot]);
    let x: f64 = 0;
    if (start != 0) {
      const key = mix64(start ^ (<u64>(slot + 1) * 0x9E3779B97F4A7C15)) | 1;
      const h = <i32>key & ((1 << SEEN_BITS) - 1);
      if (unchecked(this.keys[h]) == key && heldTokens > 0) {
        const d = (now - unchecked(this.seenAt[h])) / capacityTokens;
        x = heldTokens * (d < 1 ? d : 1);
      }
      unchecked(this.keys[h] = key);
      unchecked(this.seenAt[h] = now);
    }
    unchecked(this.kept[slot] += (x - unchecked(this.kept[slot])) * ALPHA);
    unchecked(this.wrote[slot] += (tokens - unchecked(this.wrote[slot])) * ALPHA);
    unchecked(this.written[slot] = now + tokens);
  }

  /** The replica in `slot` left: a replica given the slot later starts from the full share, with no evidence yet. */
  forget(slot: i32): void {
    unchecked(this.kept[slot] = PRIOR_TOKENS * FULL_SHARE);
    unchecked(this.wrote[slot] = PRIOR_TOKENS);
  }
}
