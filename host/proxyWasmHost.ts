// ProxyWasmHost: N worker VMs of one proxy-wasm module over one shared-data store,
// the way Envoy runs a Wasm HTTP filter (one VM per worker thread).
import { readFileSync } from 'node:fs';
import { LOG_LEVELS, LogLevelName, MetricType } from './abi.js';
import { Clock, ManualClock, RealClock } from './clock.js';
import { HttpCaller } from './httpCaller.js';
import { SharedDataStore, globalSharedData } from './sharedDataStore.js';
import { Stream, StreamEnv, StreamOptions } from './stream.js';
import type { HttpCallRequest, HttpCallResponse } from './httpCaller.js';

/**
 * An Envoy cluster served in-process: it is handed each proxy_http_call
 * request and answers through `deliver`, later (never from inside the call,
 * as Envoy's async client never does).
 */
export type HttpCallHandler = (req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void) => { cancel(): void };
import { AbiVersion, MetricHandle, VmOwner, WasmVm, describe, randomFill } from './wasmVm.js';

/** Envoy's default per-connection buffer limit (listener per_connection_buffer_limit_bytes), which bounds a buffered body. */
export const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;
/** Envoy runs one VM per worker thread; two workers show cross-VM effects without costing much. */
export const DEFAULT_WORKERS = 2;

/** The worker number the configuration canary logs under (LogEvent.worker, TrapEvent.worker). */
export const CANARY_WORKER = -1;

export interface LogEvent {
  level: LogLevelName;
  message: string;
  /** The worker VM, or CANARY_WORKER (-1) for the configuration canary. */
  worker: number;
}

export interface TrapEvent {
  worker: number;
  /** The export that was running, e.g. proxy_on_request_headers. */
  function: string;
  error: unknown;
  /** V8's stack: wasm frames carry function names (from the name section) or indices, and byte offsets. */
  stack: string;
}

export interface HostOptions {
  /** The module bytes or a path to the .wasm file. */
  wasm: Uint8Array | string;
  workers?: number;
  rootId?: string;
  vmId?: string;
  pluginName?: string;
  pluginConfig?: string | Uint8Array;
  vmConfig?: string | Uint8Array;
  /**
   * Envoy cluster name -> base URL for proxy_http_call, e.g. {control_plane: 'http://127.0.0.1:9090'},
   * or an in-process handler that answers the calls itself (simulations on a manual clock).
   */
  clusters?: Record<string, string | HttpCallHandler>;
  /** On a VM failure, let streams through unfiltered (Envoy fail_open: true) instead of answering 503. */
  failOpen?: boolean;
  bufferLimitBytes?: number;
  /**
   * Envoy PluginConfig.allow_on_headers_stop_iteration (Envoy >= 1.35). true: StopIteration from
   * on_request_headers holds the headers and the body is offered to on_request_body. false (Envoy's
   * default, and the only behaviour before 1.35): StopIteration becomes StopAllIterationAndWatermark,
   * the body is buffered without reaching the filter until it calls proxy_continue_stream.
   */
  allowOnHeadersStopIteration?: boolean;
  clock?: Clock;
  sharedData?: SharedDataStore;
  logLevel?: LogLevelName;
  onLog?: (e: LogEvent) => void;
  onTrap?: (e: TrapEvent) => void;
  nodeId?: string;
  /** WASI environment variables the module can read. */
  envs?: Record<string, string>;
  /** Seed for WASI random_get (deterministic simulation); default: crypto random. */
  randomSeed?: number;
  /**
   * Time the host functions the module calls, apart (Stream.hostNs), for a benchmark's breakdown.
   * Off by default: it adds two clock reads and a rest/spread call to every host call.
   */
  timeHostCalls?: boolean;
  /**
   * Time each call into the module for Stream.wasmNs (default true). false spares the two clock
   * reads per hook (about 0.8 us a request on this machine) when nobody reads wasmNs, e.g. a
   * simulation; wasmNs and hostNs then stay 0. timeHostCalls needs it.
   */
  timeCalls?: boolean;
  /**
   * Configure a throwaway VM first, before any worker's (default true, as Envoy: cpp-host's
   * createWasm runs WasmHandleBase::canary). A bad configuration is rejected before a worker
   * starts; what the canary did stays: its shared-data writes and metric definitions (e.g. it
   * takes the first VM id a module hands out through shared data). It is then dropped without
   * on_done or on_delete, its timers and HTTP calls with it.
   */
  canary?: boolean;
}

export interface MetricValue {
  type: 'counter' | 'gauge' | 'histogram';
  /** Counter/gauge value; for a histogram the number of recorded samples. */
  value: number;
  /** Histogram samples (kept for tests and reports). */
  samples?: number[];
}

class Metric {
  value = 0n;
  samples: number[] = [];
  constructor(readonly type: number) {}
}

/** The per-worker slot: the live VM and its tick schedule. */
class Worker implements VmOwner {
  vm: WasmVm | null = null;
  tickPeriodMs = 0;
  nextTickNs = 0n;
  timer: NodeJS.Timeout | null = null;
  /** A VM is being started and configured in this slot. */
  starting = false;
  constructor(readonly host: ProxyWasmHost, readonly worker: number) {}

  get clock() { return this.host.clock; }
  get store() { return this.host.sharedData; }
  get rootIdName() { return this.host.rootId; }
  get vmId() { return this.host.vmId; }
  get pluginName() { return this.host.pluginName; }
  get nodeId() { return this.host.nodeId; }
  get pluginConfig() { return this.host.pluginConfigBytes; }
  get vmConfig() { return this.host.vmConfigBytes; }
  get logLevel() { return this.host.logLevelNumber; }
  get envs() { return this.host.envs; }
  get timeHostCalls() { return this.host.timeHostCalls; }
  get timeCalls() { return this.host.timeCalls; }

  log(level: number, message: string): void {
    this.host.emitLog(level, message, this.worker);
  }
  defineMetric(type: number, name: string) {
    return this.host.defineMetric(type, name);
  }
  hasCluster(name: string): boolean {
    return this.host.cluster(name) !== null;
  }
  startHttpCall(req: HttpCallRequest, deliver: (res: HttpCallResponse | 'reset') => void) {
    const c = this.host.cluster(req.cluster)!;
    return typeof c === 'string' ? this.host.http.start(c, req, deliver) : c(req, deliver);
  }
  setTickPeriod(vm: WasmVm, periodMs: number): void {
    if (vm !== this.vm) return;
    this.host.setTickPeriod(this, periodMs);
  }
  post(fn: () => void): void {
    this.host.post(fn);
  }
  random(buf: Uint8Array): void {
    this.host.random(buf);
  }
  onTrap(vm: WasmVm, fn: string, error: unknown): void {
    this.host.handleTrap(this, vm, fn, error);
  }
}

export class ProxyWasmHost {
  readonly clock: Clock;
  readonly sharedData: SharedDataStore;
  readonly rootId: string;
  readonly vmId: string;
  readonly pluginName: string;
  readonly nodeId: string;
  readonly pluginConfigBytes: Uint8Array;
  readonly vmConfigBytes: Uint8Array;
  readonly logLevelNumber: number;
  readonly envs: Record<string, string>;
  readonly timeHostCalls: boolean;
  readonly timeCalls: boolean;
  readonly http = new HttpCaller();
  /** Number of traps (VM failures) so far. */
  traps = 0;
  private readonly workers: Worker[] = [];
  private readonly module: WebAssembly.Module;
  private readonly abi: AbiVersion;
  private readonly metricsByName = new Map<string, Metric>();
  private rr = 0;
  private pending: Array<() => void> = [];
  private flushScheduled = false;
  private closed = false;
  private rng: number;
  private readonly streamEnv: StreamEnv;

  private constructor(private readonly opts: HostOptions, module: WebAssembly.Module, abi: AbiVersion) {
    this.module = module;
    this.abi = abi;
    this.clock = opts.clock ?? new RealClock();
    this.sharedData = opts.sharedData ?? globalSharedData();
    this.rootId = opts.rootId ?? 'prefix_router';
    this.vmId = opts.vmId ?? 'prefix_router';
    this.pluginName = opts.pluginName ?? this.rootId;
    this.nodeId = opts.nodeId ?? 'prefix-router-gateway';
    const bytes = (v: string | Uint8Array | undefined) => (v === undefined ? new Uint8Array(0) : typeof v === 'string' ? new TextEncoder().encode(v) : Uint8Array.from(v));
    this.pluginConfigBytes = bytes(opts.pluginConfig);
    this.vmConfigBytes = bytes(opts.vmConfig);
    const level = opts.logLevel ?? 'info';
    const n = LOG_LEVELS.indexOf(level);
    if (n < 0) throw new Error(`logLevel must be one of ${LOG_LEVELS.join(', ')}; got '${level}'`);
    this.logLevelNumber = n;
    this.envs = opts.envs ?? {};
    this.timeHostCalls = opts.timeHostCalls ?? false;
    this.timeCalls = opts.timeCalls ?? true;
    if (this.timeHostCalls && !this.timeCalls) throw new Error('timeHostCalls needs timeCalls (host-function time is part of the timed calls)');
    this.rng = (opts.randomSeed ?? 0) >>> 0 || 0x9e3779b9;
    const bufferLimitBytes = opts.bufferLimitBytes ?? DEFAULT_BUFFER_LIMIT_BYTES;
    if (!Number.isInteger(bufferLimitBytes) || bufferLimitBytes < 0) throw new Error(`bufferLimitBytes must be a whole number >= 0; got ${bufferLimitBytes}`);
    this.streamEnv = {
      failOpen: opts.failOpen ?? false,
      bufferLimitBytes,
      allowOnHeadersStopIteration: opts.allowOnHeadersStopIteration ?? true,
      nowNs: () => this.clock.nowNs(),
    };
  }

  /** Loads the module, starts `workers` VMs and configures each; throws if loading fails or a VM rejects its configuration. */
  static async create(opts: HostOptions): Promise<ProxyWasmHost> {
    const bytes = typeof opts.wasm === 'string' ? readFileSync(opts.wasm) : opts.wasm;
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (e) {
      throw new Error(`Wasm module failed to compile${typeof opts.wasm === 'string' ? ` (${opts.wasm})` : ''}: ${describe(e)}`);
    }
    const names = WebAssembly.Module.exports(module).map((e) => e.name);
    let abi: AbiVersion;
    if (names.includes('proxy_abi_version_0_2_1')) abi = '0.2.1';
    else if (names.includes('proxy_abi_version_0_2_0')) abi = '0.2.0';
    else if (names.includes('proxy_abi_version_0_1_0')) throw new Error('Wasm module uses Proxy-Wasm ABI 0.1.0; this host implements 0.2.x only');
    else throw new Error('Missing or unknown Proxy-Wasm ABI version: the module exports neither proxy_abi_version_0_2_0 nor proxy_abi_version_0_2_1');
    const workers = opts.workers ?? DEFAULT_WORKERS;
    if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a whole number >= 1; got ${workers}`);
    for (const [name, url] of Object.entries(opts.clusters ?? {})) {
      if (typeof url === 'function') continue;
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw new Error(`clusters.${name}: '${url}' is not a URL (expected e.g. http://127.0.0.1:9090)`);
      }
      if (u.protocol !== 'http:') throw new Error(`clusters.${name}: only http:// URLs are supported; got '${url}'`);
    }
    const host = new ProxyWasmHost(opts, module, abi);
    // The base Wasm's hold on the vm_id (cpp-host VmIdHandle): shared data outlives the canary and
    // a replaced VM, and goes when the host closes.
    host.sharedData.retain(host.vmId);
    try {
      if (opts.canary ?? true) {
        const err = host.runCanary();
        if (err) throw new Error(`configuration canary: ${err}`);
      }
      for (let i = 0; i < workers; i++) {
        const w = new Worker(host, i);
        host.workers.push(w);
        const err = host.startVm(w);
        if (err) throw new Error(`worker ${i}: ${err}`);
      }
    } catch (e) {
      await host.close();
      throw e;
    }
    return host;
  }

  /** cpp-host's WasmHandleBase::canary: a VM that starts and configures, then is killed; returns why it failed, or null. */
  private runCanary(): string | null {
    const slot = new Worker(this, CANARY_WORKER);
    const err = this.startVm(slot);
    const canary = slot.vm;
    slot.vm = null; // no tick, queue or HTTP-call delivery reaches it from here on
    canary?.kill();
    this.clearTimer(slot);
    return err;
  }

  /** Instantiates and configures a VM into the worker slot; returns why it failed, or null. */
  private startVm(w: Worker): string | null {
    let vm: WasmVm;
    try {
      vm = new WasmVm(w, this.module, this.abi);
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
    w.vm = vm;
    w.tickPeriodMs = 0;
    this.clearTimer(w);
    w.starting = true; // a trap now fails the start; it does not start another VM
    let reason: string | null;
    try {
      vm.startVm();
      reason = vm.failed ? `the module trapped in ${vm.failure}` : vm.startRoot();
    } finally {
      w.starting = false;
    }
    if (reason) {
      vm.failed = true;
      vm.close();
      w.vm = null;
      return `${reason}; the VM is not used (Envoy rejects the filter configuration)`;
    }
    return null;
  }

  get workerCount(): number {
    return this.workers.length;
  }

  /** The live VM of a worker (null while a failed VM could not be replaced). */
  vm(worker: number): WasmVm | null {
    return this.workers[worker]?.vm ?? null;
  }

  /** A new HTTP stream on a worker (round-robin unless `worker` is given). */
  newStream(opts: StreamOptions = {}): Stream {
    if (this.closed) throw new Error('host is closed');
    let worker = opts.worker;
    if (worker === undefined) {
      worker = this.rr;
      this.rr = (this.rr + 1) % this.workers.length;
    } else if (!Number.isInteger(worker) || worker < 0 || worker >= this.workers.length) {
      throw new Error(`worker must be 0..${this.workers.length - 1}; got ${worker}`);
    }
    const w = this.workers[worker];
    if (!w.vm && !this.closed) this.startVm(w); // retry a VM that could not be replaced before
    return new Stream(w.vm, worker, this.streamEnv, opts);
  }

  // ---- logging, metrics ----

  emitLog(level: number, message: string, worker: number): void {
    const e: LogEvent = { level: LOG_LEVELS[level] ?? 'info', message, worker };
    if (this.opts.onLog) this.opts.onLog(e);
    else process.stderr.write(`[wasm ${this.rootId} ${worker === CANARY_WORKER ? 'canary' : `worker ${worker}`}] ${e.level}: ${message}\n`);
  }

  defineMetric(type: number, name: string): MetricHandle {
    let m = this.metricsByName.get(name);
    if (!m || m.type !== type) {
      m = new Metric(type);
      this.metricsByName.set(name, m);
    }
    const metric = m;
    return {
      get: () => metric.value,
      add: (v: bigint) => {
        metric.value = BigInt.asUintN(64, metric.value + v);
      },
      set: (v: bigint) => {
        metric.value = v;
      },
      record: (v: bigint) => {
        metric.samples.push(Number(v));
      },
    };
  }

  /** Metrics the module defined, by the name it gave (shared by all workers, like Envoy's stats). */
  metrics(): Map<string, MetricValue> {
    const out = new Map<string, MetricValue>();
    for (const [name, m] of this.metricsByName) {
      if (m.type === MetricType.Counter) out.set(name, { type: 'counter', value: Number(m.value) });
      else if (m.type === MetricType.Gauge) out.set(name, { type: 'gauge', value: Number(BigInt.asIntN(64, m.value)) });
      else out.set(name, { type: 'histogram', value: m.samples.length, samples: [...m.samples] });
    }
    return out;
  }

  /** Total linear memory of all live VMs, in bytes. */
  memoryBytes(): number {
    return this.workers.reduce((n, w) => n + (w.vm?.memoryBytes() ?? 0), 0);
  }

  cluster(name: string): string | HttpCallHandler | null {
    const c = this.opts.clusters ?? {};
    return Object.prototype.hasOwnProperty.call(c, name) ? c[name] : null;
  }

  random(buf: Uint8Array): void {
    if (this.opts.randomSeed === undefined) {
      randomFill(buf);
      return;
    }
    for (let i = 0; i < buf.length; i++) {
      let x = this.rng;
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      this.rng = x;
      buf[i] = x & 0xff;
    }
  }

  // ---- deferred events (queue ready) ----

  post(fn: () => void): void {
    this.pending.push(fn);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.runPending();
      });
    }
  }

  /** Delivers posted events (proxy_on_queue_ready) now; a simulation driver can call this instead of waiting a turn of the event loop. */
  runPending(): void {
    while (this.pending.length && !this.closed) {
      const batch = this.pending;
      this.pending = [];
      for (const f of batch) f();
    }
  }

  // ---- ticks ----

  setTickPeriod(w: Worker, periodMs: number): void {
    this.clearTimer(w);
    w.tickPeriodMs = periodMs;
    if (periodMs === 0 || this.closed) return;
    const periodNs = BigInt(periodMs) * 1_000_000n;
    w.nextTickNs = this.clock.nowNs() + periodNs;
    if (!this.clock.manual) {
      w.timer = setInterval(() => w.vm?.tick(), periodMs);
      w.timer.unref();
    }
  }

  private clearTimer(w: Worker): void {
    if (w.timer) clearInterval(w.timer);
    w.timer = null;
  }

  /** Fires one tick now on a worker's root context (or on every worker). */
  tick(worker?: number): void {
    for (const w of worker === undefined ? this.workers : [this.workers[worker]]) {
      if (w?.vm && w.tickPeriodMs > 0) w.vm.tick();
    }
  }

  /** Manual clock: moves time to `ns`, firing every tick due on the way, in time order. */
  advanceTo(ns: bigint): void {
    const clock = this.clock;
    if (!(clock instanceof ManualClock)) throw new Error('advanceTo needs a ManualClock (create the host with clock: new ManualClock())');
    for (;;) {
      let next: Worker | null = null;
      for (const w of this.workers) {
        if (w.vm && w.tickPeriodMs > 0 && w.nextTickNs <= ns && (!next || w.nextTickNs < next.nextTickNs)) next = w;
      }
      if (!next) break;
      clock.set(next.nextTickNs > clock.nowNs() ? next.nextTickNs : clock.nowNs());
      next.nextTickNs += BigInt(next.tickPeriodMs) * 1_000_000n;
      next.vm!.tick();
      this.runPending();
    }
    clock.set(ns > clock.nowNs() ? ns : clock.nowNs());
  }

  /** Manual clock: fires the ticks due at the current time. */
  runDueTicks(): void {
    this.advanceTo(this.clock.nowNs());
  }

  /** The earliest time a tick is due (manual clock), or null if no worker has a tick period. */
  nextTickAt(): bigint | null {
    let t: bigint | null = null;
    for (const w of this.workers) if (w.vm && w.tickPeriodMs > 0 && (t === null || w.nextTickNs < t)) t = w.nextTickNs;
    return t;
  }

  // ---- traps ----

  handleTrap(w: Worker, vm: WasmVm, fn: string, error: unknown): void {
    this.traps++;
    const stack = error instanceof Error ? error.stack ?? `${error.name}: ${error.message}` : String(error);
    const e: TrapEvent = { worker: w.worker, function: fn, error, stack };
    this.emitLog(4, `Function: ${fn} failed: ${describe(error)}\n${stack}`, w.worker);
    this.opts.onTrap?.(e);
    if (w.vm !== vm || w.starting || this.closed) return;
    // The failed VM stays with the streams it served (they fail closed/open); new streams get a fresh VM.
    // Replacement runs right away: the trap was caught after the wasm stack unwound.
    w.vm = null;
    const err = this.startVm(w);
    vm.close();
    if (err) this.emitLog(4, `worker ${w.worker}: replacement VM failed: ${err}`, w.worker);
  }

  /** Stops ticks, cancels HTTP calls, shuts VMs down (root on_done/on_delete) and drops the shared-data reference. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) {
      this.clearTimer(w);
      w.vm?.close();
      w.vm = null;
    }
    this.pending = [];
    this.http.close();
    this.sharedData.release(this.vmId);
  }
}

