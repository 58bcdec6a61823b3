// Which replica holds which prompt checkpoint, shared by every worker VM of
// one gateway through proxy-wasm shared data (and, through the control
// plane, by the other gateways' placements this gateway learns). A request
// that lands on any worker VM finds what the gateway placed of its prompt,
// however deep.
//
// One shared-data key per bucket ("prefix_router.ckpt." + 4 hex digits, the
// top 16 bits of the checkpoint hash), so the key set is bounded (2^16) and a
// lookup is one read of at most 64 bytes. A bucket holds up to
// BUCKET_ENTRIES entries, little-endian:
//   [u64 checkpoint hash][u32 replica address hash (low 32 bits)][u32 last touched, s]
// An insert is a read and a CAS write of its bucket; a full bucket gives up
// its least recently touched entry. Capacity: 2^18 (checkpoint, replica)
// entries, 16 MiB of shared data at most.
import { BUCKET_ENTRIES, ENTRY_BYTES, SharedBucket } from "./sharedBucket";

const KEY_TEMPLATE = "prefix_router.ckpt.0000";
/** Writers are a few worker threads: a bucket lost this often is left as it is (an index, not a ledger). */
const CAS_ATTEMPTS = 4;

@final
export class SharedCheckpoints extends SharedBucket {
  /** False without shared data: lookups find nothing, inserts do nothing. */
  readonly on: bool;
  /** The last insert() stored its entry (new, or touched later than before); false when it was touched this second already, or refused. */
  stored: bool = false;

  constructor(on: bool) {
    super(KEY_TEMPLATE);
    this.on = on;
  }

  /**
   * The replicas the index says hold checkpoint `hash` (32-bit address
   * hashes): written to out[at..at+BUCKET_ENTRIES), and when each was last
   * touched (s) to `touched` at the same places if given; how many returned.
   * One shared-data read.
   */
  holders(hash: u64, out: StaticArray<u32>, at: i32, touched: StaticArray<u32> | null = null): i32 {
    if (!this.on) return 0;
    const v = this.entries;
    const n = this.read(hash);
    let found = 0;
    for (let e = 0; e < n; e++) {
      const p = v + <usize>(e * ENTRY_BYTES);
      if (load<u64>(p) != hash) continue;
      if (touched !== null) unchecked(touched[at + found] = load<u32>(p, 12));
      unchecked(out[at + found++] = load<u32>(p, 8));
    }
    return found;
  }

  /**
   * Records that `replica` (32-bit address hash) holds checkpoint `hash`, as
   * of `nowS`: refreshes its entry, or adds one in place of the bucket's
   * least recently touched. False when shared data kept refusing the write.
   */
  insert(hash: u64, replica: u32, nowS: u32): bool {
    this.stored = false;
    if (!this.on) return false;
    const v = this.entries;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const n = this.read(hash);
      if (n < 0) return false;
      let at = -1;
      let oldest = -1;
      let oldestS: u32 = U32.MAX_VALUE;
      for (let e = 0; e < n; e++) {
        const p = v + <usize>(e * ENTRY_BYTES);
        if (load<u64>(p) == hash && load<u32>(p, 8) == replica) at = e;
        const s = load<u32>(p, 12);
        if (s < oldestS) { oldestS = s; oldest = e; }
      }
      if (at >= 0 && load<u32>(v + <usize>(at * ENTRY_BYTES), 12) >= nowS) return true; // touched this second already
      let len = n;
      if (at < 0) at = n < BUCKET_ENTRIES ? n : oldest;
      if (at == n) len = n + 1;
      const p = v + <usize>(at * ENTRY_BYTES);
      store<u64>(p, hash);
      store<u32>(p, replica, 8);
      store<u32>(p, nowS, 12);
      if (this.write(len)) {
        this.stored = true;
        return true;
      }
    }
    return false;
  }
}

