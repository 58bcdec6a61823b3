// Decoders of the gateway fleet's state sections (plugin/STATE_FORMAT.md,
// "Gateway fleet"): tag 1, placements the other gateways made, tag 2,
// their work per replica, tag 3, this gateway's position in the fleet, and
// tag 4, the content they wrote per replica. The control plane encodes them in
// control-plane/fleetWire.ts. Each is validated whole before anything is
// kept; lengths are checked in 64 bits, so no count can overflow a bound.
import { CONTENT_UNIT } from "./gatewayBlob";
import { ReplicaTable } from "./replicaTable";
import { isCheckpoint } from "../prefix/blockHasher";
import * as E from "../errors";

export const SECTION_PLACEMENTS: u32 = 1;
export const SECTION_OTHER_WORK: u32 = 2;
export const SECTION_FLEET_POSITION: u32 = 3;
export const SECTION_OTHER_CONTENT: u32 = 4;
const FLEET_POSITION_BYTES: i32 = 4;
const PLACEMENTS_HEADER_BYTES: u64 = 12;
const PLACEMENT_RECORD_BYTES: u64 = 16;
const MAX_SECTION_PLACEMENTS: u32 = 16384;
/** Sections 2 and 4: [u32 count], then per replica a record. */
const RECORDS_HEADER_BYTES: u64 = 4;
const WORK_RECORD_BYTES: u64 = 12;
const CONTENT_RECORD_BYTES: u64 = 8;
/** Blocks of the deepest checkpoint the wire carries: the 1 MiB body limit in 64-byte blocks. */
const MAX_CHECKPOINT_DEPTH: u32 = 16384;

export let fleetSectionError: string = "";

/** A depth the filter keeps a checkpoint at (blockHasher's rule), within what the wire carries. */
@inline function isCheckpointDepth(d: u32): bool {
  return d >= 1 && d <= MAX_CHECKPOINT_DEPTH && isCheckpoint(<i32>d);
}

function reject(msg: string): bool {
  fleetSectionError = msg;
  return false;
}

/** Section 1 of [p, p+len) into t.learned* and t.placementsThrough. */
export function decodePlacements(t: ReplicaTable, p: usize, len: i32): bool {
  if (len < <i32>PLACEMENTS_HEADER_BYTES) return reject(E.STATE_ERR_PLACEMENTS_LENGTH);
  const n = load<u32>(p, 8);
  if (n > MAX_SECTION_PLACEMENTS || PLACEMENTS_HEADER_BYTES + <u64>n * PLACEMENT_RECORD_BYTES != <u64>len) return reject(E.STATE_ERR_PLACEMENTS_LENGTH);
  const replicas = <u32>t.n;
  for (let i: u32 = 0; i < n; i++) {
    const q = p + <usize>(PLACEMENTS_HEADER_BYTES + <u64>i * PLACEMENT_RECORD_BYTES);
    if (<u32>load<u16>(q, 8) >= replicas || load<u16>(q, 10) != 0) return reject(E.STATE_ERR_PLACEMENT_REPLICA);
    if (!isCheckpointDepth(load<u32>(q, 12))) return reject(E.STATE_ERR_PLACEMENT_DEPTH);
  }
  const hashes = new Array<u64>(<i32>n);
  const rs = new Array<i32>(<i32>n);
  const depths = new Array<u32>(<i32>n);
  for (let i: u32 = 0; i < n; i++) {
    const q = p + <usize>(PLACEMENTS_HEADER_BYTES + <u64>i * PLACEMENT_RECORD_BYTES);
    unchecked(hashes[i] = load<u64>(q));
    unchecked(rs[i] = <i32>load<u16>(q, 8));
    unchecked(depths[i] = load<u32>(q, 12));
  }
  t.learnedHash = hashes;
  t.learnedReplica = rs;
  t.learnedDepth = depths;
  t.placementsThrough = load<u64>(p);
  return true;
}

/**
 * Checks the per-replica records of [p, p+len) (sections 2 and 4: [u32
 * count], then records of `recordBytes` that start [u16 replica][u16
 * reserved 0]), each replica at most once. A replica listed twice is caught
 * by its mark in `marks`, set to -1 here (a rejected table is dropped whole;
 * an accepted one has every listed replica's mark overwritten by its
 * record). Returns the record count, or -1 with fleetSectionError set.
 */
function replicaRecords(t: ReplicaTable, p: usize, len: i32, recordBytes: u64, marks: Array<f64>, lengthError: string, replicaError: string): i32 {
  const n = len < <i32>RECORDS_HEADER_BYTES ? U32.MAX_VALUE : load<u32>(p);
  if (n > <u32>t.n || RECORDS_HEADER_BYTES + <u64>n * recordBytes != <u64>len) {
    reject(lengthError);
    return -1;
  }
  for (let i: u32 = 0; i < n; i++) {
    const q = p + <usize>(RECORDS_HEADER_BYTES + <u64>i * recordBytes);
    const r = <i32>load<u16>(q);
    if (r >= t.n || load<u16>(q, 2) != 0 || unchecked(marks[r]) < 0) {
      reject(replicaError);
      return -1;
    }
    unchecked(marks[r] = -1);
  }
  return <i32>n;
}

/** Section 2 of [p, p+len) into t.otherGatewaysQueuedTokens and t.otherGatewaysDecodeWork (replicas not listed stay 0). */
export function decodeOtherWork(t: ReplicaTable, p: usize, len: i32): bool {
  const queued = t.otherGatewaysQueuedTokens;
  const n = replicaRecords(t, p, len, WORK_RECORD_BYTES, queued, E.STATE_ERR_WORK_LENGTH, E.STATE_ERR_WORK_REPLICA);
  if (n < 0) return false;
  const decode = t.otherGatewaysDecodeWork;
  for (let i = 0; i < n; i++) {
    const q = p + <usize>(RECORDS_HEADER_BYTES + <u64>i * WORK_RECORD_BYTES);
    const r = <i32>load<u16>(q);
    unchecked(queued[r] = <f64>load<u32>(q, 4));
    unchecked(decode[r] = <f64>load<u32>(q, 8));
  }
  return true;
}

/** Section 4 of [p, p+len) into t.otherGatewaysWritten, in tokens (replicas not listed stay 0). */
export function decodeOtherContent(t: ReplicaTable, p: usize, len: i32): bool {
  const written = t.otherGatewaysWritten;
  const n = replicaRecords(t, p, len, CONTENT_RECORD_BYTES, written, E.STATE_ERR_CONTENT_LENGTH, E.STATE_ERR_CONTENT_REPLICA);
  if (n < 0) return false;
  for (let i = 0; i < n; i++) {
    const q = p + <usize>(RECORDS_HEADER_BYTES + <u64>i * CONTENT_RECORD_BYTES);
    unchecked(written[<i32>load<u16>(q)] = <f64>load<u32>(q, 4) * CONTENT_UNIT);
  }
  return true;
}

/** Section 3 of [p, p+len) into t.fleetIndex and t.fleetCount. */
export function decodeFleetPosition(t: ReplicaTable, p: usize, len: i32): bool {
  if (len != FLEET_POSITION_BYTES) return reject(E.STATE_ERR_FLEET_POSITION_LENGTH);
  const index = <i32>load<u16>(p);
  const count = <i32>load<u16>(p, 2);
  if (count < 1 || index >= count) return reject(E.STATE_ERR_FLEET_POSITION);
  t.fleetIndex = index;
  t.fleetCount = count;
  return true;
}
