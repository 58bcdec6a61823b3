// Where each prompt start was last sent, shared by the worker VMs of one
// proxy. Each VM keeps its own prefix index; without this, the second request
// of a prompt group that lands on another worker finds nothing in that
// worker's index and is placed afresh, often elsewhere (measured by
// bench:routing: same-group agreement across 4 workers fell to chance).
// One shared-data key per bucket, so the key set stays bounded; a bucket
// holds the last prompt start hashed to it, the replica it went to, and how
// deep that prompt's chain went (its block count and last block's hash), so a
// worker that finds the same chain can tell how much of it the replica holds.
//
// Layout of a bucket, little-endian: [u64 prompt start][u32 replica address
// hash][u32 blocks][u64 last block's chained hash][u32 vm id of the writer].
import { HostBytes, WasmResult, getSharedRaw, setSharedRaw } from "../abi/hostCalls";
import { CharCode } from "../charCode";

/** Blocks of prompt that name a "prompt start": 8 x 64 bytes, about 128 tokens. */
export const HOME_DEPTH: i32 = 8;
/** 2^16 buckets: shared-data keys are never deleted, so their number is capped. */
const BUCKET_BITS: u32 = 16;
const PREFIX = "prefix_router.home.";
const VALUE_BYTES: usize = 28;

@final
export class PrefixHomes {
  /** This VM's id; 0: homes are not shared (no shared data). */
  private readonly vmId: u32;
  private readonly key: usize;
  private readonly keyLen: usize;
  private readonly value: usize = heap.alloc(VALUE_BYTES);
  /**
   * Leading blocks of the prompt the last lookup() found the replica to hold,
   * as far as another VM's placement tells; 0 when this VM placed it (its own
   * index, which has forgotten it since, knows better).
   */
  depth: i32 = 0;
  private readonly bytes: HostBytes = new HostBytes();

  constructor(vmId: u32) {
    this.vmId = vmId;
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

  /**
   * The 32-bit address hash of the replica the prompt start of `hashes`
   * (`total` chained block hashes; the start is block min(total,
   * HOME_DEPTH) - 1) went to, or 0; `depth` then says how many of the
   * leading blocks that replica holds: all the chain placed there shares.
   */
  lookup(hashes: StaticArray<u64>, total: i32): u32 {
    if (this.vmId == 0) return 0;
    const startBlocks = total < HOME_DEPTH ? total : HOME_DEPTH;
    const start = unchecked(hashes[startBlocks - 1]);
    this.setKey(start);
    if (getSharedRaw(this.key, this.keyLen, this.bytes) != WasmResult.Ok) {
      this.bytes.free();
      return 0;
    }
    let home: u32 = 0;
    const p = this.bytes.ptr;
    if (this.bytes.len == VALUE_BYTES && load<u64>(p) == start) {
      home = load<u32>(p, 8);
      // The start's hash is chained: the blocks up to it are the same. The
      // placed chain's end, if this prompt has it, extends that.
      const placed = <i32>load<u32>(p, 12);
      const deep = placed > startBlocks && placed <= total && unchecked(hashes[placed - 1]) == load<u64>(p, 16);
      this.depth = load<u32>(p, 24) == this.vmId ? 0 : deep ? placed : startBlocks;
    }
    this.bytes.free();
    return home;
  }

  /** Records where the prompt of `hashes` (`total` blocks) went (last writer wins; a hint, not a lock). */
  store(hashes: StaticArray<u64>, total: i32, replica: u32): void {
    if (this.vmId == 0) return;
    const start = unchecked(hashes[(total < HOME_DEPTH ? total : HOME_DEPTH) - 1]);
    this.setKey(start);
    const v = this.value;
    store<u64>(v, start);
    store<u32>(v, replica, 8);
    store<u32>(v, <u32>total, 12);
    store<u64>(v, unchecked(hashes[total - 1]), 16);
    store<u32>(v, this.vmId, 24);
    setSharedRaw(this.key, this.keyLen, v, VALUE_BYTES, 0);
  }
}
