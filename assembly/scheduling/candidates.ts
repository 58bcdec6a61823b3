// The replicas left after filtering, with what each scorer reads about them.
// One preallocated instance per VM: the request path fills it, never allocates.
import { MAX_SLOTS } from "../prefix/prefixIndex";

@final
export class Candidates {
  n: i32 = 0;
  /** Full prompt blocks of this request (0 for requests routed on load alone). */
  totalBlocks: i32 = 0;
  /** Index of each candidate in the replica table. */
  readonly replica: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Leading prompt blocks the prefix index says the replica holds. */
  readonly matched: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Requests waiting in the replica's engine queue (from metrics). */
  readonly waiting: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** KV-cache use, 0..1 (from metrics). */
  readonly kvUsage: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Requests running in the replica's engine (from metrics, the same scrape as kvUsage). */
  readonly running: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** The replica's KV-cache size in tokens (from metrics; 0: not known). */
  readonly kvCapacityTokens: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Requests this gateway sent to the replica and has not seen finish, across worker VMs. */
  readonly inflight: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * Prefill tokens sent to the replica and not yet prefilled: this gateway's
   * still ahead by its drain estimate, or all it has in flight with no
   * response where other gateways have some too, plus theirs as last
   * reported (candidateFilter.ts says why).
   */
  readonly queued: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Of queued, this gateway's own (drained where candidateFilter.ts drains it): what the drain anchor counts ahead of a request committed there. */
  readonly gatewayQueued: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Requests this gateway has decoding on the replica (response started, not ended). */
  readonly decoding: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Decode work of the requests decoding there, in prefill-token equivalents (all gateways, as queued). */
  readonly decodeWork: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Prompt tokens the replica would have to prefill for this request (what it does not hold). */
  readonly newTokens: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** The work guard's load: queued + decode work + new tokens with this request, less the prefill the replica saves against the one holding least of the prompt (workModel.ts). */
  readonly work: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Of ttftMs, the wait for KV memory: until running requests finish and free room for this one (workModel.ts; 0 where it fits). */
  readonly memoryWaitMs: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Predicted time to first token of this request there, ms (workModel.ts). */
  readonly ttftMs: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * What copying there the prompt tokens another candidate holds costs beyond
   * this request's TTFT, ms (workModel.ts): the re-prefill of what it evicts,
   * less its own prefill where the prefix's demand needs another holder.
   */
  readonly copyMs: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Time since this gateway last sent a request to the replica, ms (Infinity: never, as far as its worker VMs' rows tell). */
  readonly sincePlacedMs: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Time since any gateway of the fleet last sent a request there, as far as this one knows, ms: this gateway's own, or the others' as the control plane's states show them (ReplicaTable.otherGatewaysPlacedMs). */
  readonly sinceAnyPlacedMs: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * Predicted TTFTs closer than this, of candidates that would prefill the
   * same tokens, are near-equal: the picker takes the one placed longest ago
   * (0: off; workModel.ts sets it, picker.ts says why).
   */
  nearMs: f64 = 0;
  /** The share of recent requests that found held the prefix this request finds held (prefix/prefixDemand.ts; 0: none held). */
  demandShare: f64 = 0;
  /** The requests that share is of (a moving count). */
  demandRequests: f64 = 0;
  /** Live gateways of the fleet this one belongs to (state section 3; 1 alone): each reads its demand from a g-th of the requests. */
  fleetGateways: i32 = 1;
  /** The prefix's demand needs another replica to hold it than the candidates holding the most of the prompt (workModel.ts). */
  copyNeeded: bool = false;
  /** How much of the replica's cache is prompt content in reuse, 0..1 (prefix/cacheReuse.ts): scales copyMs where a copy is needed. */
  readonly cacheReuse: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * Tokens the gateway fleet's worker VMs have written into the replica's
   * cache (prompt tokens they had to prefill, and output) since they started:
   * how much content they have given the replica, like the size of SGLang's
   * per-worker tree. This gateway's VMs share theirs through the gateway
   * blob; the other gateways' come with the state (section 4).
   */
  readonly written: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * Leading prompt blocks (a checkpoint depth, as `matched`) the shared index
   * says the replica held, untouched for longer than its cache turnover
   * (prefixLocator.ts evicted): `matched` takes them as gone, but a prompt
   * nobody holds goes back to this former home among nearly equal
   * candidates (picker.ts says why). 0: none.
   */
  readonly formerMatched: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Predicted costs within this of the best are nearly equal for a former home (0: off; workModel.ts sets it). */
  homeBandMs: f64 = 0;
  /**
   * A prompt no candidate holds any of, with the prefix scorer on: among the
   * candidates the band lets through, the one given the least content wins
   * (picker.ts says why).
   */
  newPrefix: bool = false;
  /**
   * The candidate holding most of the prompt holds less than half of it
   * (workModel.ts sets it; the cycle clears it where the prefix weight is 0,
   * as it leaves newPrefix unset): the request writes mostly new content wherever
   * it goes, so among near-equal candidates it too goes where the least
   * content was given (picker.ts).
   */
  mostlyNew: bool = false;
  /** No candidate is picked with more work than this while one under it fits (Infinity: no work guard). */
  workBound: f64 = Infinity;
  /** Load used by the bounded-load guard. */
  readonly load: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Rendezvous weight of the replica for this request's first block. */
  readonly rendezvous: StaticArray<u64> = new StaticArray<u64>(MAX_SLOTS);
  /** Weighted score, written by weightedScore. */
  readonly score: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** The work scorer's part of the score (its weight x its score); the rest is the other scorers' and the affinities'. */
  readonly workTerm: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** One scorer's output, reused by each scorer in turn. */
  readonly scratch: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
}
