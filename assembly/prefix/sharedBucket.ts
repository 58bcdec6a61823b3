// A bucket of a bounded shared-data table: the shared checkpoint index
// (sharedCheckpoints.ts) and the shared prefix demand (prefixDemand.ts) each
// keep their entries in 2^BUCKET_BITS keys, a fixed prefix and 4 hex digits
// (the top bits of the entry's hash), so the key set is bounded and a lookup
// is one read of at most BUCKET_ENTRIES 16-byte entries. Each table lays out
// its own entries (the first 8 bytes are the hash) and chooses which to
// replace; this reads a bucket into linear memory and writes it back by CAS.
import { HostBytes, WasmResult, getSharedRaw, setSharedRaw, sharedCas } from "../abi/hostCalls";
import { CharCode } from "../charCode";

const BUCKET_BITS: u32 = 16;
export const BUCKET_ENTRIES: i32 = 4;
export const ENTRY_BYTES: i32 = 16;
const BUCKET_BYTES: i32 = BUCKET_ENTRIES * ENTRY_BYTES;

/** The bucket of one hash at a time, under the shared-data key `template`, whose last 4 characters read() replaces with its hex digits. */
export class SharedBucket {
  /** The key, UTF-8, its last 4 bytes the bucket's hex digits. */
  private readonly key: ArrayBuffer;
  private readonly bytes: HostBytes = new HostBytes();
  /** The entries read() found, to change and write() back. */
  readonly entries: usize = heap.alloc(<usize>BUCKET_BYTES);
  private cas: u32 = 0;

  constructor(template: string) {
    this.key = String.UTF8.encode(template);
  }

  /** Reads the bucket of hash `h` into `entries` (a malformed value: the whole entries that fit); how many, or -1 when shared data refused. */
  read(h: u64): i32 {
    const key = changetype<usize>(this.key);
    const len = <usize>this.key.byteLength;
    const bucket = <u32>(h >> (64 - BUCKET_BITS));
    for (let i: u32 = 0; i < 4; i++) {
      const d = (bucket >> ((3 - i) * 4)) & 15;
      store<u8>(key + len - 4 + <usize>i, <u8>(d < 10 ? CharCode._0 + d : CharCode.a - 10 + d));
    }
    const b = this.bytes;
    const r = getSharedRaw(key, len, b);
    let n = -1;
    if (<u32>r <= <u32>WasmResult.NotFound) { // Ok, or NotFound
      this.cas = sharedCas; // 0 when not found: the write creates the key
      n = <i32>(b.len / <usize>ENTRY_BYTES);
      if (n > BUCKET_ENTRIES) n = BUCKET_ENTRIES;
      memory.copy(this.entries, b.ptr, <usize>(n * ENTRY_BYTES));
    }
    b.free();
    return n;
  }

  /** Writes the first n `entries` back to the bucket last read, unless another writer changed it since; whether written. */
  write(n: i32): bool {
    return setSharedRaw(changetype<usize>(this.key), <usize>this.key.byteLength, this.entries, <usize>(n * ENTRY_BYTES), this.cas) == WasmResult.Ok;
  }
}
