// Requests this gateway has in flight to each replica, across all worker VMs.
// Each VM owns one row of a shared-data blob (its own counts and a heartbeat)
// and rewrites only that row, by CAS; readers sum the rows. A VM that dies
// (a trap replaces it) stops its heartbeat and its row is dropped after
// ROW_TTL_S, so its counts cannot leak forever.
//
// The blob's header also carries the stamp of the newest published state
// (its version, and when the control plane was last heard from): every
// request reads the blob anyway, so it learns of a new state without a
// shared-data read of its own. Layout, little-endian:
//   [u64 state version, 0: none][u64 control plane last seen, ns]
//   [u64 replica-set hash][u32 rows] then rows of [u32 vmId][u32 heartbeat s][u16 count x replicas]
import { HostBytes, WasmResult, getShared, setShared, sharedCas } from "../abi/host";
import { MAX_SLOTS } from "../prefix/prefixIndex";
import { KEY_INFLIGHT } from "./sharedKeys";
import { ReplicaTable } from "./replicaTable";

/** A row not refreshed for this long belongs to a VM that is gone (live VMs beat every second). */
const ROW_TTL_S: u32 = 10;
const CAS_ATTEMPTS = 8;
const STAMP_BYTES: i32 = 16;
const SET_HASH_AT: usize = 16;
const ROWS_AT: usize = 24;
const HEADER_BYTES: i32 = 28;

export class InflightCounters {
  /** This VM's own counts, by replica-table index. */
  readonly local: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Counts of the other VMs' rows, from the last read. */
  private readonly others: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  vmId: u32 = 0;
  shared: bool = false;
  private blob: HostBytes = new HostBytes();
  private blobCas: u32 = 0;
  private haveBlob: bool = false;
  private scratch: usize = 0;
  private scratchCap: i32 = 0;
  /** The state stamp in the blob last fetched: version (0: no state published) and control-plane-seen time. */
  stampVersion: u64 = 0;
  stampSeenNs: u64 = 0;

  /** Carries this VM's counts over to a new replica table, by address. */
  remap(old: ReplicaTable | null, next: ReplicaTable): void {
    const carried = new StaticArray<i32>(next.n);
    if (old !== null) {
      for (let i = 0; i < old.n; i++) {
        const j = next.indexOf(old.addresses[i]);
        if (j >= 0) carried[j] = this.local[i];
      }
    }
    for (let i = 0; i < MAX_SLOTS; i++) unchecked(this.local[i] = i < next.n ? carried[i] : 0);
    this.dropBlob();
  }

  /**
   * Reads the blob (kept for read() and the next publish) and its state stamp.
   * False when shared data could not be read.
   */
  fetch(): bool {
    if (!this.shared) return false;
    this.dropBlob();
    const r = getShared(KEY_INFLIGHT, this.blob);
    if (r == WasmResult.Ok) this.blobCas = sharedCas;
    else if (r == WasmResult.NotFound) this.blobCas = 0;
    else return false;
    this.haveBlob = true;
    const hasStamp = this.blob.len >= <usize>STAMP_BYTES;
    this.stampVersion = hasStamp ? load<u64>(this.blob.ptr) : 0;
    this.stampSeenNs = hasStamp ? load<u64>(this.blob.ptr, 8) : 0;
    return true;
  }

  /** Fills out[i] with the in-flight count of table replica i (from the fetched blob; fetched now if there is none). */
  read(t: ReplicaTable, out: StaticArray<f64>, nowS: u32): void {
    const n = t.n;
    for (let i = 0; i < n; i++) unchecked(this.others[i] = 0);
    if (this.shared && (this.haveBlob || this.fetch())) this.sumOthers(t, nowS);
    for (let i = 0; i < n; i++) unchecked(out[i] = <f64>(unchecked(this.others[i]) + unchecked(this.local[i])));
  }

  private sumOthers(t: ReplicaTable, nowS: u32): void {
    const p = this.blob.ptr;
    const len = <i32>this.blob.len;
    if (len < HEADER_BYTES || load<u64>(p, SET_HASH_AT) != t.setHash) return;
    const rows = <i32>load<u32>(p, ROWS_AT);
    const rowBytes = 8 + 2 * t.n;
    if (HEADER_BYTES + rows * rowBytes != len) return;
    for (let r = 0; r < rows; r++) {
      const row = p + <usize>(HEADER_BYTES + r * rowBytes);
      if (load<u32>(row) == this.vmId || <i32>(nowS - load<u32>(row, 4)) > <i32>ROW_TTL_S) continue;
      for (let i = 0; i < t.n; i++) unchecked(this.others[i] += <i32>load<u16>(row + 8 + <usize>(2 * i)));
    }
  }

  /** Changes this VM's count for replica i by delta and publishes its row. */
  add(t: ReplicaTable, i: i32, delta: i32, nowS: u32): void {
    if (i < 0 || i >= t.n) return;
    const v = unchecked(this.local[i]) + delta;
    unchecked(this.local[i] = v < 0 ? 0 : v);
    if (this.shared) this.publish(t, nowS);
  }

  /** Rewrites this VM's row (counts and heartbeat), keeping the other live rows. */
  publish(t: ReplicaTable, nowS: u32): void {
    const n = t.n;
    const rowBytes = 8 + 2 * n;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (!this.haveBlob && !this.fetch()) return;
      // Keep the live rows of other VMs when they are laid out for this table, and the state stamp.
      const p = this.blob.ptr;
      const len = <i32>this.blob.len;
      let keep = 0;
      let oldRows = 0;
      if (len >= HEADER_BYTES && load<u64>(p, SET_HASH_AT) == t.setHash) {
        oldRows = <i32>load<u32>(p, ROWS_AT);
        if (HEADER_BYTES + oldRows * rowBytes != len) oldRows = 0;
      }
      const need = HEADER_BYTES + (oldRows + 1) * rowBytes;
      this.ensureScratch(need);
      const s = this.scratch;
      this.copyStamp(s);
      store<u64>(s, t.setHash, SET_HASH_AT);
      for (let r = 0; r < oldRows; r++) {
        const row = p + <usize>(HEADER_BYTES + r * rowBytes);
        if (load<u32>(row) == this.vmId || <i32>(nowS - load<u32>(row, 4)) > <i32>ROW_TTL_S) continue;
        memory.copy(s + <usize>(HEADER_BYTES + keep * rowBytes), row, <usize>rowBytes);
        keep++;
      }
      const mine = s + <usize>(HEADER_BYTES + keep * rowBytes);
      store<u32>(mine, this.vmId);
      store<u32>(mine, nowS, 4);
      for (let i = 0; i < n; i++) {
        const c = unchecked(this.local[i]);
        store<u16>(mine + 8 + <usize>(2 * i), <u16>(c > 65535 ? 65535 : c));
      }
      store<u32>(s, <u32>(keep + 1), ROWS_AT);
      const total = HEADER_BYTES + (keep + 1) * rowBytes;
      const cas = this.blobCas;
      this.dropBlob();
      if (setShared(KEY_INFLIGHT, s, <usize>total, cas) == WasmResult.Ok) return;
    }
  }

  /**
   * Raises the blob's state stamp to at least (version, seenNs), by CAS,
   * keeping every row: how the VM that polls the control plane announces a
   * new state (after publishing it) or that the control plane answered.
   */
  raiseStamp(version: u64, seenNs: u64): void {
    if (!this.shared) return;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (!this.fetch()) return;
      const len = <i32>this.blob.len;
      const keepsRows = len >= HEADER_BYTES;
      const total = keepsRows ? len : HEADER_BYTES;
      this.ensureScratch(total);
      const s = this.scratch;
      if (keepsRows) memory.copy(s, this.blob.ptr, <usize>len);
      else {
        memory.fill(s, 0, <usize>HEADER_BYTES);
        this.copyStamp(s);
      }
      if (version > this.stampVersion) store<u64>(s, version);
      if (seenNs > this.stampSeenNs) store<u64>(s, seenNs, 8);
      const cas = this.blobCas;
      this.dropBlob();
      if (setShared(KEY_INFLIGHT, s, <usize>total, cas) == WasmResult.Ok) return;
    }
  }

  /** Writes the fetched blob's state stamp (zeros without one; fetch() parsed it) at `to`. */
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

  private dropBlob(): void {
    this.blob.free();
    this.haveBlob = false;
  }
}
