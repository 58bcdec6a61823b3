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
//
// A prompt start alone cannot tell conversations (or documents) that share a
// system prompt apart, and a worker that holds the shared part locally never
// asks for it. So each placement also checkpoints its chain at its deepest
// CHECKPOINT_MIN x 2^j blocks, in a bucket of its own ("prefix_router.depth.",
// [u64 chained hash][u32 replica address hash][u32 vm id]): a worker whose own
// index holds less of a prompt finds, in at most two reads, how much more of
// it another worker placed, and where. One write and two reads at most per
// request, and only while other worker VMs are live.
import { HostBytes, WasmResult, getSharedRaw, setSharedRaw } from "../abi/hostCalls";
import { CharCode } from "../charCode";

/** Blocks of prompt that name a "prompt start": 8 x 64 bytes, about 128 tokens. */
const HOME_DEPTH: i32 = 8;
/** 2^16 buckets: shared-data keys are never deleted, so their number is capped. */
const BUCKET_BITS: u32 = 16;
const PREFIX = "prefix_router.home.";
const CHECKPOINT_PREFIX = "prefix_router.depth.";
/** The shallowest checkpoint, in blocks; the others double it. */
const CHECKPOINT_MIN: i32 = 16;
const CHECKPOINT_BYTES: usize = 16;
const VALUE_BYTES: usize = 28;

@final
export class PrefixHomes {
  /** This VM's id; 0: homes are not shared (no shared data). */
  private readonly vmId: u32;
  private readonly home: BucketKey = new BucketKey(PREFIX);
  private readonly checkpoint: BucketKey = new BucketKey(CHECKPOINT_PREFIX);
  private readonly value: usize = heap.alloc(VALUE_BYTES);
  /**
   * Leading blocks of the prompt the last lookup() found the replica to hold,
   * as far as another VM's placement tells; 0 when this VM placed it (its own
   * index, which has forgotten it since, knows better).
   */
  depth: i32 = 0;
  private readonly bytes: HostBytes = new HostBytes();
  private checkpointReplica: u32 = 0;
  private checkpointOwn: bool = false;

  constructor(vmId: u32) {
    this.vmId = vmId;
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
    const key = this.home;
    key.point(start);
    if (getSharedRaw(key.ptr, key.len, this.bytes) != WasmResult.Ok) {
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
    const key = this.home;
    key.point(start);
    const v = this.value;
    store<u64>(v, start);
    store<u32>(v, replica, 8);
    store<u32>(v, <u32>total, 12);
    store<u64>(v, unchecked(hashes[total - 1]), 16);
    store<u32>(v, this.vmId, 24);
    setSharedRaw(key.ptr, key.len, v, VALUE_BYTES, 0);
  }

  /**
   * The replica another worker VM placed the prompt of `hashes` (`total`
   * blocks) on, as deep as a checkpoint deeper than `known` blocks tells, or
   * 0; `depth` then says how deep. A placement checkpoints only its deepest
   * power of two, so two probes cover a prompt that grew up to twice over
   * since (a conversation's next turn): that depth, and the one below.
   */
  deepest(hashes: StaticArray<u64>, total: i32, known: i32): u32 {
    this.depth = 0;
    if (this.vmId == 0 || total < CHECKPOINT_MIN) return 0;
    let d = deepestCheckpoint(total);
    for (let probe = 0; probe < 2 && d > known; probe++, d >>= 1) {
      if (!this.readCheckpoint(unchecked(hashes[d - 1]))) continue;
      // This VM's own checkpoint says nothing its index does not know better.
      if (this.checkpointOwn) return 0;
      this.depth = d;
      return this.checkpointReplica;
    }
    return 0;
  }

  /** Checkpoints the chain of `hashes` (`total` blocks) as placed on `replica`, unless `known` blocks cover it. */
  storeCheckpoint(hashes: StaticArray<u64>, total: i32, known: i32, replica: u32): void {
    if (this.vmId == 0 || total < CHECKPOINT_MIN) return;
    const d = deepestCheckpoint(total);
    if (d <= known) return;
    const h = unchecked(hashes[d - 1]);
    const key = this.checkpoint;
    key.point(h);
    const v = this.value;
    store<u64>(v, h);
    store<u32>(v, replica, 8);
    store<u32>(v, this.vmId, 12);
    setSharedRaw(key.ptr, key.len, v, CHECKPOINT_BYTES, 0);
  }

  /** Whether the checkpoint of chained hash `h` is there; if so, its replica and whether this VM wrote it. */
  private readCheckpoint(h: u64): bool {
    const key = this.checkpoint;
    key.point(h);
    if (getSharedRaw(key.ptr, key.len, this.bytes) != WasmResult.Ok) {
      this.bytes.free();
      return false;
    }
    const p = this.bytes.ptr;
    const there = this.bytes.len == CHECKPOINT_BYTES && load<u64>(p) == h;
    if (there) {
      this.checkpointReplica = load<u32>(p, 8);
      this.checkpointOwn = load<u32>(p, 12) == this.vmId;
    }
    this.bytes.free();
    return there;
  }
}

/** The deepest checkpoint depth within `total` (>= CHECKPOINT_MIN) blocks: CHECKPOINT_MIN x a power of two. */
@inline function deepestCheckpoint(total: i32): i32 {
  return CHECKPOINT_MIN << (31 - clz<i32>(total / CHECKPOINT_MIN));
}

/** A shared-data key `prefix` + 4 hex digits naming one of 2^BUCKET_BITS buckets, in linear memory. */
@final
class BucketKey {
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
