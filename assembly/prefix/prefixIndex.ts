// The approximate prefix-cache index: which replica (slot) has recently been
// sent which block hash. One pool of (block, slot) entries for all replicas,
// bounded by `capacity`, so memory stays fixed however many distinct prompts
// arrive; each slot keeps its own LRU list and its own quota (its KV size in
// blocks), like vLLM evicting a replica's least recently used free blocks.
// The chains the router records are a prompt's checkpoints (blockHasher.ts),
// each entry standing for the blocks since the one before, and quotas and
// recency count those blocks, so a slot holds as much of long prompts as
// the replica's cache does, not 15 times as much.
//
// Layout: structure-of-arrays in StaticArrays, an open-addressing table with
// linear probing and backward-shift deletion (no tombstones, so probe lengths
// stay short under constant churn). Entry 0 is the null entry. A table cell
// holds the entry id in its low bits and a fingerprint of the key above them,
// so a probe that misses (most do: most replicas hold none of a prompt)
// touches one cache line, not the entry's too.
import { checkpointDepth } from "./blockHasher";
import { mix64 } from "./hash";

export const MAX_SLOTS: i32 = 4096;
/**
 * A chain whose start sits in the newest 1/2^REFRESH_SHIFT of its slot's
 * quota is not moved to the front again when a request re-sends it: only its
 * new blocks are linked in behind it, so a hot prompt costs one probe per new
 * block instead of one per block of the whole prompt. Half the quota: with
 * 1/8, moving stale chains pushed the others back past the window in turn and
 * 87% of records were full ones (bench:filter, 8 KB prompts, 16 replicas); at
 * 1/2 it is 1%. The cost is that the index may forget a chain re-sent at
 * intervals between half and all of the quota; bench:routing's hit rates were
 * the same at 1/8, 1/4 and 1/2 (sp-150x5: 0.322, 0.327, 0.322).
 */
const REFRESH_SHIFT: u32 = 1;
/**
 * Per (prompt start, slot): how many blocks the last request starting so held
 * and how many it recorded, tried first by matchedBlocks. Requests of a group
 * share the same prefix length, and a conversation's next turn holds exactly
 * what the last one recorded, so a guess usually settles the count in two
 * probes instead of a binary search's eight (each a cold cache line).
 * 4096 direct-mapped hints (48 KB); a clash only costs the search.
 */
const HINT_BITS: u32 = 12;

@final
export class PrefixIndex {
  readonly capacity: u32;
  private readonly mask: u32;
  /** Low bits of a table cell that hold the entry id; the rest is the fingerprint. */
  private readonly entryBits: u32;
  private readonly entryMask: u32;
  private readonly table: StaticArray<u32>;
  private readonly hashes: StaticArray<u64>;
  private readonly slots: StaticArray<u16>;
  private readonly prev: StaticArray<u32>;
  private readonly next: StaticArray<u32>;
  /** slotClock of the entry's slot when it was put where it is (see age()). */
  private readonly stamps: StaticArray<u32>;
  /** Blocks of the prompt each entry stands for (depthOf). */
  private readonly spans: StaticArray<u16>;
  /** A chain's i-th hash is its i-th checkpoint (blockHasher.ts), not its i-th block. */
  private readonly checkpoints: bool;
  private freeHead: u32 = 0;
  private used: u32 = 0;
  private readonly slotHead: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly slotTail: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly slotCount: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  /** Blocks the slot's entries stand for, against its quota (slotCap, in blocks). */
  private readonly slotBlocks: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly slotCap: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly hintKeys: StaticArray<u64> = new StaticArray<u64>(1 << HINT_BITS);
  private readonly hintHeld: StaticArray<u16> = new StaticArray<u16>(1 << HINT_BITS);
  private readonly hintRecorded: StaticArray<u16> = new StaticArray<u16>(1 << HINT_BITS);
  /** Blocks ever linked into each slot's list, wherever they went in it. */
  private readonly slotClock: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);

  /**
   * `checkpoints`: the chains recorded are checkpoint hashes, each standing
   * for the blocks since the one before; quotas and recency count blocks.
   * Otherwise every hash is one block.
   */
  constructor(capacity: u32, checkpoints: bool = false) {
    this.capacity = capacity;
    this.checkpoints = checkpoints;
    // Load factor <= 0.5 keeps linear probes short.
    let size: u32 = 1;
    while (size < capacity * 2) size <<= 1;
    this.mask = size - 1;
    const entryBits = 32 - clz<u32>(capacity);
    this.entryBits = entryBits;
    this.entryMask = <u32>((<u64>1 << entryBits) - 1);
    this.table = new StaticArray<u32>(<i32>size);
    this.hashes = new StaticArray<u64>(<i32>capacity + 1);
    this.slots = new StaticArray<u16>(<i32>capacity + 1);
    this.prev = new StaticArray<u32>(<i32>capacity + 1);
    this.next = new StaticArray<u32>(<i32>capacity + 1);
    this.stamps = new StaticArray<u32>(<i32>capacity + 1);
    this.spans = new StaticArray<u16>(<i32>capacity + 1);
    // Free list threads through `next`, entries 1..capacity.
    for (let e: u32 = 1; e <= capacity; e++) unchecked(this.next[e] = e < capacity ? e + 1 : 0);
    this.freeHead = capacity > 0 ? 1 : 0;
    for (let s = 0; s < MAX_SLOTS; s++) unchecked(this.slotCap[s] = capacity);
  }

  /** Blocks the first `i` hashes of a chain stand for. */
  @inline private depthOf(i: i32): u32 {
    return this.checkpoints ? (i > 0 ? <u32>checkpointDepth(i - 1) : 0) : <u32>i;
  }

  /** The key's mixed hash: its low bits pick the home cell, its high word gives the fingerprint. */
  @inline private mixed(hash: u64, slot: u32): u64 {
    return mix64(hash ^ (<u64>(slot + 1) * 0x9E3779B97F4A7C15));
  }

  @inline private fingerprint(m: u64): u32 {
    return <u32>(m >> 32) << this.entryBits;
  }

  @inline private home(hash: u64, slot: u32): u32 {
    return <u32>this.mixed(hash, slot) & this.mask;
  }

  /** Entry holding (hash, slot), or 0. */
  find(hash: u64, slot: u32): u32 {
    const m = this.mixed(hash, slot);
    const fp = this.fingerprint(m);
    const em = this.entryMask;
    let i = <u32>m & this.mask;
    while (true) {
      const t = unchecked(this.table[i]);
      if (t == 0) return 0;
      if ((t & ~em) == fp) {
        const e = t & em;
        if (unchecked(this.hashes[e]) == hash && <u32>unchecked(this.slots[e]) == slot) return e;
      }
      i = (i + 1) & this.mask;
    }
    return 0;
  }

  /**
   * How many of the first `n` blocks `slot` holds, counting from the start.
   * What a slot holds of one chain is always a prefix of it: every record()
   * that touches block j of a chain touches blocks 0..j-1 after it (they share
   * the chained hash), so a block is never less recent than a later one and
   * LRU eviction takes a chain from its end. So the count is found by binary
   * search: O(log n) probes instead of one per matched block.
   */
  matchedBlocks(hashes: StaticArray<u64>, n: i32, slot: u32): i32 {
    if (n <= 0 || unchecked(this.slotCount[slot]) == 0) return 0;
    if (this.find(unchecked(hashes[0]), slot) == 0) return 0;
    // The slot holds at least lo and at most hi of the blocks.
    let lo = 1;
    let hi = n;
    const hk = this.mixed(unchecked(hashes[0]), slot);
    const h = <i32>(<u32>hk & ((1 << HINT_BITS) - 1));
    if (unchecked(this.hintKeys[h]) == hk) {
      let g = <i32>unchecked(this.hintRecorded[h]);
      for (let k = 0; k < 2 && lo < hi; k++) {
        if (g > lo && g <= hi) {
          if (this.find(unchecked(hashes[g - 1]), slot) != 0) lo = g;
          else hi = g - 1;
        }
        // Held up to the guess: one more probe tells whether it is exact.
        if (g == lo && lo < hi) {
          if (this.find(unchecked(hashes[lo]), slot) != 0) lo++;
          else hi = lo;
        }
        g = <i32>unchecked(this.hintHeld[h]);
      }
    }
    if (lo < hi && this.find(unchecked(hashes[hi - 1]), slot) != 0) return hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.find(unchecked(hashes[mid - 1]), slot) != 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Records that `slot` now holds the first `n` blocks; block 0 ends most
   * recent, so a prompt's tail is evicted first. `held` is how many leading
   * blocks the slot was found to hold (matchedBlocks), 0 if unknown.
   */
  record(hashes: StaticArray<u64>, n: i32, slot: u32, held: i32 = 0): void {
    if (unchecked(this.slotCap[slot]) == 0 || n <= 0) return;
    const hk = this.mixed(unchecked(hashes[0]), slot);
    const h = <i32>(<u32>hk & ((1 << HINT_BITS) - 1));
    unchecked(this.hintKeys[h] = hk);
    unchecked(this.hintHeld[h] = <u16>(held < 0 ? 0 : held > 0xffff ? 0xffff : held));
    unchecked(this.hintRecorded[h] = <u16>(n > 0xffff ? 0xffff : n));
    if (held > 0 && held <= n) {
      const window = unchecked(this.slotCap[slot]) >> REFRESH_SHIFT;
      let at = this.find(unchecked(hashes[held - 1]), slot);
      if (at != 0 && this.age(at, slot) >= window) {
        // Ages never decrease along a chain. If the chain's start is past the
        // window, the whole chain moves to the front; else the blocks from the
        // first one past the window move, right behind the last recent one (a
        // prompt's start stays recent while its many continuations age). New
        // blocks then go behind block held-1. Moving a hot 128-block chain
        // block by block cost ~20 us on 0.65% of requests (bench:filter, 8 KB,
        // 16 replicas), most of the slowest 1%; moveChain splices runs.
        const last = at;
        const first = this.find(unchecked(hashes[0]), slot);
        if (first == 0) at = 0;
        else if (this.age(first, slot) >= window) {
          if (this.moveChain(hashes, 0, held, slot, 0) == 0) at = 0;
        } else {
          let lo = 1; // blocks [0, lo) are recent
          let hi = held - 1; // blocks [hi, held) are old
          while (lo < hi) {
            const mid = (lo + hi) >> 1;
            const e = this.find(unchecked(hashes[mid]), slot);
            if (e != 0 && this.age(e, slot) < window) lo = mid + 1;
            else hi = mid;
          }
          const behind = this.find(unchecked(hashes[lo - 1]), slot);
          if (behind == 0 || this.moveChain(hashes, lo, held, slot, behind) == 0) at = 0;
        }
        if (at != 0) at = last;
      }
      if (at != 0) {
        // Recent enough: leave the held blocks where they are, new ones go right behind them.
        for (let i = held; i < n && at != 0; i++) at = this.insertBehind(unchecked(hashes[i]), slot, at, this.depthOf(i + 1) - this.depthOf(i));
        return;
      }
    }
    for (let i = n - 1; i >= 0; i--) this.insert(unchecked(hashes[i]), slot, this.depthOf(i + 1) - this.depthOf(i));
  }

  /**
   * Puts blocks [from, to) of a chain, all held by `slot`, in order right
   * behind entry `at`, as recent as it, or at the front (at == 0), newest
   * first. Blocks already linked one after another (a chain recorded in one
   * go stays so until something is linked into its middle) move as one run:
   * a find per run and a step along `next` per block, instead of a find, an
   * unlink and a link per block. Returns block to-1's entry, or 0 when a
   * block is not held.
   */
  private moveChain(hashes: StaticArray<u64>, from: i32, to: i32, slot: u32, at: u32): u32 {
    const c0 = unchecked(this.slotClock[slot]);
    const front = at == 0;
    const behindStamp = front ? 0 : unchecked(this.stamps[at]);
    let i = from;
    while (i < to) {
      const first = this.find(unchecked(hashes[i]), slot);
      // (first == at only if two blocks' 64-bit hashes collide: not moved onto itself)
      if (first == 0 || first == at) return 0;
      let last = first;
      const top = c0 + this.depthOf(to);
      unchecked(this.stamps[first] = front ? top - this.depthOf(i) : behindStamp);
      i++;
      while (i < to) {
        const e = unchecked(this.next[last]);
        if (e == 0 || e == at || unchecked(this.hashes[e]) != unchecked(hashes[i])) break;
        unchecked(this.stamps[e] = front ? top - this.depthOf(i) : behindStamp);
        last = e;
        i++;
      }
      this.unlinkRun(first, last, slot);
      this.linkRun(first, last, slot, at);
      at = last;
    }
    unchecked(this.slotClock[slot] = c0 + this.depthOf(to) - this.depthOf(from));
    return at;
  }

  /** Links unlinked entry `e` in right behind `at`, as recent as it (it moved whatever was behind `at` back by one). */
  @inline private linkBehind(e: u32, slot: u32, at: u32): void {
    this.linkRun(e, e, slot, at);
    unchecked(this.stamps[e] = unchecked(this.stamps[at]));
    unchecked(this.slotClock[slot] += <u32>unchecked(this.spans[e]));
  }

  /**
   * An upper bound on how many blocks are ahead of `e` in its slot's list:
   * each entry linked in since e was placed moved it back by at most the
   * blocks it stands for.
   */
  @inline private age(e: u32, slot: u32): u32 {
    return unchecked(this.slotClock[slot]) - unchecked(this.stamps[e]);
  }

  /** Puts (hash, slot), standing for `span` blocks, at the front of the slot's list. */
  insert(hash: u64, slot: u32, span: u32 = 1): void {
    let e = this.find(hash, slot);
    if (e != 0) {
      this.unlink(e, slot);
      this.pushFront(e, slot);
      return;
    }
    e = this.allocate(hash, slot, 0, span);
    if (e != 0) this.pushFront(e, slot);
  }

  /** Links (hash, slot) in right behind entry `at`, as recent as it; returns the entry, or 0 when there was no room. */
  private insertBehind(hash: u64, slot: u32, at: u32, span: u32): u32 {
    let e = this.find(hash, slot);
    if (e != 0) return e; // already held (a hash collision, or pressure reordered it): leave it
    e = this.allocate(hash, slot, at, span);
    if (e == 0) return 0;
    this.linkBehind(e, slot, at);
    return e;
  }

  /**
   * A new entry for (hash, slot), standing for `span` blocks, in the table,
   * not yet in any list; 0 when making room in the slot's quota would evict
   * `keep`. An entry larger than the whole quota still goes in, alone.
   */
  private allocate(hash: u64, slot: u32, keep: u32, span: u32): u32 {
    while (unchecked(this.slotCount[slot]) > 0 && unchecked(this.slotBlocks[slot]) + span > unchecked(this.slotCap[slot])) {
      const tail = unchecked(this.slotTail[slot]);
      if (tail == 0 || tail == keep) return 0;
      this.remove(tail);
    }
    if (this.freeHead == 0 && !this.evictForSpace(slot, keep)) return 0;
    const e = this.freeHead;
    this.freeHead = unchecked(this.next[e]);
    unchecked(this.hashes[e] = hash);
    unchecked(this.slots[e] = <u16>slot);
    const m = this.mixed(hash, slot);
    let i = <u32>m & this.mask;
    while (unchecked(this.table[i]) != 0) i = (i + 1) & this.mask;
    unchecked(this.table[i] = this.fingerprint(m) | e);
    unchecked(this.spans[e] = <u16>span);
    unchecked(this.slotCount[slot] += 1);
    unchecked(this.slotBlocks[slot] += span);
    this.used++;
    return e;
  }

  /** The pool is full: take the least recent entry of this slot, else of the fullest slot (never `keep`). */
  private evictForSpace(slot: u32, keep: u32): bool {
    let victim = slot;
    if (unchecked(this.slotCount[slot]) == 0) {
      let most: u32 = 0;
      for (let s = 0; s < MAX_SLOTS; s++) {
        const c = unchecked(this.slotCount[s]);
        if (c > most) { most = c; victim = <u32>s; }
      }
      if (most == 0) return false;
    }
    const tail = unchecked(this.slotTail[victim]);
    if (tail == keep) return false;
    this.remove(tail);
    return true;
  }

  private remove(e: u32): void {
    const slot = <u32>unchecked(this.slots[e]);
    this.unlink(e, slot);
    // Backward-shift deletion.
    const em = this.entryMask;
    let i = this.home(unchecked(this.hashes[e]), slot);
    while ((unchecked(this.table[i]) & em) != e) i = (i + 1) & this.mask;
    let j = i;
    while (true) {
      j = (j + 1) & this.mask;
      const t = unchecked(this.table[j]);
      if (t == 0) break;
      const f = t & em;
      const k = this.home(unchecked(this.hashes[f]), <u32>unchecked(this.slots[f]));
      if (((j - k) & this.mask) >= ((j - i) & this.mask)) {
        unchecked(this.table[i] = t);
        i = j;
      }
    }
    unchecked(this.table[i] = 0);
    unchecked(this.next[e] = this.freeHead);
    this.freeHead = e;
    unchecked(this.slotCount[slot] -= 1);
    unchecked(this.slotBlocks[slot] -= <u32>unchecked(this.spans[e]));
    this.used--;
  }

  @inline private pushFront(e: u32, slot: u32): void {
    const clock = unchecked(this.slotClock[slot]) + <u32>unchecked(this.spans[e]);
    unchecked(this.slotClock[slot] = clock);
    unchecked(this.stamps[e] = clock);
    this.linkRun(e, e, slot, 0);
  }

  @inline private unlink(e: u32, slot: u32): void {
    this.unlinkRun(e, e, slot);
  }

  /**
   * Links the unlinked entries from `first` to `last` (linked one after
   * another) into `slot`'s list right behind entry `at`, or at its head when
   * `at` is 0. Stamps are the caller's.
   */
  @inline private linkRun(first: u32, last: u32, slot: u32, at: u32): void {
    const after = at != 0 ? unchecked(this.next[at]) : unchecked(this.slotHead[slot]);
    unchecked(this.prev[first] = at);
    unchecked(this.next[last] = after);
    if (at != 0) unchecked(this.next[at] = first);
    else unchecked(this.slotHead[slot] = first);
    if (after != 0) unchecked(this.prev[after] = last);
    else unchecked(this.slotTail[slot] = last);
  }

  /** Takes the entries from `first` to `last` (linked one after another) out of `slot`'s list, leaving their inner links. */
  @inline private unlinkRun(first: u32, last: u32, slot: u32): void {
    const p = unchecked(this.prev[first]);
    const n = unchecked(this.next[last]);
    if (p != 0) unchecked(this.next[p] = n);
    else unchecked(this.slotHead[slot] = n);
    if (n != 0) unchecked(this.prev[n] = p);
    else unchecked(this.slotTail[slot] = p);
  }


  /**
   * For specs: whether `slot`'s LRU list is whole (links agree both ways, the
   * head and tail are its ends, it holds slotCount entries, all of this slot).
   */
  listIsWhole(slot: u32): bool {
    let e = unchecked(this.slotHead[slot]);
    let prev: u32 = 0;
    let count: u32 = 0;
    while (e != 0) {
      if (unchecked(this.prev[e]) != prev || <u32>unchecked(this.slots[e]) != slot || this.find(unchecked(this.hashes[e]), slot) == 0) return false;
      if (++count > this.capacity) return false;
      prev = e;
      e = unchecked(this.next[e]);
    }
    return prev == unchecked(this.slotTail[slot]) && count == unchecked(this.slotCount[slot]);
  }

  /** Sets a slot's quota in blocks, evicting its least recent entries above it. */
  setSlotCapacity(slot: u32, blocks: u32): void {
    unchecked(this.slotCap[slot] = blocks);
    while (unchecked(this.slotBlocks[slot]) > blocks) this.remove(unchecked(this.slotTail[slot]));
  }

  /** Forgets everything a slot holds (its replica left). */
  clearSlot(slot: u32): void {
    while (unchecked(this.slotCount[slot]) > 0) this.remove(unchecked(this.slotTail[slot]));
  }

  @inline countOf(slot: u32): u32 {
    return unchecked(this.slotCount[slot]);
  }

  @inline get size(): u32 {
    return this.used;
  }
}
