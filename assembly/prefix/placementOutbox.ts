// Placements this gateway made (checkpoint hash, replica address hash, depth
// in blocks), waiting to reach the other gateways through the control plane.
// Each worker VM posts to its own ring on the request path (no host call);
// ticks move the ring into the gateway's outbox in shared data
// ("prefix_router.placements", entries of [u64 hash][u64 replica][u32 depth];
// in a gateway of a fleet the worker VMs that do not poll move it as each
// request is routed, and wake the poller when they find the outbox empty:
// Router.placementsAtOnce, state/reportWake.ts), from which the one VM that
// polls the control plane takes them all. Both are bounded: past
// OUTBOX_CAPACITY the oldest give way (a placement lost is a cache hit
// another gateway may miss, never a wrong route).
import { HostBytes, WasmResult, getShared, setShared, sharedCas } from "../abi/hostCalls";

export const OUTBOX_CAPACITY: i32 = 4096;
const ENTRY_BYTES: i32 = 20;
const KEY = String.UTF8.encode("prefix_router.placements");
const CAS_ATTEMPTS = 8;

@final
export class PlacementOutbox {
  /** False without shared data: placements stay in this VM's ring. */
  private readonly shared: bool;
  private readonly hash: StaticArray<u64> = new StaticArray<u64>(OUTBOX_CAPACITY);
  private readonly replica: StaticArray<u64> = new StaticArray<u64>(OUTBOX_CAPACITY);
  private readonly depth: StaticArray<u32> = new StaticArray<u32>(OUTBOX_CAPACITY);
  private head: i32 = 0;
  private count: i32 = 0;
  private readonly bytes: HostBytes = new HostBytes();
  private scratch: usize = 0;

  constructor(shared: bool) {
    this.shared = shared;
  }

  /** The last flush put placements into an empty outbox: the poller owes no report that will carry them. */
  foundEmpty: bool = false;

  /** Placements in this VM's ring, not yet moved to the gateway's outbox. */
  @inline get pending(): i32 {
    return this.count;
  }

  post(hash: u64, replica: u64, depth: u32): void {
    let at = this.head + this.count;
    if (at >= OUTBOX_CAPACITY) at -= OUTBOX_CAPACITY;
    unchecked(this.hash[at] = hash);
    unchecked(this.replica[at] = replica);
    unchecked(this.depth[at] = depth);
    if (this.count < OUTBOX_CAPACITY) this.count++;
    else this.head = this.head + 1 == OUTBOX_CAPACITY ? 0 : this.head + 1;
  }

  /** Moves this VM's ring to the end of the gateway's outbox (a tick's work). False when shared data kept refusing. */
  flush(): bool {
    this.foundEmpty = false;
    if (!this.shared || this.count == 0) return true;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const b = this.bytes;
      const r = getShared(KEY, b);
      if (r != WasmResult.Ok && r != WasmResult.NotFound) {
        b.free();
        return false;
      }
      const cas = r == WasmResult.Ok ? sharedCas : 0;
      const held = <i32>(b.len / <usize>ENTRY_BYTES);
      // Keep the newest: drop the oldest held, then the oldest of the ring, past capacity.
      const fromRing = this.count < OUTBOX_CAPACITY ? this.count : OUTBOX_CAPACITY;
      const keepHeld = held + fromRing > OUTBOX_CAPACITY ? OUTBOX_CAPACITY - fromRing : held;
      const s = this.buffer();
      if (keepHeld > 0) memory.copy(s, b.ptr + <usize>((held - keepHeld) * ENTRY_BYTES), <usize>(keepHeld * ENTRY_BYTES));
      b.free();
      let at = this.head;
      for (let j = 0; j < fromRing; j++) {
        const p = s + <usize>((keepHeld + j) * ENTRY_BYTES);
        store<u64>(p, unchecked(this.hash[at]));
        store<u64>(p, unchecked(this.replica[at]), 8);
        store<u32>(p, unchecked(this.depth[at]), 16);
        if (++at == OUTBOX_CAPACITY) at = 0;
      }
      if (setShared(KEY, s, <usize>((keepHeld + fromRing) * ENTRY_BYTES), cas) == WasmResult.Ok) {
        this.foundEmpty = held == 0;
        this.head = 0;
        this.count = 0;
        return true;
      }
    }
    return false;
  }

  /**
   * Takes the oldest placements of the gateway (its outbox, after this VM's
   * ring is moved there; without shared data, this VM's ring) into the
   * arrays, as many as the shortest holds; returns how many.
   */
  take(hashes: StaticArray<u64>, replicas: StaticArray<u64>, depths: StaticArray<u32>): i32 {
    let room = hashes.length;
    if (replicas.length < room) room = replicas.length;
    if (depths.length < room) room = depths.length;
    if (!this.shared || !this.flush()) return this.takeRing(hashes, replicas, depths, room);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const b = this.bytes;
      const r = getShared(KEY, b);
      if (r != WasmResult.Ok) {
        b.free();
        return 0;
      }
      const cas = sharedCas;
      const held = <i32>(b.len / <usize>ENTRY_BYTES);
      if (held == 0) {
        b.free();
        return 0;
      }
      const n = held < room ? held : room;
      for (let j = 0; j < n; j++) {
        const p = b.ptr + <usize>(j * ENTRY_BYTES);
        unchecked(hashes[j] = load<u64>(p));
        unchecked(replicas[j] = load<u64>(p, 8));
        unchecked(depths[j] = load<u32>(p, 16));
      }
      const s = this.buffer();
      const rest = held - n;
      if (rest > 0) memory.copy(s, b.ptr + <usize>(n * ENTRY_BYTES), <usize>(rest * ENTRY_BYTES));
      b.free();
      if (setShared(KEY, s, <usize>(rest * ENTRY_BYTES), cas) == WasmResult.Ok) return n;
    }
    return 0;
  }

  private takeRing(hashes: StaticArray<u64>, replicas: StaticArray<u64>, depths: StaticArray<u32>, room: i32): i32 {
    const n = this.count < room ? this.count : room;
    let at = this.head;
    for (let j = 0; j < n; j++) {
      unchecked(hashes[j] = unchecked(this.hash[at]));
      unchecked(replicas[j] = unchecked(this.replica[at]));
      unchecked(depths[j] = unchecked(this.depth[at]));
      if (++at == OUTBOX_CAPACITY) at = 0;
    }
    this.head = at;
    this.count -= n;
    return n;
  }

  /** Room for a whole outbox, allocated once (off the request path: ticks and the poller). */
  private buffer(): usize {
    if (this.scratch == 0) this.scratch = heap.alloc(<usize>(OUTBOX_CAPACITY * ENTRY_BYTES));
    return this.scratch;
  }
}
