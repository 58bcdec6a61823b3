// Thin, allocation-light wrappers over the raw proxy-wasm 0.2.x imports.
// The raw declarations come from @solo-io/proxy-runtime (they are correct there);
// its higher-level wrappers are not used: in 0.1.8 the shared-data wrappers are
// wired backwards, onConfigure passes a size where a pointer is due, httpCall
// does not compile on AssemblyScript 0.27, and every context creation builds
// debug strings (see README, "Why our own ABI layer").
import * as imports from "@solo-io/proxy-runtime/assembly/imports";

export const enum WasmResult {
  Ok = 0, NotFound = 1, BadArgument = 2, SerializationFailure = 3, ParseFailure = 4,
  InvalidMemoryAccess = 6, Empty = 7, CasMismatch = 8, InternalFailure = 10, Unimplemented = 12,
}
export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum HeaderMap { RequestHeaders = 0, RequestTrailers = 1, ResponseHeaders = 2, ResponseTrailers = 3, HttpCallResponseHeaders = 6 }
export const enum BufferType { RequestBody = 0, ResponseBody = 1, HttpCallResponseBody = 4, VmConfiguration = 6, PluginConfiguration = 7 }
export const enum MetricType { Counter = 0, Gauge = 1, Histogram = 2 }
export const enum FilterHeaders { Continue = 0, StopIteration = 1 }
export const enum FilterData { Continue = 0, StopIterationAndBuffer = 1, StopIterationNoBuffer = 3 }

// Out-parameters the host writes through: one static 16-byte scratch area.
const OUT: usize = memory.data(16);
@inline function outPtr(): usize { return load<usize>(OUT); }
@inline function outSize(): usize { return load<usize>(OUT, 4); }

/** A block of bytes the host allocated through our `malloc`; release with `free()`. */
@unmanaged
@final
export class HostBytes {
  ptr: usize = 0;
  len: usize = 0;
  @inline free(): void {
    if (this.ptr != 0) hostFree(this.ptr);
    this.ptr = 0;
    this.len = 0;
  }
}

/**
 * Memory the host asks for (malloc) to hand data in. A request reads a few
 * such buffers (header map, body, shared data), each freed once read, and at
 * most three at a time: fixed slots serve those without the heap allocator;
 * larger ones, or more at once, come from the heap.
 */
// @ts-ignore: decorator
@inline const SLOT_BYTES: usize = 16384;
// @ts-ignore: decorator
@inline const SLOTS: u32 = 4;
const SLAB: usize = memory.data(<i32>(SLOT_BYTES * SLOTS), 16);
let slotsInUse: u32 = 0;

export function hostAlloc(size: usize): usize {
  const free = ~slotsInUse & ((1 << SLOTS) - 1);
  if (size <= SLOT_BYTES && free != 0) {
    const i = ctz(free);
    slotsInUse |= 1 << i;
    return SLAB + <usize>i * SLOT_BYTES;
  }
  return heap.alloc(size);
}

/** Frees what hostAlloc returned. */
export function hostFree(ptr: usize): void {
  if (ptr >= SLAB && ptr < SLAB + SLOT_BYTES * <usize>SLOTS) slotsInUse &= ~(<u32>1 << <u32>((ptr - SLAB) / SLOT_BYTES));
  else heap.free(ptr);
}

export function log(level: LogLevel, message: string): void {
  const buf = String.UTF8.encode(message);
  imports.proxy_log(<usize>level, changetype<usize>(buf), buf.byteLength);
}

export function nowNs(): u64 {
  imports.proxy_get_current_time_nanoseconds(OUT);
  return load<u64>(OUT);
}

export function setTickPeriodMs(ms: u32): void {
  imports.proxy_set_tick_period_milliseconds(ms);
}

/** Reads a whole buffer (body, configuration, http-call body) into host-allocated memory. */
export function getBuffer(type: BufferType, start: u32, length: u32, out: HostBytes): WasmResult {
  store<usize>(OUT, 0);
  store<usize>(OUT, 0, 4);
  const r = <WasmResult>imports.proxy_get_buffer_bytes(<i32>type, start, length, OUT, OUT + 4);
  out.ptr = r == WasmResult.Ok ? outPtr() : 0;
  out.len = r == WasmResult.Ok ? outSize() : 0;
  return r;
}

export function getBufferSize(type: BufferType): i64 {
  const r = imports.proxy_get_buffer_status(<i32>type, OUT, OUT + 8);
  return r == WasmResult.Ok ? <i64>load<u32>(OUT) : -1;
}

/** Value of a header (values of repeated headers joined by ","), or NOT_FOUND. `name` is UTF-8. */
export function getHeader(map: HeaderMap, name: ArrayBuffer, out: HostBytes): WasmResult {
  store<usize>(OUT, 0);
  store<usize>(OUT, 0, 4);
  const r = <WasmResult>imports.proxy_get_header_map_value(<i32>map, changetype<usize>(name), name.byteLength, OUT, OUT + 4);
  out.ptr = r == WasmResult.Ok ? outPtr() : 0;
  out.len = r == WasmResult.Ok ? outSize() : 0;
  return r;
}

/** Sets a header to one value, replacing every value it had. Name and value are UTF-8. */
export function replaceHeader(map: HeaderMap, name: ArrayBuffer, value: ArrayBuffer): WasmResult {
  return <WasmResult>imports.proxy_replace_header_map_value(<i32>map, changetype<usize>(name), name.byteLength, changetype<usize>(value), value.byteLength);
}

export function addHeader(map: HeaderMap, name: ArrayBuffer, value: ArrayBuffer): WasmResult {
  return <WasmResult>imports.proxy_add_header_map_value(<i32>map, changetype<usize>(name), name.byteLength, changetype<usize>(value), value.byteLength);
}

export function addHeaderRaw(map: HeaderMap, name: ArrayBuffer, valuePtr: usize, valueLen: usize): WasmResult {
  return <WasmResult>imports.proxy_add_header_map_value(<i32>map, changetype<usize>(name), name.byteLength, valuePtr, valueLen);
}

/** Removes every value of a header (the host matches the name case-insensitively). */
export function removeHeader(map: HeaderMap, name: ArrayBuffer): WasmResult {
  return <WasmResult>imports.proxy_remove_header_map_value(<i32>map, changetype<usize>(name), name.byteLength);
}

/** Serialized header map (proxy-wasm pairs format) of a map, for scanning every pair. */
export function getHeaderPairs(map: HeaderMap, out: HostBytes): WasmResult {
  store<usize>(OUT, 0);
  store<usize>(OUT, 0, 4);
  const r = <WasmResult>imports.proxy_get_header_map_pairs(<i32>map, OUT, OUT + 4);
  out.ptr = r == WasmResult.Ok ? outPtr() : 0;
  out.len = r == WasmResult.Ok ? outSize() : 0;
  return r;
}

/** `retryAfterS` >= 0 adds a `retry-after` header with that many seconds. */
export function sendLocalResponse(status: u32, details: string, body: string, contentType: string, retryAfterS: i32 = -1): WasmResult {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const pairs = retryAfterS < 0
    ? serializePairs2("content-type", contentType, "x-prefix-router-error", details)
    : serializePairs([
      String.UTF8.encode("content-type"), String.UTF8.encode(contentType),
      String.UTF8.encode("x-prefix-router-error"), d,
      String.UTF8.encode("retry-after"), String.UTF8.encode(retryAfterS.toString()),
    ]);
  return <WasmResult>imports.proxy_send_local_response(status, changetype<usize>(d), d.byteLength,
    changetype<usize>(b), b.byteLength, changetype<usize>(pairs), pairs.byteLength, -1);
}

/** Serializes two header pairs in the proxy-wasm map format. */
export function serializePairs2(k1: string, v1: string, k2: string, v2: string): ArrayBuffer {
  const keys: StaticArray<ArrayBuffer> = [String.UTF8.encode(k1), String.UTF8.encode(v1), String.UTF8.encode(k2), String.UTF8.encode(v2)];
  return serializePairs(keys);
}

/** `kv` holds key, value, key, value, ... already UTF-8 encoded. */
export function serializePairs(kv: StaticArray<ArrayBuffer>): ArrayBuffer {
  const n = kv.length >> 1;
  let size = 4 + 8 * n;
  for (let i = 0; i < kv.length; i++) size += kv[i].byteLength + 1;
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, <u32>n);
  let o = base + 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    const k = kv[2 * i];
    const v = kv[2 * i + 1];
    store<u32>(base + 4 + 8 * i, <u32>k.byteLength);
    store<u32>(base + 8 + 8 * i, <u32>v.byteLength);
    memory.copy(o, changetype<usize>(k), k.byteLength);
    o += k.byteLength;
    store<u8>(o++, 0);
    memory.copy(o, changetype<usize>(v), v.byteLength);
    o += v.byteLength;
    store<u8>(o++, 0);
  }
  return out;
}

// ---- shared data (cpp-host semantics: per vm_id, CAS counter, no delete) ----

/** Value and CAS of the last `getShared`. */
export let sharedCas: u32 = 0;

/** getShared with a key already in linear memory (the request path: no encoding). */
export function getSharedRaw(keyPtr: usize, keyLen: usize, out: HostBytes): WasmResult {
  store<usize>(OUT, 0);
  store<usize>(OUT, 0, 4);
  store<u32>(OUT, 0, 8);
  const r = <WasmResult>imports.proxy_get_shared_data(keyPtr, keyLen, OUT, OUT + 4, OUT + 8);
  out.ptr = r == WasmResult.Ok ? outPtr() : 0;
  out.len = r == WasmResult.Ok ? outSize() : 0;
  sharedCas = r == WasmResult.Ok ? load<u32>(OUT, 8) : 0;
  return r;
}

export function setSharedRaw(keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize, cas: u32): WasmResult {
  return <WasmResult>imports.proxy_set_shared_data(keyPtr, keyLen, valuePtr, valueLen, cas);
}

/** `key` is UTF-8, encoded once by the caller (see state/sharedKeys.ts). */
@inline export function getShared(key: ArrayBuffer, out: HostBytes): WasmResult {
  return getSharedRaw(changetype<usize>(key), <usize>key.byteLength, out);
}

@inline export function setShared(key: ArrayBuffer, valuePtr: usize, valueLen: usize, cas: u32): WasmResult {
  return setSharedRaw(changetype<usize>(key), <usize>key.byteLength, valuePtr, valueLen, cas);
}

// ---- shared queues (cpp-host: a queue is keyed by vm_id and name; enqueue wakes the registrant's root with proxy_on_queue_ready) ----

/** Registers queue `name` for this VM's root context (moving delivery from any earlier registrant); its token, or 0. */
export function registerQueue(name: ArrayBuffer): u32 {
  store<u32>(OUT, 0);
  const r = <WasmResult>imports.proxy_register_shared_queue(changetype<usize>(name), name.byteLength, OUT);
  return r == WasmResult.Ok ? load<u32>(OUT) : 0;
}

/** The token of queue `name` of this VM's vm_id (an empty vm_id is the caller's own), or 0 while nobody registered it. */
export function resolveQueue(name: ArrayBuffer): u32 {
  store<u32>(OUT, 0);
  const r = <WasmResult>imports.proxy_resolve_shared_queue(0, 0, changetype<usize>(name), name.byteLength, OUT);
  return r == WasmResult.Ok ? load<u32>(OUT) : 0;
}

export function enqueueShared(token: u32, valuePtr: usize, valueLen: usize): WasmResult {
  return <WasmResult>imports.proxy_enqueue_shared_queue(token, valuePtr, valueLen);
}

/** Takes the oldest item of a queue this VM registered into `out` (free it); Empty when none is left. */
export function dequeueShared(token: u32, out: HostBytes): WasmResult {
  store<usize>(OUT, 0);
  store<usize>(OUT, 0, 4);
  const r = <WasmResult>imports.proxy_dequeue_shared_queue(token, OUT, OUT + 4);
  out.ptr = r == WasmResult.Ok ? outPtr() : 0;
  out.len = r == WasmResult.Ok ? outSize() : 0;
  return r;
}

// ---- outbound calls ----

/** Starts an HTTP call to an Envoy cluster, with [bodyPtr, bodyPtr+bodyLen) as its body; returns the token, or 0 when the host refused it. */
export function httpCall(cluster: string, headerPairs: ArrayBuffer, timeoutMs: u32, bodyPtr: usize = 0, bodyLen: usize = 0): u32 {
  const c = String.UTF8.encode(cluster);
  store<u32>(OUT, 0);
  const r = imports.proxy_http_call(changetype<usize>(c), c.byteLength, changetype<usize>(headerPairs), headerPairs.byteLength,
    bodyPtr, bodyLen, 0, 0, timeoutMs, OUT);
  return r == WasmResult.Ok ? load<u32>(OUT) : 0;
}

// ---- randomness (WASI, which Envoy's proxy-wasm host provides) ----

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function wasi_random_get(buf: usize, len: usize): u16;

/** 64 random bits from the host; 0 when it has none to give. */
export function randomU64(): u64 {
  store<u64>(OUT, 0);
  return wasi_random_get(OUT, 8) == 0 ? load<u64>(OUT) : 0;
}

// ---- streams from the root context ----

/** Makes later calls act on stream `id` (from a tick: its headers, its continue). */
export function setEffectiveContext(id: u32): WasmResult {
  return <WasmResult>imports.proxy_set_effective_context(id);
}

/** Lets a paused request go on (0: the request direction). */
export function continueRequest(): WasmResult {
  return <WasmResult>imports.proxy_continue_stream(0);
}

// ---- metrics ----

export function defineMetric(type: MetricType, name: string): u32 {
  const n = String.UTF8.encode(name);
  store<u32>(OUT, 0);
  const r = imports.proxy_define_metric(<i32>type, changetype<usize>(n), n.byteLength, OUT);
  return r == WasmResult.Ok ? load<u32>(OUT) : 0xffffffff;
}

@inline export function incrementMetric(id: u32, by: i64): void {
  if (id != 0xffffffff) imports.proxy_increment_metric(id, by);
}

/** Sets a gauge (adds to a counter). */
@inline export function recordMetric(id: u32, value: u64): void {
  if (id != 0xffffffff) imports.proxy_record_metric(id, value);
}

// ---- abort: Envoy has no env.abort; log where it happened, then trap ----

/**
 * False while the module's start code runs (at instantiation), when no
 * context is current: cpp-host's proxy_log acts on the current context, so a
 * host call then may crash the proxy rather than fail the VM. index.ts's last
 * statement ends it.
 */
let startDone = false;
/** An abort while reporting one (building the message can fail as the first did) only traps. */
let aborting = false;

/** The module's start code has finished: contexts may call the host from now on. */
export function endStartCode(): void {
  startDone = true;
}

export function abortHandler(message: string | null, fileName: string | null, line: u32, column: u32): void {
  if (startDone && !aborting) {
    aborting = true;
    let m = "prefix_router: abort";
    if (message !== null) m += ": " + message;
    if (fileName !== null) m += " at " + fileName + ":" + line.toString() + ":" + column.toString();
    log(LogLevel.Critical, m);
  }
  unreachable();
}
