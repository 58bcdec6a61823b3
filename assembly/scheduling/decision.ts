// What the scheduling cycle decided for one request: the stream keeps it
// until the request ends, and the response hooks read it back.
import { RequestTraits } from "../request/requestTraits";
import { ReplicaTable } from "../state/replicaTable";

@final
export class Decision {
  replica: i32 = -1;
  address: string = "";
  addressBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Where a retry should go if the chosen replica cannot be reached, or null with one candidate. */
  fallbackBytes: ArrayBuffer | null = null;
  tableVersion: u64 = 0;
  matched: i32 = 0;
  total: i32 = 0;
  counted: bool = false;
  /** The decision record for x-prefix-router-decision, when this request was sampled and debug headers are on. */
  record: ArrayBuffer | null = null;
  /** What the request says of itself (session, priority, model): filled by the stream and the router. */
  readonly traits: RequestTraits = new RequestTraits();
  /** Not routed because every candidate is past the saturation bound (admission holds or refuses it). */
  saturated: bool = false;
  /** Prefill tokens counted as queued on the replica until its response starts. */
  newTokens: f64 = 0;
  /** Decode work counted on the replica from its response's start to its end. */
  decodeWork: f64 = 0;
  /** The response has started: the request counts as decoding, no longer as queued. */
  decoding: bool = false;

  reset(): void {
    this.replica = -1;
    this.saturated = false;
    this.fallbackBytes = null;
    this.record = null;
    this.matched = 0;
    this.total = 0;
    this.counted = false;
    this.newTokens = 0;
    this.decodeWork = 0;
    this.decoding = false;
  }

  /** The decided replica's index in table `t` (-1: it left). */
  @inline indexIn(t: ReplicaTable): i32 {
    return this.tableVersion == t.version ? this.replica : t.indexOf(this.address);
  }
}
