// One Wasm VM (one Envoy worker's copy of the module): instantiation, every call into it
// (timed, trap-guarded, with the actions deferred to its end), the restricted modes, and the
// root context's HTTP calls. The host functions it imports are in hostFunctions/ (cpp-host's
// src/exports.cc), its contexts in contexts.ts (src/context.cc), its memory in
// linearMemory.ts; behaviour follows proxy-wasm-cpp-host's src/wasm.cc.
import { randomFillSync } from 'node:crypto';
import { CALLOUT_INCREMENT, WasmResult } from './abi.js';
import type { Clock } from './clock.js';
import { type ContextRecord, Contexts } from './contexts.js';
import type { HttpCallRequest, HttpCallResponse } from './httpCaller.js';
import { buildImports } from './hostFunctions/imports.js';
import type { HostFn } from './hostFunctions/hostFunction.js';
import { LinearMemory } from './linearMemory.js';
import type { SharedDataStore } from './sharedDataStore.js';
import { WasmTrapError } from './wasmTrapError.js';

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

/** A metric as the host keeps it for a VM (one per name, shared by every VM defining it). */
export interface MetricHandle {
  get(): bigint;
  add(v: bigint): void;
  set(v: bigint): void;
  record(v: bigint): void;
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
  defineMetric(type: number, name: string): MetricHandle;
  hasCluster(name: string): boolean;
  /** Starts an HTTP call to a known cluster; null if it could not start. The result is delivered later through `deliver`. */
  startHttpCall(req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void): { cancel(): void } | null;
  setTickPeriod(vm: WasmVm, periodMs: number): void;
  post(fn: () => void): void;
  random(buf: Uint8Array): void;
  onTrap(vm: WasmVm, fn: string, error: unknown): void;
}

/** A bound clock read: a double, no allocation (process.hrtime.bigint() makes a BigInt per read). */
const nowMs = performance.now.bind(performance);

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
  readonly mem: LinearMemory;
  readonly contexts: Contexts;
  failed = false;
  /** What failed it: the export that trapped and the error. */
  failure = '';
  closed = false;
  // Read once: the owner's values are fixed for the VM's life, and the host functions read them on every call.
  readonly store: SharedDataStore;
  readonly vmId: string;
  readonly logLevel: number;
  readonly clock: Clock;
  readonly timeHostCalls: boolean;
  private readonly timeCalls: boolean;
  private readonly exportsFns: Record<string, HostFn>;
  private readonly malloc: ((size: number) => number) | null;
  /** Read by the generated import wrappers (hostFunctions/imports.ts), as are hostDepth, checkRestricted and addHostMs. */
  private restricted: Set<string> | null = null;
  /** Host-function time (ns) so far, when timeHostCalls: outermost host calls only, minus the module's malloc inside them. */
  private hostNsTotal = 0;
  private hostDepth = 0;
  private depth = 0;
  private afterCall: Array<() => void> = [];
  /** cpp-host's stop_iteration_: set by proxy_send_local_response, cleared when the hook returns. */
  private stopNext = false;
  private lastCallStopped = false;
  private nextHttpCallId = 0;
  private readonly pendingCalls = new Map<number, { cancel(): void }>();

  constructor(readonly owner: VmOwner, module: WebAssembly.Module, readonly abi: AbiVersion) {
    this.store = owner.store;
    this.vmId = owner.vmId;
    this.logLevel = owner.logLevel;
    this.clock = owner.clock;
    this.timeHostCalls = owner.timeHostCalls;
    this.timeCalls = owner.timeCalls;
    this.contexts = new Contexts(owner);
    this.mem = new LinearMemory((size) => this.alloc(size));
    const imports = buildImports(this, module);
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
    this.mem.attach(memory);
    this.exportsFns = {};
    for (const [k, v] of Object.entries(ex)) if (typeof v === 'function') this.exportsFns[k] = v as HostFn;
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
    const contexts = this.contexts;
    const id = contexts.allocId();
    contexts.rootId = id;
    const root: ContextRecord = { id, rootId: id, stream: null };
    contexts.add(root);
    contexts.pluginConfigVisible = true;
    try {
      this.call('proxy_on_context_create', [id, 0], root);
      if (this.failed) return 'the module trapped in proxy_on_context_create';
    } finally {
      contexts.pluginConfigVisible = false;
    }
    if (this.has('proxy_on_vm_start')) {
      const r = this.call('proxy_on_vm_start', [id, this.owner.vmConfig.length], root);
      if (this.failed) return 'the module trapped in proxy_on_vm_start';
      if (r === 0) return 'proxy_on_vm_start returned false (VM start rejected)';
    }
    if (this.has('proxy_on_configure')) {
      contexts.pluginConfigVisible = true;
      try {
        const r = this.call('proxy_on_configure', [id, this.owner.pluginConfig.length], root);
        if (this.failed) return 'the module trapped in proxy_on_configure';
        if (r === 0) return 'proxy_on_configure returned false (configuration rejected)';
      } finally {
        contexts.pluginConfigVisible = false;
      }
    }
    return null;
  }

  /** Calls a `proxy_on_*` export for a context, timed and trap-guarded; returns its u32 result, or null if absent/failed. */
  call(fn: string, args: number[], ctx: ContextRecord | null): number | null {
    if (this.failed) return null;
    const f = this.exportsFns[fn];
    if (!f) return null;
    return this.invoke(fn, f, args, ctx);
  }

  private invoke(fn: string, f: HostFn, args: number[], ctx: ContextRecord | null): number | null {
    const contexts = this.contexts;
    const prevCurrent = contexts.current;
    const prevEffective = contexts.effective;
    contexts.current = ctx;
    contexts.effective = null;
    this.depth++;
    // Only a stream's calls are timed (Stream.wasmNs), and only with timeCalls.
    const stream = ctx === null || !this.timeCalls ? null : ctx.stream;
    const h0 = this.hostNsTotal;
    const t0 = stream !== null ? nowMs() : 0;
    let result: number;
    try {
      const r = callExport(f, args);
      result = typeof r === 'number' ? r >>> 0 : typeof r === 'bigint' ? Number(BigInt.asUintN(32, r)) : 0;
    } catch (e) {
      if (stream !== null) stream.addWasmNs((nowMs() - t0) * 1e6, this.hostNsTotal - h0);
      this.failed = true;
      this.failure = `${fn}: ${describe(e)}`;
      this.depth--;
      contexts.current = prevCurrent;
      contexts.effective = prevEffective;
      this.afterCall = [];
      this.stopNext = false;
      this.lastCallStopped = false;
      this.owner.onTrap(this, fn, e);
      return null;
    }
    if (stream !== null) stream.addWasmNs((nowMs() - t0) * 1e6, this.hostNsTotal - h0);
    this.depth--;
    contexts.current = prevCurrent;
    contexts.effective = prevEffective;
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

  deferAfterCall(fn: () => void): void {
    if (this.depth > 0) this.afterCall.push(fn);
    else fn();
  }

  /** proxy_send_local_response raises cpp-host's stop flag: the running hook reads as stopped. */
  stopNextIteration(): void {
    this.stopNext = true;
  }

  /** Whether the module sent a local reply during the call that returned last (cpp-host's isNextIterationStopped as the hook returned). */
  get lastCallStoppedIteration(): boolean {
    return this.lastCallStopped;
  }

  /** cpp-host allocMemory: calls the module's allocator in restricted mode; 0 when it fails or returns an unusable pointer. */
  private alloc(size: number): number {
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
    if (p + size > this.mem.bytes().length) return 0;
    return p;
  }

  /** Traps when a host function is called where it may not be: the start function (no context), or restricted mode. */
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

  /** Host-call timing (timeHostCalls): called by the timed wrappers around the outermost host call. */
  private addHostMs(ms: number): void {
    this.hostNsTotal += ms * 1e6;
  }

  // ---- the root context's HTTP calls, queues and ticks ----

  /** Starts proxy_http_call's request; its token (4, 8, 12...), or null when it could not start. */
  startHttpCall(req: HttpCallRequest): number | null {
    const token = (this.nextHttpCallId + CALLOUT_INCREMENT) >>> 0;
    this.nextHttpCallId = token;
    const handle = this.owner.startHttpCall(req, (res) => this.deliverHttpResponse(token, res));
    if (handle === null) return null;
    this.pendingCalls.set(token, handle);
    return token;
  }

  private deliverHttpResponse(token: number, res: HttpCallResponse | 'reset'): void {
    if (!this.pendingCalls.delete(token)) return;
    if (this.failed || this.closed) return;
    const contexts = this.contexts;
    const root = contexts.root();
    if (!root) return;
    if (res === 'reset') {
      // Envoy onHttpCallFailure: status BrokenConnection "reset", no headers/body/trailers.
      contexts.status = { code: WasmResult.BrokenConnection, message: 'reset' };
      this.call('proxy_on_http_call_response', [root.id, token, 0, 0, 0], root);
      contexts.status = { code: 0, message: '' };
      return;
    }
    contexts.httpResponse = res;
    try {
      this.call('proxy_on_http_call_response', [root.id, token, res.headers.length, res.body.length, res.trailers.length], root);
    } finally {
      contexts.httpResponse = null;
    }
  }

  /** A shared queue this VM registered has data: proxy_on_queue_ready, on a later turn. */
  queueReady(contextId: number, token: number): void {
    this.owner.post(() => {
      const c = this.contexts.get(contextId);
      if (!c || this.failed || this.closed) return;
      this.call('proxy_on_queue_ready', [contextId, token], c);
    });
  }

  tick(): void {
    const root = this.contexts.root();
    if (root && !this.closed) this.call('proxy_on_tick', [root.id], root);
  }

  /** Shuts the VM down: root on_done (then on_delete), pending calls cancelled, shared-data reference dropped. */
  close(): void {
    if (this.closed) return;
    const root = this.contexts.root();
    if (root && !this.failed) {
      // Envoy would wait for proxy_done when on_done answers false; this host does not wait (no pending work survives close).
      this.call('proxy_on_done', [root.id], root);
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
