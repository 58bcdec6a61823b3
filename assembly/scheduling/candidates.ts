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
  /** Requests this gateway sent to the replica and has not seen finish, across worker VMs. */
  readonly inflight: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Load used by the bounded-load guard. */
  readonly load: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Rendezvous weight of the replica for this request's first block. */
  readonly rendezvous: StaticArray<u64> = new StaticArray<u64>(MAX_SLOTS);
  /** Weighted score, written by weightedScore. */
  readonly score: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** One scorer's output, reused by each scorer in turn. */
  readonly scratch: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
}
