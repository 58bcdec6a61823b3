// The one shared-data record every request reads (key prefix_router.inflight,
// layout in sharedKeys.ts and plugin/sharedData.ts): the stamp of the newest
// published state, then one row per worker VM of its in-flight counters and a
// heartbeat. One read per request serves both the state delivery (the stamp)
// and the in-flight counters (the rows); each rewrites only its own part, by
// CAS, keeping the other's.
import { HostBytes, WasmResult, getShared, setShared, sharedCas } from "../abi/hostCalls";
import { KEY_INFLIGHT } from "./sharedKeys";
import { MAX_SLOTS } from "../prefix/prefixIndex";

/** A row not refreshed for this long belongs to a VM that is gone (live VMs beat every second). */
const ROW_TTL_S: u32 = 10;
const CAS_ATTEMPTS = 8;
const STAMP_BYTES: i32 = 16;
const SET_HASH_AT: usize = 16;
const ROWS_AT: usize = 24;
const HEADER_BYTES: i32 = 28;
/**
 * A row: [u32 vm id][u32 heartbeat s][u32 requests routed] then per replica [u16 in flight][u16 decoding][u32 queued tokens][u32 decode work]
 * [u32 last placement, ms clock mod 2^32, 0: none][u32 content written, in CONTENT_UNIT tokens]
 * [u32 prefill tokens ahead as of the drain anchor][u32 drain anchor, ms clock mod 2^32, 0: none].
 */
const ROW_HEAD_BYTES: i32 = 12;
export const REPLICA_BYTES: i32 = 28;
/** Tokens per unit of a content count (a row's, and the fleet exchange's): a u32 of them lasts a year at 10k tokens a second. */
export const CONTENT_UNIT: f64 = 64;

/** One VM's counters per replica, by replica-table index: what a row carries. */
@final
export class WorkCounts {
  /** Requests in flight (sent, not ended). */
  readonly inflight: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Of those, requests whose response has started. */
  readonly decoding: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Prefill tokens of requests whose response has not started. */
  readonly queued: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Decode work of the decoding requests, in prefill-token equivalents. */
  readonly decodeWork: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** When a request was last sent there: the ms clock mod 2^32 (0: never; a send at 0 is stamped 1). Rows merge by the latest. */
  readonly placedMs: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  /** Tokens written into the replica's cache (prompt tokens it had to prefill, and output), since the VM started. */
  readonly written: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /**
   * The gateway's prefill tokens still ahead on the replica as of drainAnchorMs
   * (scheduling/candidateFilter.ts drains them at the engine's prefill rate).
   * Rows merge by the latest anchor: each VM anchors from the whole gateway's count.
   */
  readonly drainTokens: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** When drainTokens was counted: the ms clock mod 2^32 (0: never; as placedMs). */
  readonly drainAnchorMs: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  /** Requests routed since the VM started (mod 2^32; a total's, the gateway's): the clock of the shared prefix demand. Not cleared with the replicas. */
  routed: u32 = 0;

  clear(n: i32): void {
    for (let i = 0; i < n; i++) {
      unchecked(this.inflight[i] = 0);
      unchecked(this.decoding[i] = 0);
      unchecked(this.queued[i] = 0);
      unchecked(this.decodeWork[i] = 0);
      unchecked(this.placedMs[i] = 0);
      unchecked(this.written[i] = 0);
      unchecked(this.drainTokens[i] = 0);
      unchecked(this.drainAnchorMs[i] = 0);
    }
  }

  /** The first n replicas' counters, and the routed count, set to `from`'s. */
  copyFrom(from: WorkCounts, n: i32): void {
    this.routed = from.routed;
    for (let i = 0; i < n; i++) {
      unchecked(this.inflight[i] = unchecked(from.inflight[i]));
      unchecked(this.decoding[i] = unchecked(from.decoding[i]));
      unchecked(this.queued[i] = unchecked(from.queued[i]));
      unchecked(this.decodeWork[i] = unchecked(from.decodeWork[i]));
      unchecked(this.placedMs[i] = unchecked(from.placedMs[i]));
      unchecked(this.written[i] = unchecked(from.written[i]));
      unchecked(this.drainTokens[i] = unchecked(from.drainTokens[i]));
      unchecked(this.drainAnchorMs[i] = unchecked(from.drainAnchorMs[i]));
    }
  }

  /**
   * Carries the counters over to a new replica table of n replicas, where
   * replica j was old replica at[j] (-1: new, counted from 0); `oldN`: the
   * replicas the old table had.
   */
  remap(at: StaticArray<i32>, n: i32, oldN: i32): void {
    remapped(this.inflight, at, n, oldN);
    remapped(this.decoding, at, n, oldN);
    remapped(this.queued, at, n, oldN);
    remapped(this.decodeWork, at, n, oldN);
    remapped(this.placedMs, at, n, oldN);
    remapped(this.written, at, n, oldN);
    remapped(this.drainTokens, at, n, oldN);
    remapped(this.drainAnchorMs, at, n, oldN);
  }
}

/** One counter of WorkCounts.remap: a[j] = old a[at[j]] for j < n, 0 elsewhere up to oldN. */
function remapped<T>(a: StaticArray<T>, at: StaticArray<i32>, n: i32, oldN: i32): void {
  const kept = new StaticArray<T>(n);
  for (let j = 0; j < n; j++) {
    const i = at[j];
    if (i >= 0) kept[j] = a[i];
  }
  const end = oldN > n ? oldN : n;
  for (let j = 0; j < end; j++) a[j] = j < n ? kept[j] : <T>0;
}

/** The later of two placement stamps (wrap-aware: stamps are under 2^31 ms, 24 days, apart; 0 is never). */
@inline export function laterPlacement(a: u32, b: u32): u32 {
  return a == 0 || (b != 0 && <i32>(b - a) > 0) ? b : a;
}

/**
 * Milliseconds from placement stamp `placed` to `nowMs` (wrap-aware, as
 * laterPlacement): Infinity for never (0), and 0 for a stamp after `nowMs`,
 * which another worker VM wrote after this request read its clock.
 */
@inline export function msSincePlacement(nowMs: u32, placed: u32): f64 {
  const since = <i32>(nowMs - placed);
  return placed == 0 ? Infinity : since > 0 ? <f64>since : 0;
}

/** The row at `row` is another VM's than `vmId`, refreshed within ROW_TTL_S of `nowS`. */
@inline function isOtherLiveRow(row: usize, vmId: u32, nowS: u32): bool {
  return load<u32>(row) != vmId && <i32>(nowS - load<u32>(row, 4)) <= <i32>ROW_TTL_S;
}

@inline function clampU16(v: f64): u16 {
  return v <= 0 ? 0 : v >= 65535 ? 65535 : <u16>v;
}

@inline function clampU32(v: f64): u32 {
  return v <= 0 ? 0 : v >= 4294967295 ? U32.MAX_VALUE : <u32>v;
}

@final
export class GatewayBlob {
  /** False without shared data (sharedState off, or no worker id): every operation is then a no-op. */
  readonly shared: bool;
  private readonly bytes: HostBytes = new HostBytes();
  private cas: u32 = 0;
  private fetched: bool = false;
  private scratch: usize = 0;
  private scratchCap: i32 = 0;
  /** The state stamp of the blob last fetched: version (0: none published) and when the control plane was last heard from. */
  stampVersion: u64 = 0;
  stampSeenNs: u64 = 0;

  constructor(shared: bool) {
    this.shared = shared;
  }

  /** The blob was fetched since the last write (or drop): rows can be read. */
  @inline get held(): bool {
    return this.fetched;
  }

  /** Reads the blob and its stamp. False when shared data could not be read. */
  fetch(): bool {
    if (!this.shared) return false;
    this.drop();
    const r = getShared(KEY_INFLIGHT, this.bytes);
    if (r == WasmResult.Ok) this.cas = sharedCas;
    else if (r == WasmResult.NotFound) this.cas = 0;
    else return false;
    this.fetched = true;
    const hasStamp = this.bytes.len >= <usize>STAMP_BYTES;
    this.stampVersion = hasStamp ? load<u64>(this.bytes.ptr) : 0;
    this.stampSeenNs = hasStamp ? load<u64>(this.bytes.ptr, 8) : 0;
    return true;
  }

  /** Forgets the fetched blob (the replica set changed, or it was rewritten). */
  drop(): void {
    this.bytes.free();
    this.fetched = false;
  }

  /**
   * Adds the counters of other VMs' live rows to out's first n replicas, when
   * the fetched rows are laid out for the replica set `setHash`. Returns how
   * many such rows there were: the other worker VMs routing for this gateway.
   */
  addOtherRows(setHash: u64, n: i32, vmId: u32, nowS: u32, out: WorkCounts): i32 {
    const rows = this.rowsFor(setHash, n);
    const rowBytes = ROW_HEAD_BYTES + REPLICA_BYTES * n;
    let live = 0;
    for (let r = 0; r < rows; r++) {
      const row = this.bytes.ptr + <usize>(HEADER_BYTES + r * rowBytes);
      if (!isOtherLiveRow(row, vmId, nowS)) continue;
      live++;
      out.routed += load<u32>(row, 8);
      let at = row + <usize>ROW_HEAD_BYTES;
      for (let i = 0; i < n; i++, at += <usize>REPLICA_BYTES) {
        unchecked(out.inflight[i] += <f64>load<u16>(at));
        unchecked(out.decoding[i] += <f64>load<u16>(at, 2));
        unchecked(out.queued[i] += <f64>load<u32>(at, 4));
        unchecked(out.decodeWork[i] += <f64>load<u32>(at, 8));
        unchecked(out.placedMs[i] = laterPlacement(unchecked(out.placedMs[i]), load<u32>(at, 12)));
        unchecked(out.written[i] += <f64>load<u32>(at, 16) * CONTENT_UNIT);
        const anchor = load<u32>(at, 24);
        if (laterPlacement(unchecked(out.drainAnchorMs[i]), anchor) != unchecked(out.drainAnchorMs[i])) {
          unchecked(out.drainAnchorMs[i] = anchor);
          unchecked(out.drainTokens[i] = <f64>load<u32>(at, 20));
        }
      }
    }
    return live;
  }

  /** The other VMs' live rows' queued tokens on replica i of n (addOtherRows's, for one replica). */
  otherRowsQueued(setHash: u64, n: i32, vmId: u32, nowS: u32, i: i32): f64 {
    const rows = this.rowsFor(setHash, n);
    const rowBytes = ROW_HEAD_BYTES + REPLICA_BYTES * n;
    let queued: f64 = 0;
    for (let r = 0; r < rows; r++) {
      const row = this.bytes.ptr + <usize>(HEADER_BYTES + r * rowBytes);
      if (isOtherLiveRow(row, vmId, nowS)) queued += <f64>load<u32>(row + <usize>(ROW_HEAD_BYTES + i * REPLICA_BYTES), 4);
    }
    return queued;
  }

  /** Rows in the fetched blob when it is laid out for the replica set `setHash` of n replicas; else 0. */
  private rowsFor(setHash: u64, n: i32): i32 {
    const p = this.bytes.ptr;
    const len = <i32>this.bytes.len;
    if (len < HEADER_BYTES || load<u64>(p, SET_HASH_AT) != setHash) return 0;
    const rows = <i32>load<u32>(p, ROWS_AT);
    return <i64>HEADER_BYTES + <i64>rows * <i64>(ROW_HEAD_BYTES + REPLICA_BYTES * n) == <i64>len ? rows : 0;
  }

  /**
   * Rewrites VM `vmId`'s row with the first n replicas' counters and
   * heartbeat `nowS`, keeping the stamp and the other live rows laid out for `setHash`.
   */
  writeRow(setHash: u64, n: i32, vmId: u32, nowS: u32, counts: WorkCounts): void {
    const rowBytes = ROW_HEAD_BYTES + REPLICA_BYTES * n;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (!this.fetched && !this.fetch()) return;
      const p = this.bytes.ptr;
      let keep = 0;
      const oldRows = this.rowsFor(setHash, n);
      const need = HEADER_BYTES + (oldRows + 1) * rowBytes;
      this.ensureScratch(need);
      const s = this.scratch;
      this.copyStamp(s);
      store<u64>(s, setHash, SET_HASH_AT);
      for (let r = 0; r < oldRows; r++) {
        const row = p + <usize>(HEADER_BYTES + r * rowBytes);
        if (!isOtherLiveRow(row, vmId, nowS)) continue;
        memory.copy(s + <usize>(HEADER_BYTES + keep * rowBytes), row, <usize>rowBytes);
        keep++;
      }
      const mine = s + <usize>(HEADER_BYTES + keep * rowBytes);
      store<u32>(mine, vmId);
      store<u32>(mine, nowS, 4);
      store<u32>(mine, counts.routed, 8);
      let at = mine + <usize>ROW_HEAD_BYTES;
      for (let i = 0; i < n; i++, at += <usize>REPLICA_BYTES) {
        store<u16>(at, clampU16(unchecked(counts.inflight[i])));
        store<u16>(at, clampU16(unchecked(counts.decoding[i])), 2);
        store<u32>(at, clampU32(unchecked(counts.queued[i])), 4);
        store<u32>(at, clampU32(unchecked(counts.decodeWork[i])), 8);
        store<u32>(at, unchecked(counts.placedMs[i]), 12);
        store<u32>(at, clampU32(unchecked(counts.written[i]) / CONTENT_UNIT), 16);
        store<u32>(at, clampU32(unchecked(counts.drainTokens[i])), 20);
        store<u32>(at, unchecked(counts.drainAnchorMs[i]), 24);
      }
      store<u32>(s, <u32>(keep + 1), ROWS_AT);
      const total = HEADER_BYTES + (keep + 1) * rowBytes;
      const cas = this.cas;
      this.drop();
      if (setShared(KEY_INFLIGHT, s, <usize>total, cas) == WasmResult.Ok) return;
    }
  }

  /** Raises the stamp to at least (version, seenNs), keeping every row. */
  raiseStamp(version: u64, seenNs: u64): void {
    if (!this.shared) return;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (!this.fetch()) return;
      const len = <i32>this.bytes.len;
      const keepsRows = len >= HEADER_BYTES;
      const total = keepsRows ? len : HEADER_BYTES;
      this.ensureScratch(total);
      const s = this.scratch;
      if (keepsRows) memory.copy(s, this.bytes.ptr, <usize>len);
      else {
        memory.fill(s, 0, <usize>HEADER_BYTES);
        this.copyStamp(s);
      }
      if (version > this.stampVersion) store<u64>(s, version);
      if (seenNs > this.stampSeenNs) store<u64>(s, seenNs, 8);
      const cas = this.cas;
      this.drop();
      if (setShared(KEY_INFLIGHT, s, <usize>total, cas) == WasmResult.Ok) return;
    }
  }

  /** Writes the fetched blob's stamp (zeros without one; fetch() parsed it) at `to`. */
  @inline private copyStamp(to: usize): void {
    store<u64>(to, this.stampVersion);
    store<u64>(to, this.stampSeenNs, 8);
  }

  private ensureScratch(need: i32): void {
    if (need <= this.scratchCap) return;
    if (this.scratch != 0) heap.free(this.scratch);
    this.scratchCap = need * 2;
    this.scratch = heap.alloc(<usize>this.scratchCap);
  }
}
