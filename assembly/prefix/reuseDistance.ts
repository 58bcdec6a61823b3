// How often what a replica's cache evicts is asked for again, for the work
// model's eviction charge. A vLLM cache evicts its least recently used
// blocks, those last used about one cache size of written tokens ago; what it
// evicts matters only if requests come back for such content. So per replica:
// a clock of the tokens this VM's requests wrote into its cache (new prompt
// tokens and output), the clock when each prompt start was last sent there,
// and, per request, its reuse distance (clock now - then) as a fraction of the
// replica's KV capacity, 1 past it (the start came back after its eviction),
// 0 for a start not seen there. The replica's estimate is the moving mean of
// these: about 0 where each replica serves a few hot prompt starts among
// unique tails (they come back at once; the cold tails are evicted for
// free), high where many prompt starts share the cluster's cache and come
// back about when it turns over. With several worker VMs or gateways each
// sees a share of the requests and of the written tokens, so the distances
// it measures are about the whole replica's.
import { mix64 } from "./hash";
import { MAX_SLOTS } from "./prefixIndex";

/** (prompt start, replica) last-sent clocks, direct-mapped: a clash loses one sample. */
const SEEN_BITS: i32 = 12;
/** Weight of each request in a replica's moving mean. */
const ALPHA: f64 = 1.0 / 32;

@final
export class ReuseDistance {
  private readonly written: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  private readonly reuse: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  private readonly keys: StaticArray<u64> = new StaticArray<u64>(1 << SEEN_BITS);
  private readonly seenAt: StaticArray<f64> = new StaticArray<f64>(1 << SEEN_BITS);

  /** The replica in `slot`: 0 (what it evicts is never asked for again) to 1 (always). */
  @inline estimate(slot: i32): f64 {
    return slot >= 0 && slot < MAX_SLOTS ? unchecked(this.reuse[slot]) : 0;
  }

  /**
   * A request was sent to `slot` (KV capacity `capacityTokens`), writing
   * `tokens` there; `start` keys its prompt start (0: it has none to sample).
   */
  note(slot: i32, start: u64, tokens: f64, capacityTokens: f64): void {
    if (slot < 0 || slot >= MAX_SLOTS) return;
    const now = unchecked(this.written[slot]);
    if (start != 0) {
      const key = mix64(start ^ (<u64>(slot + 1) * 0x9E3779B97F4A7C15)) | 1;
      const h = <i32>key & ((1 << SEEN_BITS) - 1);
      let x: f64 = 0;
      if (unchecked(this.keys[h]) == key) {
        x = (now - unchecked(this.seenAt[h])) / capacityTokens;
        if (!(x < 1)) x = 1;
      }
      unchecked(this.keys[h] = key);
      unchecked(this.seenAt[h] = now);
      unchecked(this.reuse[slot] += (x - unchecked(this.reuse[slot])) * ALPHA);
    }
    if (tokens > 0) unchecked(this.written[slot] = now + tokens);
  }

  /** The replica in `slot` left: a replica given the slot later starts from nothing evicted being reused. */
  forget(slot: i32): void {
    if (slot >= 0 && slot < MAX_SLOTS) unchecked(this.reuse[slot] = 0);
  }
}
