// Turns the prompt's text, fed in pieces, into chained block hashes:
// h[i] = chainBlock(h[i-1], blockDigest(block i)), h[-1] = xxh64(model). A block's hash
// therefore names the whole prefix up to it, as vLLM's own block hashes do.
// Only full blocks count (vLLM caches only full blocks); the partial tail is
// kept apart so a short prompt still has a key for rendezvous placement.
//
// Every block is hashed, but only the chained hashes at checkpoint depths
// are kept: depths (1-based block counts) 1..DENSE_BLOCKS, then every
// CHECKPOINT_STRIDE-th. A chain's hash at depth d names all of blocks 0..d-1,
// so the checkpoints locate a prompt's cached prefix to within a stride
// (256 tokens) while what is kept, and searched, grows 16 times slower than
// the prompt: 250 checkpoints for 60k tokens.
import { blockDigest, chainBlock, xxh64 } from "./hash";

/** Every block up to this depth is a checkpoint (short prompts keep full resolution). */
export const DENSE_BLOCKS: i32 = 16;
/** Past DENSE_BLOCKS, a checkpoint every this many blocks (log2: CHECKPOINT_SHIFT). */
export const CHECKPOINT_STRIDE: i32 = 16;
const CHECKPOINT_SHIFT: i32 = 4;

/** Whether depth `d` (>= 1 blocks) is a checkpoint depth. */
// @ts-ignore: decorator
@inline export function isCheckpoint(d: i32): bool {
  return d <= DENSE_BLOCKS || (d & (CHECKPOINT_STRIDE - 1)) == 0;
}

/** Position of checkpoint depth `d` among the checkpoints (0-based). */
// @ts-ignore: decorator
@inline export function checkpointIndex(d: i32): i32 {
  return d <= DENSE_BLOCKS ? d - 1 : (d >> CHECKPOINT_SHIFT) + (DENSE_BLOCKS - 2);
}

/** Depth in blocks of the k-th checkpoint (0-based). */
// @ts-ignore: decorator
@inline export function checkpointDepth(k: i32): i32 {
  return k < DENSE_BLOCKS ? k + 1 : (k - (DENSE_BLOCKS - 2)) << CHECKPOINT_SHIFT;
}

/** Checkpoints within the first `blocks` blocks. */
// @ts-ignore: decorator
@inline export function checkpointsWithin(blocks: i32): i32 {
  return blocks <= DENSE_BLOCKS ? (blocks < 0 ? 0 : blocks) : (blocks >> CHECKPOINT_SHIFT) + (DENSE_BLOCKS - 1);
}

@final
export class BlockHasher {
  readonly blockBytes: i32;
  readonly maxBlocks: i32;
  /** Chained hashes at the checkpoint depths of the full blocks hashed so far (checkpointIndex order). */
  readonly hashes: StaticArray<u64>;
  /** Full blocks hashed so far. */
  count: i32 = 0;
  private buf: usize;
  private fill: i32 = 0;
  private chain: u64 = 0;
  private seed: u64 = 0;

  constructor(blockBytes: i32, maxBlocks: i32) {
    this.blockBytes = blockBytes;
    this.maxBlocks = maxBlocks;
    this.hashes = new StaticArray<u64>(checkpointsWithin(maxBlocks));
    this.buf = heap.alloc(<usize>blockBytes);
  }

  reset(seed: u64): void {
    this.count = 0;
    this.fill = 0;
    this.seed = seed;
    this.chain = seed;
  }

  /** Bytes of the partial block waiting for more input (0 at a block boundary). */
  @inline get pending(): i32 {
    return this.fill;
  }

  /**
   * Appends a block whose content is digested (blockDigest, or the one-pass
   * prompt path's equal of it), at a block boundary and while not full.
   */
  @inline pushBlock(content: u64): void {
    const h = chainBlock(this.chain, content);
    const d = ++this.count;
    if (isCheckpoint(d)) unchecked(this.hashes[checkpointIndex(d)] = h);
    this.chain = h;
  }

  /**
   * The last block's chained hash (the seed before any): for loops that
   * append many blocks with the chain in a local and commit() at the end.
   * Through pushBlock's fields every block waited for the last one's store
   * to come back from memory, which put the chain's full latency on the
   * critical path: 8 KB of blocks 3.4 -> 2.2 us (build/ microbenchmark).
   */
  @inline get lastHash(): u64 {
    return this.chain;
  }

  /** Ends such a loop: `count` blocks in all now, the last one's hash `last`. */
  @inline commit(count: i32, last: u64): void {
    this.count = count;
    this.chain = last;
  }

  /** True once `maxBlocks` blocks are hashed: later input changes nothing. */
  @inline get full(): bool {
    return this.count >= this.maxBlocks;
  }

  feedByte(b: u8): void {
    if (this.count >= this.maxBlocks) return;
    store<u8>(this.buf + <usize>this.fill, b);
    if (++this.fill == this.blockBytes) this.flush();
  }

  /** Feeds `len` raw bytes from linear memory. */
  feed(ptr: usize, len: i32): void {
    const bb = this.blockBytes;
    if (this.count >= this.maxBlocks || len <= 0) return;
    // Complete a block split across pieces; only it is copied.
    if (this.fill > 0) {
      const room = bb - this.fill;
      const k = len < room ? len : room;
      memory.copy(this.buf + <usize>this.fill, ptr, <usize>k);
      this.fill += k;
      ptr += <usize>k;
      len -= k;
      if (this.fill < bb) return;
      this.flush();
    }
    // Whole blocks are hashed where they lie (before, a piece that began
    // mid-block was copied block by block to its end: chat with line breaks,
    // whose decoded text arrives in pieces, paid that on every block).
    if (len >= bb) {
      const hashes = this.hashes;
      const max = this.maxBlocks;
      let n = this.count;
      let last = this.chain;
      while (len >= bb && n < max) {
        last = chainBlock(last, blockDigest(ptr, <usize>bb));
        if (isCheckpoint(++n)) unchecked(hashes[checkpointIndex(n)] = last);
        ptr += <usize>bb;
        len -= bb;
      }
      this.commit(n, last);
    }
    if (len > 0 && this.count < this.maxBlocks) {
      memory.copy(this.buf, ptr, <usize>len);
      this.fill = len;
    }
  }

  private flush(): void {
    this.pushBlock(blockDigest(this.buf, <usize>this.blockBytes));
    this.fill = 0;
  }

  /** Checkpoints among the blocks hashed so far. */
  @inline get checkpoints(): i32 {
    return checkpointsWithin(this.count);
  }

  /** A key for the prompt's start: the first block's hash, or the partial text's when no block is full. */
  firstKey(): u64 {
    if (this.count > 0) return unchecked(this.hashes[0]);
    return xxh64(this.buf, <usize>this.fill, this.seed);
  }

  /** Bytes the hasher can still take before it is full. */
  @inline get room(): i32 {
    return (this.maxBlocks - this.count) * this.blockBytes - this.fill;
  }

  /** Bytes of prompt text seen (full blocks and the partial tail), up to the hashing limit. */
  @inline get textBytes(): i32 {
    return this.count * this.blockBytes + this.fill;
  }
}
