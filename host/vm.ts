// One Wasm VM (one Envoy worker's copy of the module): instantiation, the host
// functions it imports, context bookkeeping, and every call into it (timed,
// trap-guarded). Behaviour follows proxy-wasm-cpp-host (src/exports.cc,
// src/context.cc, src/wasm.cc) and Envoy's Context (source/extensions/common/wasm/context.cc).
import { randomFillSync } from 'node:crypto';
import {
  BUFFER_TYPE_MAX, CALLOUT_INCREMENT, HeaderPairs, LOG_LEVEL_MAX, MAP_TYPE_MAX, METRIC_ID_INCREMENT, METRIC_TYPE_MASK,
  MapType, BufferType, MetricType, STREAM_TYPE_MAX, WASI_RANDOM_GET_MAX_BYTES, WasmResult, parsePairs,
} from './abi.js';
import type { Clock } from './clock.js';
import type { SharedDataStore } from './sharedData.js';
import { copyBytes } from './bytes.js';

/** A trap raised by the host itself (restricted call, proc_exit, abort). */
export class WasmTrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmTrapError';
  }
}

/**
 * Host functions that touch no context. The module's start function runs while cpp-host links
 * the instance, before any context exists and outside any call (no SaveRestoreContext): every
 * other host function dereferences a null `current_context_` there, which crashes the proxy.
 */
const CONTEXT_FREE = new Set([
  'env.pthread_equal', 'env.emscripten_notify_memory_growth',
  ...['fd_read', 'args_get'].flatMap((f) => [`wasi_unstable.${f}`, `wasi_snapshot_preview1.${f}`]),
]);

/** Host functions callable while `_initialize`/`_start` or `malloc` run (cpp-host's restricted mode). */
const ALLOWED_DURING_START = new Set([
  'env.emscripten_notify_memory_growth', 'env.proxy_log',
  ...['fd_write', 'args_sizes_get', 'args_get', 'environ_sizes_get', 'environ_get', 'clock_time_get', 'clock_res_get', 'random_get',
    'poll_oneoff', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_advise', 'fd_allocate', 'fd_datasync', 'fd_fdstat_set_rights',
    'fd_filestat_get', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pread', 'fd_prestat_dir_name', 'fd_prestat_get',
    'fd_pwrite', 'fd_readdir', 'fd_renumber', 'fd_sync', 'fd_tell', 'path_create_directory', 'path_filestat_get',
    'path_filestat_set_times', 'path_link', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink',
    'path_unlink_file', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown'].flatMap((f) => [`wasi_unstable.${f}`, `wasi_snapshot_preview1.${f}`]),
]);
const ALLOWED_DURING_MALLOC = new Set([
  'env.proxy_log', 'wasi_unstable.fd_write', 'wasi_snapshot_preview1.fd_write', 'wasi_unstable.clock_time_get',
  'wasi_snapshot_preview1.clock_time_get', 'wasi_unstable.poll_oneoff', 'wasi_snapshot_preview1.poll_oneoff',
]);

export type AbiVersion = '0.2.0' | '0.2.1';

/** What a stream context offers the host functions (implemented by Stream). */
export interface StreamSide {
  /** The header map, or null when Envoy has none at this point (BAD_ARGUMENT). `write` asks for the mutable map. */
  headerMap(type: number, write: boolean): HeaderPairs | null;
  headersModified(type: number): void;
  /** The request (0) or response (1) body as the filter sees it now. */
  bufferBytes(type: number): Uint8Array;
  /** Envoy's Buffer::copyFrom on that body: start 0 replaces the first `length` bytes, start >= size appends, anything else BAD_ARGUMENT. */
  setBufferBytes(type: number, start: number, length: number, data: Uint8Array): number;
  continueStream(type: number): number;
  closeStream(type: number): number;
  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPairs, grpcStatus: number): void;
  property(path: string[]): Uint8Array | null;
  setProperty(path: string, value: Uint8Array): number;
  /** Time of one call into the module (host functions included), and of the host functions alone when they are timed (else 0). */
  addWasmNs(ns: number, hostNs: number): void;
}

export interface ContextRecord {
  id: number;
  rootId: number;
  stream: StreamSide | null;
}

export interface HttpCallRequest {
  cluster: string;
  headers: HeaderPairs;
  body: Uint8Array;
  trailers: HeaderPairs;
  timeoutMs: number;
}

export interface HttpCallResponse {
  headers: HeaderPairs; // :status first
  body: Uint8Array;
  trailers: HeaderPairs;
}

/** What the VM needs from the host that owns it. */
export interface VmOwner {
  readonly worker: number;
  readonly clock: Clock;
  readonly store: SharedDataStore;
  readonly rootIdName: string;
  readonly vmId: string;
  readonly pluginName: string;
  readonly nodeId: string;
  readonly pluginConfig: Uint8Array;
  readonly vmConfig: Uint8Array;
  readonly logLevel: number;
  /** Time the host functions separately (a benchmark's breakdown); costs two clock reads per host call. */
  readonly timeHostCalls: boolean;
  /** Time each call into the module (Stream.wasmNs); false: no clock reads around hooks. */
  readonly timeCalls: boolean;
  readonly envs: Record<string, string>;
  log(level: number, message: string): void;
  defineMetric(type: number, name: string): { get(): bigint; add(v: bigint): void; set(v: bigint): void; record(v: bigint): void };
  hasCluster(name: string): boolean;
  /** Starts an HTTP call to a known cluster; null if it could not start. The result is delivered later through `deliver`. */
  startHttpCall(req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void): { cancel(): void } | null;
  setTickPeriod(vm: WasmVm, periodMs: number): void;
  post(fn: () => void): void;
  random(buf: Uint8Array): void;
  onTrap(vm: WasmVm, fn: string, error: unknown): void;
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();
/** A bound clock read: a double, no allocation (process.hrtime.bigint() makes a BigInt per read). */
const nowMs = performance.now.bind(performance);
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

/** Envoy's LowerCaseString (absl::AsciiStrToLower): only A-Z change; other latin1 bytes stay as they are. */
function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.replace(/[A-Z]+/g, (u) => u.toLowerCase());
  }
  return s;
}

type HostFn = (...a: any[]) => any;

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

type GuardFactory = (vm: WasmVm, fn: HostFn, full: string, now: () => number) => HostFn;
const guardFactories = new Map<string, GuardFactory>();

/**
 * Makes the wrapper every host function sits behind: cpp-host's restricted-mode check, and with
 * `timed` the host-call timing (outermost host call only; see WasmVm.alloc for malloc inside).
 * Each import gets its own compiled wrapper (its name is in the source), so the call to `fn`
 * inside has one target and V8 inlines it; wrappers shared by many imports (closures of one
 * function) made that call megamorphic, about a tenth of the host's time per request. The
 * source is fixed text plus an identifier made from the import's name; made once per process.
 */
function guardFactory(full: string, arity: number, timed: boolean): GuardFactory {
  const key = `${full}/${arity}/${timed ? 1 : 0}`;
  let f = guardFactories.get(key);
  if (f === undefined) {
    const name = `guarded_${full.replace(/[^A-Za-z0-9_]/g, '_')}`;
    const params = Array.from({ length: arity }, (_, i) => `a${i}`).join(', ');
    const body = timed
      ? `if (vm.restricted !== null) vm.checkRestricted(full);
         if (vm.hostDepth++ !== 0) { try { return fn(${params}); } finally { vm.hostDepth--; } }
         const t0 = now();
         try { return fn(${params}); } finally { vm.hostDepth--; vm.addHostMs(now() - t0); }`
      : `if (vm.restricted !== null) vm.checkRestricted(full);
         return fn(${params});`;
    f = new Function('vm', 'fn', 'full', 'now', `'use strict'; return function ${name}(${params}) { ${body} };`) as GuardFactory;
    guardFactories.set(key, f);
  }
  return f;
}

/** Calls a module export with a fixed number of arguments: no spread on the per-request path. */
function callExport(f: HostFn, a: number[]): unknown {
  switch (a.length) {
    case 0: return f();
    case 1: return f(a[0]);
    case 2: return f(a[0], a[1]);
    case 3: return f(a[0], a[1], a[2]);
    case 4: return f(a[0], a[1], a[2], a[3]);
    case 5: return f(a[0], a[1], a[2], a[3], a[4]);
    default: return f(...a);
  }
}

export class WasmVm {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  readonly abi: AbiVersion;
  failed = false;
  /** What failed it: the export that trapped and the error. */
  failure = '';
  readonly contexts = new Map<number, ContextRecord>();
  rootContextId = 0;
  private nextContextId = 1; // 0 is the VM context (cpp-host).
  private nextHttpCallId = 0;
  private readonly exportsFns: Record<string, (...a: any[]) => any>;
  private readonly malloc: ((size: number) => number) | null;
  /** Read by the generated import wrappers (guardFactory), as are hostDepth, checkRestricted and addHostMs. */
  private restricted: Set<string> | null = null;
  private current: ContextRecord | null = null;
  private effective: ContextRecord | null = null;
  private depth = 0;
  private afterCall: Array<() => void> = [];
  /** cpp-host's stop_iteration_: set by proxy_send_local_response, cleared when the hook returns. */
  private stopNext = false;
  private lastCallStopped = false;
  private lastBuffer: ArrayBuffer | SharedArrayBuffer | null = null;
  private u8: Uint8Array = EMPTY;
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private nodeBuf: Buffer & Latin1Codec = Buffer.alloc(0) as Buffer & Latin1Codec;
  /** A shared memory's buffer is never detached by growth, so its views are checked against memory.buffer instead. */
  private readonly sharedMemory: boolean;
  private readonly strCache: string[] = new Array<string>(STRING_CACHE_SLOTS).fill('');
  /** The bytes each strCache entry was decoded from (STRING_CACHE_MAX_BYTES per slot), to check a hit against. */
  private readonly cacheBytes = new Uint8Array(STRING_CACHE_SLOTS * STRING_CACHE_MAX_BYTES);
  private readonly cacheDv = new DataView(this.cacheBytes.buffer);
  /** asciiLower of strCache's entry, or null until a header name needs it. */
  private readonly lowerCache: Array<string | null> = new Array<string | null>(STRING_CACHE_SLOTS).fill(null);
  private readonly store: SharedDataStore;
  private readonly vmId: string;
  private readonly logLevel: number;
  private readonly clock: Clock;
  private readonly timeHostCalls: boolean;
  private readonly timeCalls: boolean;
  /** Host-function time (ns) so far, when timeHostCalls: outermost host calls only, minus the module's malloc inside them. */
  private hostNsTotal = 0;
  private hostDepth = 0;
  private metricIds = new Map<number, ReturnType<VmOwner['defineMetric']>>();
  private nextMetricId = [MetricType.Counter, MetricType.Gauge, MetricType.Histogram] as number[];
  private readonly pendingCalls = new Map<number, { cancel(): void }>();
  private httpResponse: HttpCallResponse | null = null;
  private status: { code: number; message: string } = { code: 0, message: '' };
  /** True while proxy_on_configure / root creation may read the plugin configuration (Envoy's temp_plugin_). */
  private pluginConfigVisible = false;
  closed = false;

  constructor(readonly owner: VmOwner, module: WebAssembly.Module, abi: AbiVersion) {
    this.abi = abi;
    // Read once: the owner's values are fixed for the VM's life, and these are read on every host call.
    this.store = owner.store;
    this.vmId = owner.vmId;
    this.logLevel = owner.logLevel;
    this.clock = owner.clock;
    this.timeHostCalls = owner.timeHostCalls;
    this.timeCalls = owner.timeCalls;
    const imports = this.buildImports(module);
    this.restricted = CONTEXT_FREE; // the start section runs inside instantiation, with no context
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } catch (e) {
      throw new Error(`Wasm module failed during instantiation (its start function): ${describe(e)}`);
    } finally {
      this.restricted = null;
    }
    this.instance = instance;
    const ex = instance.exports as Record<string, unknown>;
    const memory = ex.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new Error('Wasm module exports no memory named "memory"');
    this.memory = memory;
    this.sharedMemory = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    this.exportsFns = {};
    for (const [k, v] of Object.entries(ex)) if (typeof v === 'function') this.exportsFns[k] = v as (...a: any[]) => any;
    // cpp-host looks for `malloc` first and falls back to `proxy_on_memory_allocate`.
    this.malloc = this.exportsFns.malloc ?? this.exportsFns.proxy_on_memory_allocate ?? null;
    if (!this.malloc) throw new Error('Wasm module is missing malloc function (neither `malloc` nor `proxy_on_memory_allocate` is exported)');
    this.store.retain(this.vmId);
  }

  has(fn: string): boolean {
    return fn in this.exportsFns;
  }

  /** Runs `_initialize` (WASI reactor, then `main`/`__main_void` if any) or `_start`, in restricted mode. */
  startVm(): void {
    const run = (name: string, ...args: number[]) => {
      this.restricted = ALLOWED_DURING_START;
      try {
        this.invoke(name, this.exportsFns[name], args, null);
      } finally {
        this.restricted = null;
      }
    };
    if (this.has('_initialize')) {
      run('_initialize');
      if (this.failed) return;
      if (this.has('main')) run('main', 0, 0);
      else if (this.has('__main_void')) run('__main_void');
    } else if (this.has('_start')) run('_start');
  }

  /** cpp-host onStart + onConfigure: root context create, vm_start, configure. Returns a reason on failure. */
  startRoot(): string | null {
    const id = this.allocContextId();
    this.rootContextId = id;
    const root: ContextRecord = { id, rootId: id, stream: null };
    this.contexts.set(id, root);
    this.pluginConfigVisible = true;
    try {
      this.call('proxy_on_context_create', [id, 0], root);
      if (this.failed) return 'the module trapped in proxy_on_context_create';
    } finally {
      this.pluginConfigVisible = false;
    }
    if (this.has('proxy_on_vm_start')) {
      const r = this.call('proxy_on_vm_start', [id, this.owner.vmConfig.length], root);
      if (this.failed) return 'the module trapped in proxy_on_vm_start';
      if (r === 0) return 'proxy_on_vm_start returned false (VM start rejected)';
    }
    if (this.has('proxy_on_configure')) {
      this.pluginConfigVisible = true;
      try {
        const r = this.call('proxy_on_configure', [id, this.owner.pluginConfig.length], root);
        if (this.failed) return 'the module trapped in proxy_on_configure';
        if (r === 0) return 'proxy_on_configure returned false (configuration rejected)';
      } finally {
        this.pluginConfigVisible = false;
      }
    }
    return null;
  }

  allocContextId(): number {
    for (;;) {
      const id = this.nextContextId;
      this.nextContextId = (this.nextContextId + 1) >>> 0;
      if (id !== 0 && !this.contexts.has(id)) return id;
    }
  }

  /** Calls a `proxy_on_*` export for a context, timed and trap-guarded; returns its u32 result, or null if absent/failed. */
  call(fn: string, args: number[], ctx: ContextRecord | null): number | null {
    if (this.failed) return null;
    const f = this.exportsFns[fn];
    if (!f) return null;
    return this.invoke(fn, f, args, ctx);
  }

  private invoke(fn: string, f: HostFn, args: number[], ctx: ContextRecord | null): number | null {
    const prevCurrent = this.current;
    const prevEffective = this.effective;
    this.current = ctx;
    this.effective = null;
    this.depth++;
    // Only a stream's calls are timed (Stream.wasmNs), and only with timeCalls.
    const stream = ctx === null || !this.timeCalls ? null : ctx.stream;
    const h0 = this.hostNsTotal;
    const t0 = stream !== null ? nowMs() : 0;
    let result: number | null = null;
    try {
      const r = callExport(f, args);
      result = typeof r === 'number' ? r >>> 0 : typeof r === 'bigint' ? Number(BigInt.asUintN(32, r)) : 0;
    } catch (e) {
      if (stream !== null) stream.addWasmNs((nowMs() - t0) * 1e6, this.hostNsTotal - h0);
      this.failed = true;
      this.failure = `${fn}: ${describe(e)}`;
      this.depth--;
      this.current = prevCurrent;
      this.effective = prevEffective;
      this.afterCall = [];
      this.stopNext = false;
      this.lastCallStopped = false;
      this.owner.onTrap(this, fn, e);
      return null;
    }
    if (stream !== null) stream.addWasmNs((nowMs() - t0) * 1e6, this.hostNsTotal - h0);
    this.depth--;
    this.current = prevCurrent;
    this.effective = prevEffective;
    // cpp-host's ~DeferAfterCallActions: the hook's status was read with the flag as the call
    // left it; the flag is cleared before the deferred actions run, so a local reply's own
    // response hooks start with a clear flag and nothing carries over to a later hook.
    const stopped = this.stopNext;
    this.stopNext = false;
    if (this.depth === 0) this.runAfterCallActions();
    this.lastCallStopped = stopped; // set last: hooks run by the deferred actions set their own first
    return result;
  }

  /** Envoy defers continue/local-reply requests made inside a call until the call returns (DeferAfterCallActions). */
  private runAfterCallActions(): void {
    while (this.afterCall.length) {
      const actions = this.afterCall;
      this.afterCall = [];
      for (const a of actions) a();
    }
  }

  /** Whether the module sent a local reply during the call that returned last (cpp-host's isNextIterationStopped as the hook returned). */
  get lastCallStoppedIteration(): boolean {
    return this.lastCallStopped;
  }

  deferAfterCall(fn: () => void): void {
    if (this.depth > 0) this.afterCall.push(fn);
    else fn();
  }

  // ---- memory ----

  /**
   * The memory as bytes. Growth detaches the old ArrayBuffer (its views read as length 0), so
   * the views are rebuilt only then, without reading memory.buffer (a C++ getter) on every call.
   */
  private mem(): Uint8Array {
    if (this.u8.length === 0 || this.sharedMemory) {
      const b = this.memory.buffer;
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
    const m = this.mem();
    if (ptr + len > m.length) return null;
    return copyBytes(m, ptr, len);
  }

  readLatin1(ptr: number, len: number): string | null {
    ptr >>>= 0;
    len >>>= 0;
    const m = this.mem();
    if (ptr + len > m.length) return null;
    if (len === 0) return '';
    if (len > STRING_CACHE_MAX_BYTES) return this.nodeBuf.latin1Slice(ptr, ptr + len); // decoded in place, no copy
    return this.strCache[this.cachedString(m, ptr, len)];
  }

  /** A header name from the module, lower-cased as Envoy's LowerCaseString does (ASCII only). */
  readHeaderKey(ptr: number, len: number): string | null {
    ptr >>>= 0;
    len >>>= 0;
    const m = this.mem();
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
   * (about 20 ns for a 30-byte header name; charCodeAt per byte took about 70).
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
    return (ptr >>> 0) + (len >>> 0) <= this.mem().length;
  }

  write(ptr: number, bytes: Uint8Array): boolean {
    ptr >>>= 0;
    const m = this.mem();
    if (ptr + bytes.length > m.length) return false;
    m.set(bytes, ptr);
    return true;
  }

  writeU32(ptr: number, v: number): boolean {
    ptr >>>= 0;
    const m = this.mem();
    if (ptr + 4 > m.length) return false;
    this.dv.setUint32(ptr, v >>> 0, true);
    return true;
  }

  writeU64(ptr: number, v: bigint): boolean {
    ptr >>>= 0;
    const m = this.mem();
    if (ptr + 8 > m.length) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }

  readU32(ptr: number): number | null {
    ptr >>>= 0;
    const m = this.mem();
    if (ptr + 4 > m.length) return null;
    return this.dv.getUint32(ptr, true);
  }

  /** cpp-host allocMemory: calls the module's allocator in restricted mode; 0 when it fails or returns an unusable pointer. */
  alloc(size: number): number {
    const prev = this.restricted;
    this.restricted = ALLOWED_DURING_MALLOC;
    let p: number;
    // Host-call timing: the module's malloc is module time, not host time.
    const t0 = this.hostDepth > 0 ? nowMs() : 0;
    try {
      p = Number(this.malloc!(size)) >>> 0;
    } finally {
      this.restricted = prev;
      if (this.hostDepth > 0) this.hostNsTotal -= (nowMs() - t0) * 1e6;
    }
    if (p === 0) return 0;
    if (p + size > this.mem().length) return 0;
    return p;
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
      this.putLatin1(this.mem(), s, p); // mem(): the allocation may have grown memory
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
    const m = this.mem(); // the allocation may have grown memory
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
  private writeNowNs(ptr: number): boolean {
    const c = this.clock;
    if (c.nowNsNumber === undefined) return this.writeU64(ptr, c.nowNs());
    ptr >>>= 0;
    const m = this.mem();
    if (ptr + 8 > m.length) return false;
    const ns = c.nowNsNumber();
    const hi = Math.floor(ns / TWO_POW_32);
    this.dv.setUint32(ptr, ns - hi * TWO_POW_32, true);
    this.dv.setUint32(ptr + 4, hi, true);
    return true;
  }

  // ---- contexts ----

  /** The context host functions act on: the effective one if set and alive, else the caller's. */
  private ctx(): ContextRecord {
    return this.effective ?? this.current ?? this.contexts.get(this.rootContextId) ?? { id: 0, rootId: 0, stream: null };
  }

  queueReady(contextId: number, token: number): void {
    this.owner.post(() => {
      const c = this.contexts.get(contextId);
      if (!c || this.failed || this.closed) return;
      this.call('proxy_on_queue_ready', [contextId, token], c);
    });
  }

  tick(): void {
    const root = this.contexts.get(this.rootContextId);
    if (root && !this.closed) this.call('proxy_on_tick', [root.id], root);
  }

  /** Shuts the VM down: root on_done (then on_delete), pending calls cancelled, shared-data reference dropped. */
  close(): void {
    if (this.closed) return;
    const root = this.contexts.get(this.rootContextId);
    if (root && !this.failed) {
      const done = this.call('proxy_on_done', [root.id], root);
      // Envoy would wait for proxy_done when on_done answers false; this host does not wait (no pending work survives close).
      void done;
      if (!this.failed) this.call('proxy_on_delete', [root.id], root);
    }
    this.kill();
  }

  /**
   * Drops the VM without shutting its root context down (cpp-host WasmHandleBase::kill, how the
   * configuration canary goes): pending calls cancelled, no more ticks, shared-data reference released.
   */
  kill(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.pendingCalls.values()) c.cancel();
    this.pendingCalls.clear();
    this.owner.setTickPeriod(this, 0);
    this.owner.store.release(this.owner.vmId);
  }

  // ---- host functions ----

  private buildImports(module: WebAssembly.Module): WebAssembly.Imports {
    const env: Record<string, HostFn> = {};
    const wasi: Record<string, HostFn> = {};
    const R = WasmResult;
    const o = this.owner;

    // General
    env.proxy_log = (level: number, ptr: number, size: number) => {
      if (level >>> 0 > LOG_LEVEL_MAX) return R.BadArgument;
      if (!this.inBounds(ptr, size)) return R.InvalidMemoryAccess;
      // Below the log level the message is not even decoded (Envoy's ENVOY_LOG checks the level first).
      if (level >= this.logLevel) o.log(level, this.nodeBuf.toString('utf8', ptr >>> 0, (ptr >>> 0) + (size >>> 0)));
      return R.Ok;
    };
    env.proxy_get_log_level = (ptr: number) => (this.writeU32(ptr, this.logLevel) ? R.Ok : R.InvalidMemoryAccess);
    env.proxy_get_status = (codePtr: number, ptrPtr: number, sizePtr: number) => {
      if (!this.writeU32(codePtr, this.status.code)) return R.InvalidMemoryAccess;
      return this.copyOutLatin1(this.status.message, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_set_tick_period_milliseconds = (ms: number) => {
      o.setTickPeriod(this, ms >>> 0);
      return R.Ok;
    };
    env.proxy_get_current_time_nanoseconds = (ptr: number) => (this.writeNowNs(ptr) ? R.Ok : R.InvalidMemoryAccess);
    env.proxy_set_effective_context = (id: number) => {
      const c = this.contexts.get(id >>> 0);
      if (!c) return R.BadArgument;
      this.effective = c;
      return R.Ok;
    };
    env.proxy_done = () => R.NotFound; // nothing is ever pending done here: root on_done's answer is not waited on
    env.proxy_call_foreign_function = (namePtr: number, nameSize: number, argPtr: number, argSize: number) => {
      if (!this.read(namePtr, nameSize)) return R.InvalidMemoryAccess;
      if (!this.read(argPtr, argSize)) return R.InvalidMemoryAccess;
      return R.NotFound; // no foreign functions are registered (Envoy registers a few of its own)
    };

    // Properties
    env.proxy_get_property = (pathPtr: number, pathSize: number, ptrPtr: number, sizePtr: number) => {
      const path = this.readLatin1(pathPtr, pathSize);
      if (path === null) return R.InvalidMemoryAccess;
      const parts = path.split('\0');
      if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
      const value = this.property(parts);
      if (value === null) return R.NotFound;
      return this.copyOut(value, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_set_property = (kPtr: number, kSize: number, vPtr: number, vSize: number) => {
      const key = this.readLatin1(kPtr, kSize);
      const value = this.read(vPtr, vSize);
      if (key === null || value === null) return R.InvalidMemoryAccess;
      const s = this.ctx().stream;
      if (!s) return R.NotFound; // Envoy: no stream info on a root context
      return s.setProperty(key, value);
    };

    // Header maps (no closures or tuples made per call: these run several times per request)
    const mapOf = (type: number, write: boolean): HeaderPairs | null => {
      if (type === MapType.HttpCallResponseHeaders) return write ? null : this.httpResponse?.headers ?? null;
      if (type === MapType.HttpCallResponseTrailers) return write ? null : this.httpResponse?.trailers ?? null;
      const s = this.ctx().stream;
      return s ? s.headerMap(type, write) : null;
    };
    const modified = (type: number): number => {
      const s = this.ctx().stream;
      if (s) s.headersModified(type);
      return R.Ok;
    };
    env.proxy_get_header_map_value = (type: number, kPtr: number, kSize: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = this.readHeaderKey(kPtr, kSize);
      if (k === null) return R.InvalidMemoryAccess;
      const map = mapOf(type, false);
      if (!map) return R.BadArgument;
      // Envoy returns the first value only (context.cc: "entry[0]"; a TODO there notes the missing concatenation).
      for (let i = 0; i < map.length; i++) {
        if (map[i][0] === k) return this.copyOutLatin1(map[i][1], ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
      }
      return R.NotFound;
    };
    env.proxy_get_header_map_pairs = (type: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const map = mapOf(type, false); // Envoy: an absent map reads as no pairs
      if (!map || map.length === 0) return this.copyOut(EMPTY, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
      return this.copyOutPairs(map, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_get_header_map_size = (type: number, resultPtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const map = mapOf(type, true);
      if (!map) return R.BadArgument;
      // Envoy answers HeaderMap::byteSize(): the bytes of all keys and values, not the count (latin1: one byte per unit).
      let bytes = 0;
      for (let i = 0; i < map.length; i++) bytes += map[i][0].length + map[i][1].length;
      return this.writeU32(resultPtr, bytes) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_add_header_map_value = (type: number, kPtr: number, kSize: number, vPtr: number, vSize: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = this.readHeaderKey(kPtr, kSize);
      const value = this.readLatin1(vPtr, vSize);
      if (k === null || value === null) return R.InvalidMemoryAccess;
      const map = mapOf(type, true);
      if (!map) return R.BadArgument;
      map.push([k, value]);
      return modified(type);
    };
    env.proxy_replace_header_map_value = (type: number, kPtr: number, kSize: number, vPtr: number, vSize: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = this.readHeaderKey(kPtr, kSize);
      const value = this.readLatin1(vPtr, vSize);
      if (k === null || value === null) return R.InvalidMemoryAccess;
      const map = mapOf(type, true);
      if (!map) return R.BadArgument;
      // Envoy setCopy: the first entry takes the value, the other duplicates go.
      let i = 0;
      while (i < map.length && map[i][0] !== k) i++;
      if (i === map.length) {
        map.push([k, value]);
      } else {
        map[i][1] = value; // the stream's own tuple (Stream copies what it takes in and hands out)
        for (let j = map.length - 1; j > i; j--) if (map[j][0] === k) map.splice(j, 1);
      }
      return modified(type);
    };
    env.proxy_remove_header_map_value = (type: number, kPtr: number, kSize: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = this.readHeaderKey(kPtr, kSize);
      if (k === null) return R.InvalidMemoryAccess;
      const map = mapOf(type, true);
      if (!map) return R.BadArgument;
      for (let j = map.length - 1; j >= 0; j--) if (map[j][0] === k) map.splice(j, 1);
      return modified(type);
    };
    env.proxy_set_header_map_pairs = (type: number, ptr: number, size: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const data = this.read(ptr, size);
      if (!data) return R.InvalidMemoryAccess;
      const pairs = parsePairs(data);
      const map = mapOf(type, true);
      if (!map) return R.BadArgument;
      map.length = 0;
      for (const [k, v] of pairs) map.push([asciiLower(k), v]);
      return modified(type);
    };

    // Buffers: the bytes the module may read (null: no such buffer here, NOT_FOUND).
    const bufferBytes = (type: number): Uint8Array | null => {
      switch (type) {
        case BufferType.VmConfiguration:
          return o.vmConfig;
        case BufferType.PluginConfiguration:
          return this.pluginConfigVisible ? o.pluginConfig : null;
        case BufferType.HttpCallResponseBody: {
          const r = this.httpResponse;
          return r ? r.body : null;
        }
        case BufferType.HttpRequestBody:
        case BufferType.HttpResponseBody: {
          const s = this.ctx().stream;
          return s ? s.bufferBytes(type) : EMPTY;
        }
        case BufferType.NetworkDownstreamData:
        case BufferType.NetworkUpstreamData:
        case BufferType.GrpcReceiveBuffer:
        case BufferType.CallData:
          return EMPTY;
        default:
          return null;
      }
    };
    env.proxy_get_buffer_bytes = (type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      const bytes = bufferBytes(type);
      if (!bytes) return R.NotFound;
      start >>>= 0;
      length >>>= 0;
      if (start > bytes.length) length = 0;
      else if (start + length > bytes.length) length = bytes.length - start;
      if (length === 0) return this.writeU32(ptrPtr, 0) && this.writeU32(sizePtr, 0) ? R.Ok : R.InvalidMemoryAccess;
      const part = start === 0 && length === bytes.length ? bytes : bytes.subarray(start, start + length);
      return this.copyOut(part, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_get_buffer_status = (type: number, lengthPtr: number, flagsPtr: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      const bytes = bufferBytes(type);
      if (!bytes) return R.NotFound;
      if (!this.writeU32(lengthPtr, bytes.length)) return R.InvalidMemoryAccess;
      if (!this.writeU32(flagsPtr, 0)) return R.InvalidMemoryAccess;
      return R.Ok;
    };
    env.proxy_set_buffer_bytes = (type: number, start: number, length: number, dataPtr: number, dataSize: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      if (!bufferBytes(type)) return R.NotFound;
      const data = this.read(dataPtr, dataSize);
      if (!data) return R.InvalidMemoryAccess;
      // Only a stream's bodies are writable (configuration, http-call body: immutable; a root context has no body).
      const s = type === BufferType.HttpRequestBody || type === BufferType.HttpResponseBody ? this.ctx().stream : null;
      if (!s) return R.BadArgument;
      return s.setBufferBytes(type, start >>> 0, length >>> 0, data);
    };

    // Stream control
    env.proxy_continue_stream = (type: number) => {
      if (type >>> 0 > STREAM_TYPE_MAX) return R.BadArgument;
      const s = this.ctx().stream;
      if (!s) return R.Ok; // Envoy: no decoder callbacks on a root context, nothing happens
      return s.continueStream(type >>> 0);
    };
    env.proxy_close_stream = (type: number) => {
      if (type >>> 0 > STREAM_TYPE_MAX) return R.BadArgument;
      const s = this.ctx().stream;
      if (!s) return R.Ok;
      return s.closeStream(type >>> 0);
    };
    env.proxy_send_local_response = (code: number, dPtr: number, dSize: number, bPtr: number, bSize: number, hPtr: number, hSize: number, grpc: number) => {
      const details = this.readLatin1(dPtr, dSize);
      const body = this.read(bPtr, bSize);
      const hdrs = this.read(hPtr, hSize);
      if (details === null || !body || !hdrs) return R.InvalidMemoryAccess;
      const pairs = parsePairs(hdrs);
      const s = this.ctx().stream;
      if (s) s.sendLocalResponse(code >>> 0, details, body, pairs, grpc | 0);
      this.stopNext = true;
      return R.Ok;
    };

    // Shared data and queues
    env.proxy_get_shared_data = (kPtr: number, kSize: number, ptrPtr: number, sizePtr: number, casPtr: number) => {
      const key = this.readLatin1(kPtr, kSize);
      if (key === null) return R.InvalidMemoryAccess;
      const hit = this.store.peek(this.vmId, key);
      if (hit === null) return R.NotFound;
      const cas = hit.cas;
      if (!this.copyOut(hit.value, ptrPtr, sizePtr)) return R.InvalidMemoryAccess;
      if (!this.writeU32(casPtr, cas)) return R.InvalidMemoryAccess;
      return R.Ok;
    };
    env.proxy_set_shared_data = (kPtr: number, kSize: number, vPtr: number, vSize: number, cas: number) => {
      const key = this.readLatin1(kPtr, kSize);
      vPtr >>>= 0;
      vSize >>>= 0;
      const m = this.mem();
      if (key === null || vPtr + vSize > m.length) return R.InvalidMemoryAccess;
      // The store copies the value (into the key's previous one when it owns that and it fits).
      return this.store.setFrom(this.vmId, key, m, vPtr, vSize, cas >>> 0);
    };
    env.proxy_register_shared_queue = (nPtr: number, nSize: number, tokenPtr: number) => {
      const name = this.readLatin1(nPtr, nSize);
      if (name === null) return R.InvalidMemoryAccess;
      const c = this.ctx();
      const token = this.store.registerQueue(this.vmId, name, c.rootId, this);
      return this.writeU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_resolve_shared_queue = (vPtr: number, vSize: number, nPtr: number, nSize: number, tokenPtr: number) => {
      const vmId = this.readLatin1(vPtr, vSize);
      const name = this.readLatin1(nPtr, nSize);
      if (vmId === null || name === null) return R.InvalidMemoryAccess;
      const token = this.store.resolveQueue(vmId === '' ? this.vmId : vmId, name);
      if (token === 0) return R.NotFound;
      return this.writeU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_enqueue_shared_queue = (token: number, dPtr: number, dSize: number) => {
      const data = this.read(dPtr, dSize);
      if (!data) return R.InvalidMemoryAccess;
      return this.store.enqueue(token >>> 0, data);
    };
    env.proxy_dequeue_shared_queue = (token: number, ptrPtr: number, sizePtr: number) => {
      const r = this.store.dequeue(token >>> 0);
      if (r.status !== R.Ok) return r.status;
      return this.copyOut(r.value!, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    };

    // Metrics (Envoy: ids carry the type in the low two bits)
    env.proxy_define_metric = (type: number, nPtr: number, nSize: number, idPtr: number) => {
      const name = this.readLatin1(nPtr, nSize);
      if (name === null) return R.InvalidMemoryAccess;
      type >>>= 0;
      if (type > MetricType.Histogram) return R.BadArgument;
      this.nextMetricId[type] = (this.nextMetricId[type] + METRIC_ID_INCREMENT) >>> 0;
      const id = this.nextMetricId[type];
      this.metricIds.set(id, o.defineMetric(type, name));
      return this.writeU32(idPtr, id) ? R.Ok : R.InvalidMemoryAccess;
    };
    env.proxy_increment_metric = (id: number, offset: bigint) => {
      id >>>= 0;
      const type = id & METRIC_TYPE_MASK;
      const m = this.metricIds.get(id);
      if (type === MetricType.Counter) {
        if (!m) return R.NotFound;
        if (offset <= 0n) return R.BadArgument;
        m.add(offset);
        return R.Ok;
      }
      if (type === MetricType.Gauge) {
        if (!m) return R.NotFound;
        m.add(offset);
        return R.Ok;
      }
      return R.BadArgument;
    };
    env.proxy_record_metric = (id: number, value: bigint) => {
      id >>>= 0;
      const m = this.metricIds.get(id);
      if (!m) return R.NotFound;
      const type = id & METRIC_TYPE_MASK;
      const v = BigInt.asUintN(64, value);
      if (type === MetricType.Counter) m.add(v);
      else if (type === MetricType.Gauge) m.set(v);
      else m.record(v);
      return R.Ok;
    };
    env.proxy_get_metric = (id: number, resultPtr: number) => {
      id >>>= 0;
      const type = id & METRIC_TYPE_MASK;
      if (type === MetricType.Histogram || type === 3) return R.BadArgument;
      const m = this.metricIds.get(id);
      if (!m) return R.NotFound;
      return this.writeU64(resultPtr, m.get()) ? R.Ok : R.InvalidMemoryAccess;
    };

    // HTTP callouts (always on the root context)
    env.proxy_http_call = (uPtr: number, uSize: number, hPtr: number, hSize: number, bPtr: number, bSize: number, tPtr: number, tSize: number, timeoutMs: number, tokenPtr: number) => {
      const cluster = this.readLatin1(uPtr, uSize);
      const body = this.read(bPtr, bSize);
      const hdrs = this.read(hPtr, hSize);
      const trls = this.read(tPtr, tSize);
      if (cluster === null || !body || !hdrs || !trls) return R.InvalidMemoryAccess;
      const headers = parsePairs(hdrs).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      const trailers = parsePairs(trls).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      // cpp-host writes the token slot first to prove it is writable before starting anything.
      if (!this.writeU32(tokenPtr, 0)) return R.InvalidMemoryAccess;
      if ((timeoutMs | 0) < 0) return R.BadArgument;
      if (!o.hasCluster(cluster)) return R.BadArgument; // Envoy: no such thread-local cluster
      const has = (k: string) => headers.some(([hk]) => hk === k);
      if (!has(':path') || !has(':method') || !has(':authority')) return R.BadArgument;
      const token = (this.nextHttpCallId + CALLOUT_INCREMENT) >>> 0;
      this.nextHttpCallId = token;
      const handle = o.startHttpCall({ cluster, headers, body, trailers, timeoutMs: timeoutMs >>> 0 }, (res) => this.deliverHttpResponse(token, res));
      if (handle === null) return R.InternalFailure;
      this.pendingCalls.set(token, handle);
      this.writeU32(tokenPtr, token);
      return R.Ok;
    };
    for (const g of ['grpc_call', 'grpc_stream', 'grpc_cancel', 'grpc_close', 'grpc_send']) {
      env[`proxy_${g}`] = () => R.Unimplemented; // no gRPC services are configured in this host
    }
    env.pthread_equal = (a: number, b: number) => (a === b ? 1 : 0);
    env.emscripten_notify_memory_growth = () => {};

    // WASI preview1 (as cpp-host answers it)
    wasi.fd_write = (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) => {
      if (fd !== 1 && fd !== 2) return 8; // EBADF
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < iovsLen >>> 0; i++) {
        const base = this.readU32(iovs + i * 8);
        const len = this.readU32(iovs + i * 8 + 4);
        if (base === null || len === null) return 21; // EFAULT
        if (len === 0) continue;
        const b = this.read(base, len);
        if (!b) return 21;
        parts.push(b);
        total += len;
      }
      if (total > 0) {
        let s = Buffer.concat(parts).toString('utf8');
        if (s.endsWith('\n')) s = s.slice(0, -1);
        const level = fd === 1 ? 2 : 4; // stdout -> info, stderr -> error
        if (level >= this.logLevel) o.log(level, s);
      }
      return this.writeU32(nwrittenPtr, total) ? 0 : 21;
    };
    wasi.fd_read = () => 52; // ENOSYS
    wasi.fd_seek = () => 0; // cpp-host logs an error and returns success
    wasi.fd_close = () => 0;
    wasi.fd_fdstat_get = (fd: number, statPtr: number) => {
      if (fd !== 1 && fd !== 2) return 8;
      const stat = new Uint8Array(24);
      new DataView(stat.buffer).setBigUint64(8, 64n, true); // fs_rights_base = FD_WRITE
      this.write(statPtr, stat);
      return 0;
    };
    wasi.fd_fdstat_set_flags = () => 52;
    const envPairs = () => Object.entries(o.envs).map(([k, v]) => enc.encode(`${k}=${v}\0`));
    wasi.environ_sizes_get = (countPtr: number, sizePtr: number) => {
      const e = envPairs();
      if (!this.writeU32(countPtr, e.length)) return 21;
      return this.writeU32(sizePtr, e.reduce((n, b) => n + b.length, 0)) ? 0 : 21;
    };
    wasi.environ_get = (arrayPtr: number, bufPtr: number) => {
      for (const b of envPairs()) {
        if (!this.writeU32(arrayPtr, bufPtr)) return 21;
        if (!this.write(bufPtr, b)) return 21;
        bufPtr += b.length;
        arrayPtr += 4;
      }
      return 0;
    };
    wasi.args_sizes_get = (argcPtr: number, sizePtr: number) => (this.writeU32(argcPtr, 0) && this.writeU32(sizePtr, 0) ? 0 : 21);
    wasi.args_get = () => 0;
    wasi.clock_time_get = (_clockId: number, _precision: bigint, resultPtr: number) => (this.writeNowNs(resultPtr) ? 0 : 21);
    wasi.clock_res_get = (_clockId: number, resultPtr: number) => (this.writeU64(resultPtr, 1n) ? 0 : 21);
    wasi.random_get = (ptr: number, len: number) => {
      len >>>= 0;
      if (len > WASI_RANDOM_GET_MAX_BYTES) return 28; // EINVAL
      if (len === 0) return 0;
      const b = new Uint8Array(len);
      o.random(b);
      return this.write(ptr, b) ? 0 : 21;
    };
    wasi.sched_yield = () => 0;
    wasi.poll_oneoff = (_in: number, _out: number, _n: number, neventsPtr: number) => (this.writeU32(neventsPtr, 0) ? 0 : 21);
    wasi.proc_exit = (code: number) => {
      throw new WasmTrapError(`wasi proc_exit(${code}) called: the module aborted`);
    };
    for (const f of ['fd_advise', 'fd_allocate', 'fd_datasync', 'fd_fdstat_set_rights', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pwrite', 'fd_renumber', 'fd_sync', 'fd_tell', 'path_create_directory', 'path_filestat_set_times', 'path_link', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown']) {
      wasi[f] = () => 58; // ENOTSUP
    }
    wasi.fd_pread = () => 52;
    wasi.fd_readdir = () => 20;
    wasi.path_open = () => 44; // ENOENT
    wasi.fd_prestat_get = () => 8;
    wasi.fd_prestat_dir_name = () => 52;
    wasi.path_filestat_get = () => 58;
    wasi.fd_filestat_get = () => 8;

    if (this.abi === '0.2.0') delete env.proxy_get_log_level; // cpp-host registers it for ABI 0.2.1 only

    // Every import must be one the host provides; Envoy refuses to load anything else.
    const guard = (mod: string, table: Record<string, HostFn>) => {
      const out: Record<string, HostFn> = {};
      for (const [name, fn] of Object.entries(table)) {
        const full = `${mod}.${name}`;
        out[name] = this.guarded(full, fn);
      }
      return out;
    };
    const tables: Record<string, Record<string, HostFn>> = {
      env: guard('env', env),
      wasi_snapshot_preview1: guard('wasi_snapshot_preview1', wasi),
      wasi_unstable: guard('wasi_unstable', wasi),
    };
    for (const imp of WebAssembly.Module.imports(module)) {
      const full = `${imp.module}.${imp.name}`;
      if (imp.kind !== 'function' || !tables[imp.module] || !(imp.name in tables[imp.module])) {
        let why = '';
        if (full === 'env.proxy_clear_route_cache') {
          why = ' (proxy_clear_route_cache is not a host function under Proxy-Wasm ABI 0.2.x; Envoy clears the route cache itself when a filter changes request headers)';
        } else if (full === 'env.proxy_get_log_level') {
          why = ' (proxy_get_log_level exists only for modules exporting proxy_abi_version_0_2_1)';
        } else if (imp.kind === 'memory' && imp.module === 'env') {
          why = ' (this host needs the module to export its own memory)';
        }
        throw new Error(`Failed to load Wasm module due to a missing import: ${full}${why}`);
      }
    }
    return tables;
  }

  /** Traps when a host function is called in restricted mode (start function, _initialize, malloc) and is not allowed there. */
  private checkRestricted(full: string): void {
    if (this.restricted === CONTEXT_FREE && !CONTEXT_FREE.has(full)) {
      throw new WasmTrapError(
        `${full} called from the module's start function, where no context is current: proxy-wasm-cpp-host ` +
        'dereferences a null context there (the proxy crashes). Call host functions from _initialize or the proxy_on_* callbacks',
      );
    }
    if (this.restricted !== null && !this.restricted.has(full)) {
      throw new WasmTrapError(`restricted_callback: ${full} may not be called here (_initialize, _start or malloc)`);
    }
  }

  /**
   * `fn` behind cpp-host's restricted-mode check (and, with timeHostCalls, timed), as a
   * wrapper of `fn`'s own arity made for this import alone (see guardFactory): a host call costs
   * one null test and a direct call V8 can inline, with no rest array or spread.
   */
  private guarded(full: string, fn: HostFn): HostFn {
    return guardFactory(full, fn.length, this.timeHostCalls)(this, fn, full, nowMs);
  }

  /** Host-call timing (timeHostCalls): called by the timed wrappers around the outermost host call. */
  private addHostMs(ms: number): void {
    this.hostNsTotal += ms * 1e6;
  }

  private property(parts: string[]): Uint8Array | null {
    const o = this.owner;
    const s = this.ctx().stream;
    const name = parts.join('.');
    switch (name) {
      case 'plugin_root_id':
        return enc.encode(o.rootIdName);
      case 'plugin_name':
        return enc.encode(o.pluginName);
      case 'plugin_vm_id':
        return enc.encode(this.vmId);
      case 'node.id':
        return enc.encode(o.nodeId);
    }
    return s ? s.property(parts) : null;
  }

  private deliverHttpResponse(token: number, res: HttpCallResponse | 'reset'): void {
    if (!this.pendingCalls.delete(token)) return;
    if (this.failed || this.closed) return;
    const root = this.contexts.get(this.rootContextId);
    if (!root) return;
    if (res === 'reset') {
      // Envoy onHttpCallFailure: status BrokenConnection "reset", no headers/body/trailers.
      this.status = { code: WasmResult.BrokenConnection, message: 'reset' };
      this.call('proxy_on_http_call_response', [root.id, token, 0, 0, 0], root);
      this.status = { code: 0, message: '' };
      return;
    }
    this.httpResponse = res;
    try {
      this.call('proxy_on_http_call_response', [root.id, token, res.headers.length, res.body.length, res.trailers.length], root);
    } finally {
      this.httpResponse = null;
    }
  }

  /** Bytes of linear memory (for leak checks). */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }
}

export function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

export function randomFill(buf: Uint8Array): void {
  randomFillSync(buf);
}
