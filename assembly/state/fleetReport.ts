// What this gateway tells the rest of the fleet with each long poll
// (plugin/STATE_FORMAT.md, "Gateway fleet"): its id, the cursor of the
// placements it has learned, its work and the content it has written per
// replica, and the placements its worker VMs made since the last report. The control plane decodes it in
// control-plane/fleetWire.ts.
//
// Only the VM holding the poll lease sends reports; the placements of every
// worker VM reach it through the gateway's outbox in shared data
// (prefix/placementOutbox.ts), which it drains into own* before build().
// The id and the cursor live in shared data too, so they survive the lease
// moving to another VM.
import { HostBytes, WasmResult, getShared, randomU64, setShared, sharedCas } from "../abi/hostCalls";
import { CONTENT_UNIT, WorkCounts } from "./gatewayBlob";
import { ReplicaTable } from "./replicaTable";
import { fnv1a32 } from "./stateWire";

export const REPORT_CONTENT_TYPE = "application/vnd.prefix-router.fleet-report.v1";
const REPORT_MAGIC: u32 = 0x52465250;
/** Format 2 carries content records; format 1, for a control plane that refuses 2, does not. */
const REPORT_FORMAT: u16 = 2;
const REPORT_FORMAT_WITHOUT_CONTENT: u16 = 1;
/** Format 1's header; format 2's adds [u32 contentCount][u32 reserved 0]. */
const HEADER_BYTES: usize = 32;
const CONTENT_HEADER_BYTES: usize = 8;
const WORK_BYTES: usize = 16;
const CONTENT_BYTES: usize = 12;
const PLACEMENT_BYTES: usize = 20;
const MAX_REPORT_WORK: i32 = 4096;
/** [u64 gateway id][u64 placements seen]. */
const KEY_FLEET_ID = String.UTF8.encode("prefix_router.fleet.id");
/** Attempts of a CAS loop; contention is between a few worker threads. */
const CAS_ATTEMPTS = 8;

/** Placements one report carries at most: the gateway's outbox holds as many (the control plane takes up to 8192). */
export const OWN_PLACEMENTS: i32 = 4096;

@final
export class FleetReport {
  /** The gateway's new placements, for the poller to drain the prefix locator's outbox into before build(). */
  readonly ownHashes: StaticArray<u64> = new StaticArray<u64>(OWN_PLACEMENTS);
  readonly ownReplicas: StaticArray<u64> = new StaticArray<u64>(OWN_PLACEMENTS);
  readonly ownDepths: StaticArray<u32> = new StaticArray<u32>(OWN_PLACEMENTS);
  private readonly bytes: HostBytes = new HostBytes();
  /** The encoded report of the last build(); valid until the next one. */
  ptr: usize = 0;
  len: usize = 0;
  /** Placements the last build() carried. */
  placements: i32 = 0;
  /** FNV-1a of the work records of the last build(): a report whose work and placements are both unchanged is no news. */
  private workDigest: u32 = 0;
  /** False once the control plane refused a report with content records: send format 1 from then on. */
  withContent: bool = true;

  /**
   * Encodes the report of the poll about to start: the gateway's `own` new
   * placements (own*), and per replica of `t` its work (queued prefill
   * tokens, decode work) and the content it has written (`work` null: none
   * counted). Sets ptr/len. Returns whether it tells the fleet anything the
   * previous report did not: placements, or a change of work (content grows
   * with the work that comes with it, and is no news alone).
   */
  build(t: ReplicaTable, own: i32, work: WorkCounts | null): bool {
    const id = this.identity();
    const np = own < 0 ? 0 : own > OWN_PLACEMENTS ? OWN_PLACEMENTS : own;
    let nw = 0, nc = 0;
    if (work !== null) {
      const q = work.queued, d = work.decodeWork, c = work.written;
      for (let i = 0; i < t.n && i < MAX_REPORT_WORK; i++) {
        if (unchecked(q[i]) > 0 || unchecked(d[i]) > 0) nw++;
        if (this.withContent && unchecked(c[i]) >= CONTENT_UNIT) nc++;
      }
    }
    if (this.ptr != 0) heap.free(this.ptr);
    const header = this.withContent ? HEADER_BYTES + CONTENT_HEADER_BYTES : HEADER_BYTES;
    const size = header + <usize>nw * WORK_BYTES + <usize>nc * CONTENT_BYTES + <usize>np * PLACEMENT_BYTES + 4;
    const p = heap.alloc(size);
    store<u32>(p, REPORT_MAGIC);
    store<u16>(p, this.withContent ? REPORT_FORMAT : REPORT_FORMAT_WITHOUT_CONTENT, 4);
    store<u16>(p, 0, 6);
    store<u64>(p, id, 8);
    store<u64>(p, this.placementsSeen, 16);
    store<u32>(p, <u32>nw, 24);
    store<u32>(p, <u32>np, 28);
    if (this.withContent) {
      store<u32>(p, <u32>nc, 32);
      store<u32>(p, 0, 36);
    }
    let o = p + header;
    // Where nw or nc counted anything, they counted it from `work`: it is there.
    const counts = changetype<WorkCounts>(work);
    if (nw > 0) {
      const q = counts.queued, d = counts.decodeWork;
      for (let i = 0, w = 0; i < t.n && w < nw; i++) {
        const qi = unchecked(q[i]), di = unchecked(d[i]);
        if (!(qi > 0 || di > 0)) continue;
        store<u64>(o, unchecked(t.addressHash[i]));
        store<u32>(o, clampU32(qi), 8);
        store<u32>(o, clampU32(di), 12);
        o += WORK_BYTES;
        w++;
      }
    }
    const digest = fnv1a32(p + header, <i32>(o - p - header));
    const news = np > 0 || digest != this.workDigest;
    this.workDigest = digest;
    if (nc > 0) {
      const c = counts.written;
      for (let i = 0, w = 0; i < t.n && w < nc; i++) {
        const units = unchecked(c[i]) / CONTENT_UNIT;
        if (units < 1) continue;
        store<u64>(o, unchecked(t.addressHash[i]));
        store<u32>(o, clampU32(units), 8);
        o += CONTENT_BYTES;
        w++;
      }
    }
    for (let i = 0; i < np; i++) {
      store<u64>(o, unchecked(this.ownHashes[i]));
      store<u64>(o, unchecked(this.ownReplicas[i]), 8);
      store<u32>(o, unchecked(this.ownDepths[i]), 16);
      o += PLACEMENT_BYTES;
    }
    store<u32>(o, fnv1a32(p, <i32>(o - p)));
    this.ptr = p;
    this.len = size;
    this.placements = np;
    return news;
  }

  /** The cursor of the placements this gateway has learned (the last section 1's `through`). */
  get placementsSeen(): u64 {
    const b = this.bytes;
    let seen: u64 = 0;
    if (getShared(KEY_FLEET_ID, b) == WasmResult.Ok && b.len == 16) seen = load<u64>(b.ptr, 8);
    b.free();
    return seen;
  }

  /** Records the cursor of the placements just learned. */
  learned(through: u64): void {
    const id = this.identity();
    store<u64>(SCRATCH, id);
    store<u64>(SCRATCH, through, 8);
    setShared(KEY_FLEET_ID, SCRATCH, 16, 0);
  }

  /** This gateway's id: random, made by the first VM that asks and kept in shared data for all of them. */
  identity(): u64 {
    const b = this.bytes;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const r = getShared(KEY_FLEET_ID, b);
      if (r == WasmResult.Ok && b.len == 16 && load<u64>(b.ptr) != 0) {
        const id = load<u64>(b.ptr);
        b.free();
        return id;
      }
      const cas = r == WasmResult.Ok ? sharedCas : 0;
      b.free();
      let id = randomU64();
      // A host without randomness: the clock and the VM's memory layout still tell two gateways apart.
      if (id == 0) id = <u64>changetype<usize>(this) ^ 0x9e3779b97f4a7c15;
      store<u64>(SCRATCH, id);
      store<u64>(SCRATCH, 0, 8);
      if (setShared(KEY_FLEET_ID, SCRATCH, 16, cas) == WasmResult.Ok && cas != 0) return id;
      // Created without a CAS (the key was absent): read back what won.
    }
    return 1;
  }
}

const SCRATCH: usize = memory.data(16);

@inline function clampU32(v: f64): u32 {
  return v >= 4294967295.0 ? 0xffffffff : <u32>v;
}
