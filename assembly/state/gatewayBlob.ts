// The one shared-data record every request reads (key prefix_router.inflight,
// layout in sharedKeys.ts and plugin/sharedData.ts): the stamp of the newest
// published state, then one row per worker VM of its in-flight counts and a
// heartbeat. One read per request serves both the state delivery (the stamp)
// and the in-flight counters (the rows); each rewrites only its own part, by
// CAS, keeping the other's.
import { HostBytes, WasmResult, getShared, setShared, sharedCas } from "../abi/hostCalls";
import { KEY_INFLIGHT } from "./sharedKeys";

/** A row not refreshed for this long belongs to a VM that is gone (live VMs beat every second). */
const ROW_TTL_S: u32 = 10;
const CAS_ATTEMPTS = 8;
const STAMP_BYTES: i32 = 16;
const SET_HASH_AT: usize = 16;
const ROWS_AT: usize = 24;
const HEADER_BYTES: i32 = 28;

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
   * Adds the counts of other VMs' live rows to out[0..n), when the fetched
   * rows are laid out for the replica set `setHash`. Returns how many such
   * rows there were: the other worker VMs routing for this gateway.
   */
  addOtherRows(setHash: u64, n: i32, vmId: u32, nowS: u32, out: StaticArray<i32>): i32 {
    const p = this.bytes.ptr;
    const len = <i32>this.bytes.len;
    if (len < HEADER_BYTES || load<u64>(p, SET_HASH_AT) != setHash) return 0;
    const rows = <i32>load<u32>(p, ROWS_AT);
    const rowBytes = 8 + 2 * n;
    if (HEADER_BYTES + rows * rowBytes != len) return 0;
    let live = 0;
    for (let r = 0; r < rows; r++) {
      const row = p + <usize>(HEADER_BYTES + r * rowBytes);
      if (load<u32>(row) == vmId || <i32>(nowS - load<u32>(row, 4)) > <i32>ROW_TTL_S) continue;
      live++;
      for (let i = 0; i < n; i++) unchecked(out[i] += <i32>load<u16>(row + 8 + <usize>(2 * i)));
    }
    return live;
  }

  /**
   * Rewrites VM `vmId`'s row with counts[0..n) and heartbeat `nowS`, keeping
   * the stamp and the other live rows laid out for `setHash`.
   */
  writeRow(setHash: u64, n: i32, vmId: u32, nowS: u32, counts: StaticArray<i32>): void {
    const rowBytes = 8 + 2 * n;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (!this.fetched && !this.fetch()) return;
      const p = this.bytes.ptr;
      const len = <i32>this.bytes.len;
      let keep = 0;
      let oldRows = 0;
      if (len >= HEADER_BYTES && load<u64>(p, SET_HASH_AT) == setHash) {
        oldRows = <i32>load<u32>(p, ROWS_AT);
        if (HEADER_BYTES + oldRows * rowBytes != len) oldRows = 0;
      }
      const need = HEADER_BYTES + (oldRows + 1) * rowBytes;
      this.ensureScratch(need);
      const s = this.scratch;
      this.copyStamp(s);
      store<u64>(s, setHash, SET_HASH_AT);
      for (let r = 0; r < oldRows; r++) {
        const row = p + <usize>(HEADER_BYTES + r * rowBytes);
        if (load<u32>(row) == vmId || <i32>(nowS - load<u32>(row, 4)) > <i32>ROW_TTL_S) continue;
        memory.copy(s + <usize>(HEADER_BYTES + keep * rowBytes), row, <usize>rowBytes);
        keep++;
      }
      const mine = s + <usize>(HEADER_BYTES + keep * rowBytes);
      store<u32>(mine, vmId);
      store<u32>(mine, nowS, 4);
      for (let i = 0; i < n; i++) {
        const c = unchecked(counts[i]);
        store<u16>(mine + 8 + <usize>(2 * i), <u16>(c > 65535 ? 65535 : c));
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
