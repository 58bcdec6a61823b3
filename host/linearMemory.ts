// A VM's linear memory as the host functions see it (cpp-host's WasmVm getMemory/setWord and
// WasmBase copyToPointerSize): bounds-checked reads and writes, short latin1 strings from a
// small cache, and copies out into memory the module allocates.
import type { HeaderPairs } from './abi.js';
import type { Clock } from './clock.js';
import { copyBytes } from './bytes.js';
import { asciiLower } from './headerMap.js';

const EMPTY = new Uint8Array(0);
const TWO_POW_32 = 4294967296;

/**
 * Node's own latin1 codecs on a Buffer (what Buffer#toString/#write call after their argument
 * checks): decoding a key in place of the memory costs no Buffer object per call.
 */
interface Latin1Codec {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number, length: number): number;
}
if (typeof (Buffer.prototype as unknown as Partial<Latin1Codec>).latin1Slice !== 'function' || typeof (Buffer.prototype as unknown as Partial<Latin1Codec>).latin1Write !== 'function') {
  throw new Error('this Node.js has no Buffer#latin1Slice/latin1Write (the host needs Node 20)');
}

/**
 * Short latin1 strings the module reads again and again (header names and values, shared-data
 * keys) come from a small direct-mapped cache, each hit checked byte by byte: cheaper than a
 * decode (a C++ call and a new string each time), and a Map lookup with a string it saw before
 * reuses that string's hash. Strings are immutable, so a hit is the same value a decode gives.
 */
const STRING_CACHE_SLOTS = 128; // a power of two
const STRING_CACHE_MAX_BYTES = 64;
/**
 * Strings up to this length are written into memory by a JS loop; longer ones by Node's latin1
 * codec (one C++ call, ~80-100 ns whatever the length; the loop costs ~2-4 ns a character).
 */
const SHORT_WRITE_MAX_CHARS = 24;

export class LinearMemory {
  private memory: WebAssembly.Memory | null = null;
  private lastBuffer: ArrayBuffer | SharedArrayBuffer | null = null;
  private u8: Uint8Array = EMPTY;
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private nodeBuf: Buffer & Latin1Codec = Buffer.alloc(0) as Buffer & Latin1Codec;
  /** A shared memory's buffer is never detached by growth, so its views are checked against memory.buffer instead. */
  private sharedMemory = false;
  private readonly strCache: string[] = new Array<string>(STRING_CACHE_SLOTS).fill('');
  /** The bytes each strCache entry was decoded from (STRING_CACHE_MAX_BYTES per slot), to check a hit against. */
  private readonly cacheBytes = new Uint8Array(STRING_CACHE_SLOTS * STRING_CACHE_MAX_BYTES);
  private readonly cacheDv = new DataView(this.cacheBytes.buffer);
  /** asciiLower of strCache's entry, or null until a header name needs it. */
  private readonly lowerCache: Array<string | null> = new Array<string | null>(STRING_CACHE_SLOTS).fill(null);

  /** `alloc`: the module's allocator as cpp-host calls it (0 when it fails). */
  constructor(private readonly alloc: (size: number) => number) {}

  /** The instance's memory, once instantiation made it (the start function touches no memory through the host). */
  attach(memory: WebAssembly.Memory): void {
    this.memory = memory;
    this.sharedMemory = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  }

  /**
   * The memory as bytes. Growth detaches the old ArrayBuffer (its views read as length 0), so
   * the views are rebuilt only then, without reading memory.buffer (a C++ getter) on every call.
   */
  bytes(): Uint8Array {
    if (this.u8.length === 0 || this.sharedMemory) {
      const b = this.memory!.buffer;
      if (b !== this.lastBuffer) {
        this.lastBuffer = b;
        this.u8 = new Uint8Array(b);
        this.dv = new DataView(b);
        this.nodeBuf = Buffer.from(b) as Buffer & Latin1Codec;
      }
    }
    return this.u8;
  }

  /** Bytes at [ptr, ptr+len) copied out, or null when out of bounds. The copy may share its ArrayBuffer with other copies (mind byteOffset). */
  read(ptr: number, len: number): Uint8Array | null {
    ptr >>>= 0;
    len >>>= 0;
    const m = this.bytes();
    if (ptr + len > m.length) return null;
    return copyBytes(m, ptr, len);
  }

  readLatin1(ptr: number, len: number): string | null {
    ptr >>>= 0;
    len >>>= 0;
    const m = this.bytes();
    if (ptr + len > m.length) return null;
    if (len === 0) return '';
    if (len > STRING_CACHE_MAX_BYTES) return this.nodeBuf.latin1Slice(ptr, ptr + len); // decoded in place, no copy
    return this.strCache[this.cachedString(m, ptr, len)];
  }

  /** A header name from the module, lower-cased as Envoy's LowerCaseString does (ASCII only). */
  readHeaderKey(ptr: number, len: number): string | null {
    ptr >>>= 0;
    len >>>= 0;
    const m = this.bytes();
    if (ptr + len > m.length) return null;
    if (len === 0) return '';
    if (len > STRING_CACHE_MAX_BYTES) return asciiLower(this.nodeBuf.latin1Slice(ptr, ptr + len));
    const slot = this.cachedString(m, ptr, len);
    let lower = this.lowerCache[slot];
    if (lower === null) lower = this.lowerCache[slot] = asciiLower(this.strCache[slot]);
    return lower;
  }

  /**
   * The string-cache slot holding the latin1 decoding of [ptr, ptr+len) (1..STRING_CACHE_MAX_BYTES
   * bytes, in bounds). A hit is checked against a copy of the slot's bytes, four at a time
   * (a third of the cost of comparing charCodeAt per byte).
   */
  private cachedString(m: Uint8Array, ptr: number, len: number): number {
    // Hash the length, the first byte and the last 8 (where keys and endpoints differ).
    let h = len * 31 + m[ptr];
    for (let i = len > 8 ? len - 8 : 0; i < len; i++) h = (Math.imul(h, 31) + m[ptr + i]) | 0;
    const slot = (h ^ (h >>> 7)) & (STRING_CACHE_SLOTS - 1);
    const base = slot * STRING_CACHE_MAX_BYTES;
    if (this.strCache[slot].length === len) {
      const dv = this.dv;
      const cdv = this.cacheDv;
      let i = 0;
      while (i + 4 <= len && dv.getInt32(ptr + i, true) === cdv.getInt32(base + i, true)) i += 4;
      if (i + 4 > len) {
        const cb = this.cacheBytes;
        while (i < len && m[ptr + i] === cb[base + i]) i++;
        if (i === len) return slot;
      }
    }
    this.strCache[slot] = this.nodeBuf.latin1Slice(ptr, ptr + len);
    this.lowerCache[slot] = null;
    this.cacheBytes.set(m.subarray(ptr, ptr + len), base);
    return slot;
  }

  inBounds(ptr: number, len: number): boolean {
    return (ptr >>> 0) + (len >>> 0) <= this.bytes().length;
  }

  write(ptr: number, bytes: Uint8Array): boolean {
    ptr >>>= 0;
    const m = this.bytes();
    if (ptr + bytes.length > m.length) return false;
    m.set(bytes, ptr);
    return true;
  }

  writeU32(ptr: number, v: number): boolean {
    ptr >>>= 0;
    const m = this.bytes();
    if (ptr + 4 > m.length) return false;
    this.dv.setUint32(ptr, v >>> 0, true);
    return true;
  }

  writeU64(ptr: number, v: bigint): boolean {
    ptr >>>= 0;
    const m = this.bytes();
    if (ptr + 8 > m.length) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }

  readU32(ptr: number): number | null {
    ptr >>>= 0;
    const m = this.bytes();
    if (ptr + 4 > m.length) return null;
    return this.dv.getUint32(ptr, true);
  }

  /** cpp-host copyToPointerSize: allocate (only when non-empty), copy, then write pointer and size through the out-pointers. */
  copyOut(bytes: Uint8Array, ptrPtr: number, sizePtr: number): boolean {
    let p = 0;
    if (bytes.length > 0) {
      p = this.alloc(bytes.length);
      if (p === 0) return false;
      this.write(p, bytes);
    }
    if (!this.writeU32(ptrPtr, p)) return false;
    if (!this.writeU32(sizePtr, bytes.length)) return false;
    return true;
  }

  /** copyOut of a string's latin1 bytes (one byte per UTF-16 unit, its low 8 bits, as Buffer.from(s, 'latin1')), without a Buffer in between. */
  copyOutLatin1(s: string, ptrPtr: number, sizePtr: number): boolean {
    const n = s.length;
    let p = 0;
    if (n > 0) {
      p = this.alloc(n);
      if (p === 0) return false;
      this.putLatin1(this.bytes(), s, p); // mem(): the allocation may have grown memory
    }
    if (!this.writeU32(ptrPtr, p)) return false;
    if (!this.writeU32(sizePtr, n)) return false;
    return true;
  }

  /**
   * copyOut of a header map in the proxy-wasm pairs format (what serializePairs
   * builds), written straight into the module's allocation: latin1 bytes, as
   * copyOutLatin1, with no Buffer per key and value.
   */
  copyOutPairs(pairs: HeaderPairs, ptrPtr: number, sizePtr: number): boolean {
    const n = pairs.length;
    let size = 4 + 8 * n;
    for (let i = 0; i < n; i++) size += pairs[i][0].length + pairs[i][1].length + 2;
    const p = this.alloc(size);
    if (p === 0) return false;
    const m = this.bytes(); // the allocation may have grown memory
    const dv = this.dv;
    dv.setUint32(p, n, true);
    let o = p + 4 + 8 * n;
    for (let i = 0; i < n; i++) {
      const k = pairs[i][0];
      const v = pairs[i][1];
      dv.setUint32(p + 4 + 8 * i, k.length, true);
      dv.setUint32(p + 8 + 8 * i, v.length, true);
      o = this.putLatin1(m, k, o);
      m[o++] = 0;
      o = this.putLatin1(m, v, o);
      m[o++] = 0;
    }
    if (!this.writeU32(ptrPtr, p)) return false;
    if (!this.writeU32(sizePtr, size)) return false;
    return true;
  }

  /** Writes a string's latin1 bytes at `at` (in bounds: the caller allocated them); returns the position after. */
  private putLatin1(m: Uint8Array, s: string, at: number): number {
    const n = s.length;
    if (n <= SHORT_WRITE_MAX_CHARS) {
      for (let i = 0; i < n; i++) m[at + i] = s.charCodeAt(i); // a Uint8Array store keeps the low 8 bits, as latin1 does
    } else {
      this.nodeBuf.latin1Write(s, at, n);
    }
    return at + n;
  }

  /** Writes a u64 time in ns; from the clock's double when it has one (no BigInt per call). */
  writeNowNs(ptr: number, c: Clock): boolean {
    if (c.nowNsNumber === undefined) return this.writeU64(ptr, c.nowNs());
    ptr >>>= 0;
    const m = this.bytes();
    if (ptr + 8 > m.length) return false;
    const ns = c.nowNsNumber();
    const hi = Math.floor(ns / TWO_POW_32);
    this.dv.setUint32(ptr, ns - hi * TWO_POW_32, true);
    this.dv.setUint32(ptr + 4, hi, true);
    return true;
  }

  /** The UTF-8 text at [ptr, ptr+len), decoded in place (the caller checked the bounds). */
  utf8(ptr: number, len: number): string {
    ptr >>>= 0;
    this.bytes(); // the views follow a grown memory
    return this.nodeBuf.toString('utf8', ptr, ptr + (len >>> 0));
  }
}
