// Where each prompt start was last sent, shared by the worker VMs of one
// proxy. Each VM keeps its own prefix index; without this, the second request
// of a prompt group that lands on another worker finds nothing in that
// worker's index and is placed afresh, often elsewhere (measured by
// bench:routing: same-group agreement across 4 workers fell to chance).
// One shared-data key per bucket, so the key set stays bounded; a bucket
// holds the last prompt start hashed to it and the replica it went to.
import { HostBytes, WasmResult, getSharedRaw, setSharedRaw } from "../abi/hostCalls";
import { CharCode } from "../charCode";

/** Blocks of prompt that name a "prompt start": 8 x 64 bytes, about 128 tokens. */
export const HOME_DEPTH: i32 = 8;
/** 2^16 buckets: shared-data keys are never deleted, so their number is capped. */
const BUCKET_BITS: u32 = 16;
const PREFIX = "prefix_router.home.";

@final
export class PrefixHomes {
  enabled: bool = false;
  private readonly key: usize;
  private readonly keyLen: usize;
  private readonly value: usize = heap.alloc(12);
  private readonly bytes: HostBytes = new HostBytes();

  constructor() {
    const p = String.UTF8.encode(PREFIX);
    this.keyLen = <usize>p.byteLength + 4;
    this.key = heap.alloc(this.keyLen);
    memory.copy(this.key, changetype<usize>(p), <usize>p.byteLength);
  }

  private setKey(start: u64): void {
    const bucket = <u32>(start >> (64 - BUCKET_BITS));
    const at = this.key + this.keyLen - 4;
    for (let i: u32 = 0; i < 4; i++) {
      const d = (bucket >> ((3 - i) * 4)) & 15;
      store<u8>(at + <usize>i, <u8>(d < 10 ? CharCode._0 + d : CharCode.a - 10 + d));
    }
  }

  /** The 32-bit address hash of the replica this prompt start went to, or 0. */
  lookup(start: u64): u32 {
    if (!this.enabled) return 0;
    this.setKey(start);
    if (getSharedRaw(this.key, this.keyLen, this.bytes) != WasmResult.Ok) {
      this.bytes.free();
      return 0;
    }
    let home: u32 = 0;
    if (this.bytes.len == 12 && load<u64>(this.bytes.ptr) == start) home = load<u32>(this.bytes.ptr, 8);
    this.bytes.free();
    return home;
  }

  /** Records where this prompt start went (last writer wins; a hint, not a lock). */
  store(start: u64, replica: u32): void {
    if (!this.enabled) return;
    this.setKey(start);
    store<u64>(this.value, start);
    store<u32>(this.value, replica, 8);
    setSharedRaw(this.key, this.keyLen, this.value, 12, 0);
  }
}
