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
import { HostBytes, WasmResult, getSharedRaw, setSharedRaw, sharedCas } from "../abi/hostCalls";
import { CharCode } from "../charCode";

const BUCKET_BITS: u32 = 16;
const KEY_PREFIX = "prefix_router.ckpt.";
export const BUCKET_ENTRIES: i32 = 4;
const ENTRY_BYTES: i32 = 16;
const BUCKET_BYTES: i32 = BUCKET_ENTRIES * ENTRY_BYTES;
/** Writers are a few worker threads: a bucket lost this often is left as it is (an index, not a ledger). */
const CAS_ATTEMPTS = 4;

@final
export class SharedCheckpoints {
  /** False without shared data: lookups find nothing, inserts do nothing. */
  readonly on: bool;
  private readonly key: BucketKey = new BucketKey(KEY_PREFIX);
  private readonly bytes: HostBytes = new HostBytes();
  private readonly value: usize = heap.alloc(<usize>BUCKET_BYTES);
  /** The last insert() stored its entry (new, or touched later than before); false when it was touched this second already, or refused. */
  stored: bool = false;

  constructor(on: bool) {
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
    const key = this.key;
    key.point(hash);
    const b = this.bytes;
    if (getSharedRaw(key.ptr, key.len, b) != WasmResult.Ok) {
      b.free();
      return 0;
    }
    const n = entriesIn(b.len);
    let found = 0;
    for (let e = 0; e < n; e++) {
      const p = b.ptr + <usize>(e * ENTRY_BYTES);
      if (load<u64>(p) != hash) continue;
      if (touched !== null) unchecked(touched[at + found] = load<u32>(p, 12));
      unchecked(out[at + found++] = load<u32>(p, 8));
    }
    b.free();
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
    const key = this.key;
    key.point(hash);
    const b = this.bytes;
    const v = this.value;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const r = getSharedRaw(key.ptr, key.len, b);
      if (r != WasmResult.Ok && r != WasmResult.NotFound) {
        b.free();
        return false;
      }
      const cas = r == WasmResult.Ok ? sharedCas : 0;
      const n = entriesIn(b.len);
      let at = -1;
      let oldest = -1;
      let oldestS: u32 = U32.MAX_VALUE;
      for (let e = 0; e < n; e++) {
        const p = b.ptr + <usize>(e * ENTRY_BYTES);
        if (load<u64>(p) == hash && load<u32>(p, 8) == replica) at = e;
        const s = load<u32>(p, 12);
        if (s < oldestS) { oldestS = s; oldest = e; }
      }
      if (at >= 0 && load<u32>(b.ptr + <usize>(at * ENTRY_BYTES), 12) >= nowS) {
        b.free();
        return true; // touched this second already
      }
      let len = n;
      if (at < 0) at = n < BUCKET_ENTRIES ? n : oldest;
      if (at == n) len = n + 1;
      if (n > 0) memory.copy(v, b.ptr, <usize>(n * ENTRY_BYTES));
      b.free();
      const p = v + <usize>(at * ENTRY_BYTES);
      store<u64>(p, hash);
      store<u32>(p, replica, 8);
      store<u32>(p, nowS, 12);
      if (setSharedRaw(key.ptr, key.len, v, <usize>(len * ENTRY_BYTES), cas) == WasmResult.Ok) {
        this.stored = true;
        return true;
      }
    }
    return false;
  }
}

/** Whole entries in a bucket value of `len` bytes (a malformed one counts what fits). */
@inline function entriesIn(len: usize): i32 {
  const n = <i32>(len / <usize>ENTRY_BYTES);
  return n < BUCKET_ENTRIES ? n : BUCKET_ENTRIES;
}

/** A shared-data key `prefix` + 4 hex digits naming one of 2^BUCKET_BITS buckets, in linear memory. */
@final
export class BucketKey {
  readonly ptr: usize;
  readonly len: usize;

  constructor(prefix: string) {
    const p = String.UTF8.encode(prefix);
    this.len = <usize>p.byteLength + 4;
    this.ptr = heap.alloc(this.len);
    memory.copy(this.ptr, changetype<usize>(p), <usize>p.byteLength);
  }

  /** Makes the key name the bucket of hash `h` (its top bits). */
  point(h: u64): void {
    const bucket = <u32>(h >> (64 - BUCKET_BITS));
    const at = this.ptr + this.len - 4;
    for (let i: u32 = 0; i < 4; i++) {
      const d = (bucket >> ((3 - i) * 4)) & 15;
      store<u8>(at + <usize>i, <u8>(d < 10 ? CharCode._0 + d : CharCode.a - 10 + d));
    }
  }
}
