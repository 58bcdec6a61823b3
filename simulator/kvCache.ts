// A block pool with a prefix cache, shaped like vLLM V1's KV cache manager:
// - every block is either in use (refCount > 0, pinned) or in the free queue;
// - a free block may still hold a cached hash and be found again ("touched") until it is
//   reused; allocation takes the LEAST recently freed block and drops its hash (LRU eviction);
// - a finished request returns its blocks tail first, so its tail is evicted before its head.

const NONE = -1;

export class KvBlockPool {
  readonly numBlocks: number;
  private readonly refCount: Int32Array;
  private readonly hashOf: Float64Array; // NaN when the block holds no cached hash
  // Doubly linked free queue over block ids; head is evicted first.
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = NONE;
  private tail = NONE;
  private freeCount = 0;
  private readonly cached = new Map<number, number>(); // hash -> block id
  /** Cached blocks whose hash was dropped to make room (for tests and metrics). */
  evictions = 0;

  constructor(numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`numBlocks must be a positive integer, got ${numBlocks}`);
    this.numBlocks = numBlocks;
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Float64Array(numBlocks).fill(NaN);
    this.prev = new Int32Array(numBlocks).fill(NONE);
    this.next = new Int32Array(numBlocks).fill(NONE);
    for (let id = 0; id < numBlocks; id++) this.pushBack(id);
  }

  get numFree(): number { return this.freeCount; }
  get numCached(): number { return this.cached.size; }
  usage(): number { return 1 - this.freeCount / this.numBlocks; }

  /** Ids of the longest run of leading hashes present in the cache, at most maxBlocks. */
  longestPrefix(hashes: readonly number[], maxBlocks: number): number[] {
    const out: number[] = [];
    const limit = Math.min(maxBlocks, hashes.length);
    for (let i = 0; i < limit; i++) {
      const id = this.cached.get(hashes[i]!);
      if (id === undefined) break;
      out.push(id);
    }
    return out;
  }

  /** How many of these blocks sit in the free queue (touching them takes them out). */
  countFree(ids: readonly number[]): number {
    let n = 0;
    for (const id of ids) if (this.refCount[id] === 0) n++;
    return n;
  }

  /** Pins cached blocks found by longestPrefix. */
  touch(ids: readonly number[]): void {
    for (const id of ids) {
      if (this.refCount[id] === 0) this.unlink(id);
      this.refCount[id]!++;
    }
  }

  /** Takes n blocks from the head of the free queue, evicting their hashes. Caller checks numFree. */
  allocate(n: number): number[] {
    if (n > this.freeCount) throw new RangeError(`asked for ${n} blocks, ${this.freeCount} free`);
    const out: number[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const id = this.head;
      this.unlink(id);
      const h = this.hashOf[id]!;
      if (!Number.isNaN(h)) {
        if (this.cached.get(h) === id) this.cached.delete(h);
        this.hashOf[id] = NaN;
        this.evictions++;
      }
      this.refCount[id] = 1;
      out[i] = id;
    }
    return out;
  }

  /** Registers a computed full block under its hash; a hash already cached keeps its block. */
  register(id: number, hash: number): void {
    if (this.cached.has(hash) || !Number.isNaN(this.hashOf[id]!)) return;
    this.cached.set(hash, id);
    this.hashOf[id] = hash;
  }

  /** Unpins a request's blocks (in request order); blocks reaching 0 join the free queue tail first. */
  release(ids: readonly number[]): void {
    for (let i = ids.length - 1; i >= 0; i--) {
      const id = ids[i]!;
      if (--this.refCount[id]! === 0) this.pushBack(id);
    }
  }

  isCached(hash: number): boolean { return this.cached.has(hash); }
  refCountOf(id: number): number { return this.refCount[id]!; }

  private pushBack(id: number): void {
    this.prev[id] = this.tail;
    this.next[id] = NONE;
    if (this.tail === NONE) this.head = id; else this.next[this.tail] = id;
    this.tail = id;
    this.freeCount++;
  }

  private unlink(id: number): void {
    const p = this.prev[id]!, n = this.next[id]!;
    if (p === NONE) this.head = n; else this.next[p] = n;
    if (n === NONE) this.tail = p; else this.prev[n] = p;
    this.prev[id] = NONE;
    this.next[id] = NONE;
    this.freeCount--;
  }
}
