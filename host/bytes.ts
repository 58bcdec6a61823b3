// Copies out of a module's linear memory into bytes the host keeps (shared-data values, bodies).

/**
 * Copies land in plain Uint8Arrays carved from shared slabs, as Node's Buffer pool does: a
 * fresh ArrayBuffer per copy costs ~1 us (off-heap allocation, external-memory accounting),
 * the copy itself ~0.1 us. Up to V8's on-heap typed-array size a plain slice is cheaper still;
 * past COPY_SLAB_MAX_BYTES a copy gets its own buffer, so a long-lived value pins at most a
 * slab 8x its size.
 */
const ON_HEAP_COPY_MAX_BYTES = 64;
const COPY_SLAB_BYTES = 8192;
const COPY_SLAB_MAX_BYTES = 1024;
let copySlab = new ArrayBuffer(COPY_SLAB_BYTES);
let copySlabUsed = 0;

/** A copy of m[ptr, ptr+len) (in bounds). It may share its ArrayBuffer with other copies: mind byteOffset. */
export function copyBytes(m: Uint8Array, ptr: number, len: number): Uint8Array {
  if (len <= ON_HEAP_COPY_MAX_BYTES || len > COPY_SLAB_MAX_BYTES) return m.slice(ptr, ptr + len);
  if (copySlabUsed + len > COPY_SLAB_BYTES) {
    copySlab = new ArrayBuffer(COPY_SLAB_BYTES);
    copySlabUsed = 0;
  }
  const out = new Uint8Array(copySlab, copySlabUsed, len);
  out.set(m.subarray(ptr, ptr + len));
  copySlabUsed += (len + 7) & ~7; // 8-byte aligned, so a DataView over a value reads aligned
  return out;
}

/** Up to this many bytes a JS loop copies faster than set(subarray()) (which makes a view first). */
const LOOP_COPY_MAX_BYTES = 16;

/** dst[0, len) = src[ptr, ptr+len) (both in bounds; different buffers). */
export function copyInto(dst: Uint8Array, src: Uint8Array, ptr: number, len: number): void {
  if (len <= LOOP_COPY_MAX_BYTES) {
    for (let i = 0; i < len; i++) dst[i] = src[ptr + i];
  } else {
    dst.set(src.subarray(ptr, ptr + len));
  }
}
