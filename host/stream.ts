// One HTTP stream through the filter, modelled on Envoy's FilterManager as seen by
// a single proxy-wasm filter: headers held or released, body offered, buffered
// (413 past the limit) or passed on, local replies, fail-closed/fail-open on a VM
// failure, and the end-of-stream calls (on_done, on_log, on_delete).
import { DataStatus, HeaderPairs, type ReadonlyHeaderPairs, HeadersStatus, MapType, BufferType, StreamType, WasmResult } from './abi.js';
import type { ContextRecord, StreamSide } from './contexts.js';
import type { WasmVm } from './wasmVm.js';
import { Direction, concat } from './direction.js';

export type FilterResult = 'continue' | 'stop' | 'local';

export interface LocalResponse {
  status: number;
  details: string;
  body: Uint8Array;
  headers: HeaderPairs;
}

/** Events a driver (the gateway) listens to, since the filter may release a stream later (e.g. from an HTTP callout). */
export interface StreamListener {
  /** Request headers (and any released body) may now go upstream. */
  requestReleased?(): void;
  requestData?(): void;
  responseReleased?(): void;
  responseData?(): void;
  localResponse?(r: LocalResponse): void;
  /** The filter asked to reset the stream (proxy_close_stream). */
  reset?(): void;
}

export type PropertyValue = string | number | bigint | boolean | Uint8Array;

export interface StreamOptions {
  worker?: number;
  /** Envoy attributes for this stream, e.g. {'source.address': '10.0.0.9:41234', 'connection.id': 7n}. */
  properties?: Record<string, PropertyValue>;
  listener?: StreamListener;
}

export interface StreamEnv {
  failOpen: boolean;
  bufferLimitBytes: number;
  allowOnHeadersStopIteration: boolean;
  nowNs(): bigint;
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();

export class Stream implements StreamSide {
  readonly id: number;
  readonly worker: number;
  /** Time inside the module for this stream so far, in ns (host functions it called included); a double, summed without allocating. */
  wasmNumberNs = 0;
  /** Of that, the host functions' own time (ns); only counted when the host was created with timeHostCalls. */
  hostNs = 0;
  localResponse: LocalResponse | null = null;
  /** The filter asked for a reset (proxy_close_stream), or a response could not be replaced. */
  resetRequested = false;
  private readonly ctx: ContextRecord;
  private created = false;
  private completed = false;
  private failed = false;
  private readonly req = new Direction(true);
  private readonly resp = new Direction(false);
  /** Properties the filter set (Envoy's filter state); made on the first one, since most streams set none. */
  private filterState: Map<string, Uint8Array> | null = null;
  private readonly startNs: bigint;
  private inLocalReply = false;
  private failureReplySent = false;

  constructor(private readonly vm: WasmVm | null, worker: number, private readonly env: StreamEnv, private readonly opts: StreamOptions = {}) {
    this.worker = worker;
    this.id = vm ? vm.contexts.allocId() : 0;
    this.ctx = { id: this.id, rootId: vm?.contexts.rootId ?? 0, stream: this };
    if (vm) vm.contexts.add(this.ctx);
    this.startNs = env.nowNs();
  }

  /** Time inside the module for this stream so far, in whole ns. */
  get wasmNs(): bigint {
    return BigInt(Math.round(this.wasmNumberNs));
  }

  /** True once the request headers went upstream. */
  get continued(): boolean {
    return this.req.headersReleased;
  }
  get responseContinued(): boolean {
    return this.resp.headersReleased;
  }
  /** True when the VM serving this stream has failed (trap) during its life. */
  get vmFailed(): boolean {
    return this.vm === null || this.vm.failed;
  }

  requestHeaderList(): HeaderPairs {
    return this.req.headers.map(([k, v]) => [k, v]);
  }
  responseHeaderList(): HeaderPairs {
    return this.resp.headers.map(([k, v]) => [k, v]);
  }
  /**
   * The stream's own request header map, not a copy, for a driver that reads it at once (a later
   * hook of the filter may still change it).
   */
  requestHeaderView(): ReadonlyHeaderPairs {
    return this.req.headers;
  }
  /** The stream's own response header map, as requestHeaderView. */
  responseHeaderView(): ReadonlyHeaderPairs {
    return this.resp.headers;
  }
  requestTrailerList(): HeaderPairs | null {
    return this.req.trailers ? this.req.trailers.map(([k, v]) => [k, v]) : null;
  }
  responseTrailerList(): HeaderPairs | null {
    return this.resp.trailers ? this.resp.trailers.map(([k, v]) => [k, v]) : null;
  }
  /** Request body released upstream since the last call. */
  drainRequestData(): Uint8Array {
    return this.drain(this.req);
  }
  /** Response body released downstream since the last call. */
  drainResponseData(): Uint8Array {
    return this.drain(this.resp);
  }
  /** Bytes the filter holds (buffered) right now for the request. */
  get requestBufferedBytes(): number {
    return this.req.held.length;
  }
  /** Bytes the filter holds (buffered) right now for the response. */
  get responseBufferedBytes(): number {
    return this.resp.held.length;
  }

  private drain(d: Direction): Uint8Array {
    if (d.out.length === 0) return EMPTY;
    const all = d.out.length === 1 ? d.out[0] : Buffer.concat(d.out);
    d.out = [];
    return all;
  }

  private result(d: Direction): FilterResult {
    if (this.localResponse) return 'local';
    return d.headersReleased ? 'continue' : 'stop';
  }

  private get closed(): boolean {
    return this.completed || this.localResponse !== null || this.resetRequested;
  }

  // ---- driver API ----

  /**
   * `adopt`: the stream takes `headers` as its own map instead of copying it, for a driver that
   * made it for this call (names already lower-case, values strings) and never touches it again.
   */
  requestHeaders(headers: HeaderPairs, endOfStream: boolean, adopt = false): FilterResult {
    return this.onHeaders(this.req, headers, endOfStream, adopt);
  }
  requestBody(chunk: Uint8Array, endOfStream: boolean): FilterResult {
    return this.onData(this.req, chunk, endOfStream);
  }
  requestTrailers(trailers: HeaderPairs): FilterResult {
    return this.onTrailers(this.req, trailers);
  }
  /** `adopt`: as requestHeaders. */
  responseHeaders(headers: HeaderPairs, endOfStream: boolean, adopt = false): FilterResult {
    if (this.localResponse) return 'local';
    return this.onHeaders(this.resp, headers, endOfStream, adopt);
  }
  responseBody(chunk: Uint8Array, endOfStream: boolean): FilterResult {
    if (this.localResponse) return 'local';
    return this.onData(this.resp, chunk, endOfStream);
  }
  responseTrailers(trailers: HeaderPairs): FilterResult {
    if (this.localResponse) return 'local';
    return this.onTrailers(this.resp, trailers);
  }

  /** End of stream: proxy_on_done, proxy_on_log, proxy_on_delete (skipped if the context was never created or the VM failed). */
  complete(): void {
    if (this.completed) return;
    this.completed = true;
    const vm = this.vm;
    if (vm && this.created && !vm.failed) {
      vm.call('proxy_on_done', [this.id], this.ctx);
      if (!vm.failed) vm.call('proxy_on_log', [this.id], this.ctx);
      if (!vm.failed) vm.call('proxy_on_delete', [this.id], this.ctx);
    }
    vm?.contexts.delete(this.id);
  }

  // ---- filter machinery ----

  private ensureCreated(): boolean {
    if (this.created) return true;
    const vm = this.vm;
    if (!vm || vm.failed) return false;
    this.created = true;
    vm.call('proxy_on_context_create', [this.id, this.ctx.rootId], this.ctx);
    return !vm.failed;
  }

  /** cpp-host CHECK_FAIL: a failed VM lets the stream through (fail open) or answers 503 once (fail closed). */
  private checkFail(d: Direction): FilterResult | null {
    if (!this.vmFailed && !this.failed) return null;
    this.failed = true;
    if (this.env.failOpen) {
      this.releaseAll(d);
      return this.result(d);
    }
    if (!this.failureReplySent && !this.resp.headersReleased) {
      this.failureReplySent = true;
      this.setLocal({ status: 503, details: 'wasm_fail_stream', body: EMPTY, headers: [[':status', '503'], ['content-length', '0']] });
    } else if (!this.failureReplySent) {
      this.failureReplySent = true;
      this.requestReset();
    }
    return 'local';
  }

  /** Fail open: everything held goes on unfiltered. */
  private releaseAll(d: Direction): void {
    if (d.state === 'idle' || d.headersReleased) {
      d.headersReleased = true;
      if (d.held.length) this.emit(d, d.held);
      d.held = EMPTY;
      d.state = 'flowing';
      return;
    }
    this.continueDirection(d, false);
  }

  private call(fn: string, args: number[]): number | null {
    const vm = this.vm!;
    return vm.call(fn, args, this.ctx);
  }

  private onHeaders(d: Direction, headers: HeaderPairs, endOfStream: boolean, adopt: boolean): FilterResult {
    if (this.closed) return this.localResponse ? 'local' : 'stop';
    d.headers = adopt ? headers : headers.map(([k, v]) => [k.toLowerCase(), String(v)]);
    d.endSeen = endOfStream;
    if (d.isRequest && !this.ensureCreated()) {
      const f = this.checkFail(d);
      if (f) return f;
    }
    if (!d.isRequest && !this.created) {
      // No request headers reached the filter (Envoy skips the VM when its context was never created).
      d.headersReleased = true;
      d.state = 'flowing';
      this.notify(d);
      return 'continue';
    }
    const failedEarly = this.checkFail(d);
    if (failedEarly) return failedEarly;
    d.headersAccessible = true;
    const r = this.call(d.isRequest ? 'proxy_on_request_headers' : 'proxy_on_response_headers', [this.id, d.headers.length, endOfStream ? 1 : 0]);
    const stopNext = this.vm!.lastCallStoppedIteration;
    const f = this.checkFail(d);
    if (f) return f;
    if (this.closed) return this.result(d);
    const fn = d.isRequest ? 'proxy_on_request_headers' : 'proxy_on_response_headers';
    let status = r ?? HeadersStatus.Continue;
    if (!this.vm!.has(fn)) status = HeadersStatus.Continue;
    if (stopNext || status > HeadersStatus.StopAllIterationAndWatermark) status = HeadersStatus.StopAllIterationAndWatermark;
    if (status === HeadersStatus.StopIteration && !this.env.allowOnHeadersStopIteration) {
      // cpp-host's default for ABI 0.2.x: StopIteration is turned into StopAllIterationAndWatermark
      // (proxy-wasm-cpp-host#143); Envoy >= 1.35 keeps it with allow_on_headers_stop_iteration: true.
      status = HeadersStatus.StopAllIterationAndWatermark;
    }
    if (status === HeadersStatus.Continue || status === HeadersStatus.ContinueAndEndStream) {
      if (d.state === 'idle') {
        d.state = 'flowing';
        d.headersReleased = true;
        d.headersAccessible = false;
        this.notify(d);
      }
    } else if (status === HeadersStatus.StopIteration) {
      if (d.state === 'idle') d.state = 'stopped-single';
    } else if (d.state === 'idle') {
      d.state = 'stopped-all';
    }
    return this.result(d);
  }

  private onData(d: Direction, chunk: Uint8Array, endOfStream: boolean): FilterResult {
    if (this.closed) return this.localResponse ? 'local' : 'stop';
    if (d.state === 'idle') throw new Error(`${d.isRequest ? 'request' : 'response'} body before ${d.isRequest ? 'request' : 'response'} headers`);
    d.endSeen = endOfStream;
    if (this.failed || this.vmFailed) {
      const f = this.checkFail(d);
      if (this.env.failOpen) {
        this.emit(d, chunk);
        return this.result(d);
      }
      return f ?? 'local';
    }
    if (d.state === 'stopped-all') {
      // Headers stopped all iteration: Envoy buffers the data without offering it to the filter.
      d.appendHeld(chunk);
      this.checkLimit(d);
      return this.result(d);
    }
    return this.offer(d, chunk, endOfStream);
  }

  /** Offers data to the filter (Envoy Context::decodeData/encodeData) and applies its answer. */
  private offer(d: Direction, chunk: Uint8Array, endOfStream: boolean): FilterResult {
    const wasBuffering = d.buffering;
    if (wasBuffering) {
      d.appendHeld(chunk);
      if (this.checkLimit(d)) return this.result(d);
      d.current = EMPTY;
    } else {
      d.current = chunk;
    }
    const size = wasBuffering ? d.held.length : chunk.length;
    const fn = d.isRequest ? 'proxy_on_request_body' : 'proxy_on_response_body';
    const r = this.vm!.has(fn) ? this.call(fn, [this.id, size, endOfStream ? 1 : 0]) : DataStatus.Continue;
    const stopNext = this.vm!.lastCallStoppedIteration;
    d.buffering = false;
    const f = this.checkFail(d);
    if (f) {
      if (this.env.failOpen) {
        this.emit(d, wasBuffering ? EMPTY : d.current);
        d.current = EMPTY;
      }
      return f;
    }
    if (this.closed) return this.result(d);
    let status = r ?? DataStatus.Continue;
    if (stopNext || status > DataStatus.StopIterationNoBuffer) status = DataStatus.StopIterationNoBuffer;
    const cur = d.current;
    d.current = EMPTY;
    if (status === DataStatus.Continue) {
      if (!wasBuffering) d.appendHeld(cur);
      this.continueDirection(d, false);
    } else if (status === DataStatus.StopIterationAndBuffer || status === DataStatus.StopIterationAndWatermark) {
      if (!wasBuffering) d.appendHeld(cur);
      d.buffering = true;
      if (d.state === 'flowing') d.state = 'stopped-single';
      if (status === DataStatus.StopIterationAndBuffer) this.checkLimit(d);
    } else {
      // StopIterationNoBuffer: the chunk is neither buffered nor passed on.
      if (d.state === 'flowing') d.state = 'stopped-single';
    }
    return this.result(d);
  }

  private onTrailers(d: Direction, trailers: HeaderPairs): FilterResult {
    if (this.closed) return this.localResponse ? 'local' : 'stop';
    d.endSeen = true;
    d.trailers = trailers.map(([k, v]) => [k.toLowerCase(), String(v)]);
    if (this.failed || this.vmFailed) {
      const f = this.checkFail(d);
      return f ?? this.result(d);
    }
    if (d.state === 'stopped-all') {
      d.trailersHeld = true;
      return this.result(d);
    }
    d.trailersAccessible = true;
    const fn = d.isRequest ? 'proxy_on_request_trailers' : 'proxy_on_response_trailers';
    const r = this.vm!.has(fn) ? this.call(fn, [this.id, d.trailers.length]) : 0;
    const stopNext = this.vm!.lastCallStoppedIteration;
    const f = this.checkFail(d);
    if (f) return f;
    if (this.closed) return this.result(d);
    if ((r ?? 0) === 0 && !stopNext) {
      d.trailersAccessible = false;
      if (d.state === 'stopped-single') this.continueDirection(d, false);
    } else {
      d.trailersHeld = true;
    }
    return this.result(d);
  }

  /** Envoy commonContinue: release held headers (as modified), then held data; StopAll hands the held data to the filter first. */
  private continueDirection(d: Direction, fromContinueStream: boolean): void {
    if (this.closed) return;
    if (d.state === 'stopped-all') {
      d.state = 'flowing';
      d.headersReleased = true;
      if (fromContinueStream) d.headersAccessible = false;
      this.notify(d);
      const held = d.held;
      d.held = EMPTY;
      if (held.length > 0 || (d.endSeen && !d.trailers)) {
        if (held.length > 0 || d.endSeen) this.offer(d, held, d.endSeen && !d.trailersHeld);
      }
      if (d.trailersHeld && !this.closed && d.state === 'flowing') {
        d.trailersHeld = false;
        this.onTrailers(d, d.trailers ?? []);
      }
      return;
    }
    const wasReleased = d.headersReleased;
    d.state = 'flowing';
    d.headersReleased = true;
    if (fromContinueStream) d.headersAccessible = false;
    if (!wasReleased) this.notify(d);
    if (d.held.length) this.emit(d, d.held);
    d.held = EMPTY;
    d.trailersHeld = false;
  }

  private notify(d: Direction): void {
    if (d.isRequest) this.opts.listener?.requestReleased?.();
    else this.opts.listener?.responseReleased?.();
  }

  private emit(d: Direction, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    d.out.push(bytes);
    d.outBytes += bytes.length;
    if (d.isRequest) this.opts.listener?.requestData?.();
    else this.opts.listener?.responseData?.();
  }

  /** Envoy's buffer limit: 413 on the request side, 500 on the response side (or a reset once the response started). */
  private checkLimit(d: Direction): boolean {
    if (d.held.length <= this.env.bufferLimitBytes) return false;
    if (d.isRequest) {
      this.setLocal(this.buildLocal(413, 'request_payload_too_large', enc.encode('Payload Too Large'), []), true);
    } else if (!this.resp.headersReleased) {
      this.setLocal(this.buildLocal(500, 'response_payload_too_large', enc.encode('Internal Server Error'), []), false);
    } else {
      this.requestReset();
    }
    return true;
  }

  private requestReset(): void {
    if (this.resetRequested) return;
    this.resetRequested = true;
    this.opts.listener?.reset?.();
  }

  /**
   * Envoy's local reply (Utility::prepareLocalReply): the filter's headers are added first, then
   * a body gets its content-length and, only when the filter set no content-type, text/plain; a
   * reply without a body carries neither.
   */
  private buildLocal(status: number, details: string, body: Uint8Array, extra: HeaderPairs): LocalResponse {
    const headers: HeaderPairs = [[':status', String(status)]];
    for (const [k, v] of extra) {
      const key = k.toLowerCase();
      if (key !== 'content-length' && (body.length > 0 || key !== 'content-type')) headers.push([key, v]);
    }
    if (body.length > 0) {
      headers.push(['content-length', String(body.length)]);
      if (!headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'text/plain']);
    }
    return { status, details: details.replace(/\s/g, '_'), body, headers };
  }

  /** A local reply; when it comes from the filter or the host's request side, it is encoded through the filter's response hooks (Envoy sendLocalReply via the filter chain). */
  private setLocal(r: LocalResponse, throughFilter = false): void {
    if (this.localResponse) return;
    if (this.resp.headersReleased) {
      this.requestReset();
      return;
    }
    this.req.headersAccessible = false;
    if (throughFilter && this.created && !this.vmFailed && !this.inLocalReply) {
      this.inLocalReply = true;
      const d = this.resp;
      d.state = 'idle';
      d.headers = r.headers;
      d.headersAccessible = true;
      const hasBody = r.body.length > 0;
      this.call('proxy_on_response_headers', [this.id, d.headers.length, hasBody ? 0 : 1]);
      if (hasBody && !this.vm!.failed && this.vm!.has('proxy_on_response_body')) {
        d.current = r.body;
        this.call('proxy_on_response_body', [this.id, r.body.length, 1]);
        r = { ...r, body: d.current };
        d.current = EMPTY;
      }
      d.headersAccessible = false;
      r = { ...r, headers: d.headers.map(([k, v]) => [k, v]) };
      this.inLocalReply = false;
    }
    this.localResponse = r;
    this.opts.listener?.localResponse?.(r);
  }

  // ---- StreamSide (host functions acting on this stream) ----

  headerMap(type: number, write: boolean): HeaderPairs | null {
    switch (type) {
      case MapType.RequestHeaders:
        return this.req.headersAccessible ? this.req.headers : null;
      case MapType.ResponseHeaders:
        return this.resp.headersAccessible ? this.resp.headers : null;
      case MapType.RequestTrailers:
        if (this.req.trailersAccessible) return this.req.trailers;
        return null;
      case MapType.ResponseTrailers:
        if (this.resp.trailersAccessible) return this.resp.trailers;
        return null;
      default:
        void write;
        return null;
    }
  }

  bufferBytes(type: number): Uint8Array {
    const d = type === BufferType.HttpRequestBody ? this.req : this.resp;
    // While buffering the filter sees everything held; otherwise the chunk being offered.
    return d.buffering || d.current.length === 0 ? d.held : d.current;
  }

  setBufferBytes(type: number, start: number, length: number, data: Uint8Array): number {
    const d = type === BufferType.HttpRequestBody ? this.req : this.resp;
    const useHeld = d.buffering || d.current.length === 0;
    const cur = useHeld ? d.held : d.current;
    let next: Uint8Array;
    if (start === 0) next = concat(data, cur.subarray(Math.min(length, cur.length)));
    else if (start >= cur.length) next = concat(cur, data);
    else return WasmResult.BadArgument;
    if (useHeld) d.held = next;
    else d.current = next;
    return WasmResult.Ok;
  }

  continueStream(type: number): number {
    if (type === StreamType.Request || type === StreamType.Response) {
      const d = type === StreamType.Request ? this.req : this.resp;
      this.vm!.deferAfterCall(() => this.continueDirection(d, true));
      if (type === StreamType.Request) {
        this.req.headersAccessible = false;
      }
      return WasmResult.Ok;
    }
    if (type === StreamType.Upstream) return WasmResult.Unimplemented;
    return WasmResult.Ok;
  }

  closeStream(type: number): number {
    if (type === StreamType.Request || type === StreamType.Response) this.vm!.deferAfterCall(() => this.requestReset());
    return WasmResult.Ok;
  }

  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPairs): void {
    const r = this.buildLocal(status, details, body, headers);
    this.vm!.deferAfterCall(() => this.setLocal(r, true));
  }

  setProperty(path: string, value: Uint8Array): number {
    (this.filterState ??= new Map()).set(path, Uint8Array.from(value));
    return WasmResult.Ok;
  }

  addWasmNs(ns: number, hostNs: number): void {
    this.wasmNumberNs += ns;
    this.hostNs += hostNs;
  }

  property(parts: string[]): Uint8Array | null {
    const name = parts.join('.');
    const own = this.opts.properties?.[name];
    if (own !== undefined) return encodeProperty(own);
    const req = this.req.headers;
    const h = (k: string) => req.find(([hk]) => hk === k)?.[1];
    const str = (v: string | undefined) => (v === undefined ? null : Buffer.from(v, 'latin1'));
    if (parts[0] === 'request' && parts[1] === 'headers' && parts.length === 3) return str(h(parts[2].toLowerCase()));
    if (parts[0] === 'response' && parts[1] === 'headers' && parts.length === 3) return str(this.resp.headers.find(([k]) => k === parts[2].toLowerCase())?.[1]);
    switch (name) {
      case 'request.path':
        return str(h(':path'));
      case 'request.url_path': {
        const p = h(':path');
        return p === undefined ? null : str(p.split('?')[0]);
      }
      case 'request.host':
        return str(h(':authority'));
      case 'request.scheme':
        return str(h(':scheme'));
      case 'request.method':
        return str(h(':method'));
      case 'request.id':
        return str(h('x-request-id'));
      case 'request.useragent':
        return str(h('user-agent'));
      case 'request.referer':
        return str(h('referer'));
      case 'request.protocol':
        return enc.encode('HTTP/1.1');
      case 'request.time':
        return encodeProperty(this.startNs);
      case 'request.size': {
        const cl = h('content-length');
        return cl === undefined ? null : encodeProperty(BigInt(Number(cl) || 0));
      }
      case 'response.code': {
        const s = this.localResponse?.status ?? Number(this.resp.headers.find(([k]) => k === ':status')?.[1]);
        return Number.isFinite(s) ? encodeProperty(BigInt(s)) : null;
      }
      case 'response.code_details':
        return this.localResponse ? enc.encode(this.localResponse.details) : null;
      case 'source.address':
        return enc.encode('127.0.0.1:0');
      case 'source.port':
        return encodeProperty(0n);
      case 'destination.address':
        return enc.encode('127.0.0.1:0');
      case 'destination.port':
        return encodeProperty(0n);
      case 'connection.id':
        return encodeProperty(BigInt(this.id));
      case 'connection.mtls':
        return encodeProperty(false);
    }
    const state = this.filterState;
    return state === null ? null : state.get(name) ?? state.get(parts.join('\0')) ?? null;
  }
}

/** Envoy's serialization of attribute values: strings as bytes, integers as 8-byte LE, booleans as 1 byte. */
export function encodeProperty(v: PropertyValue): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return Buffer.from(v, 'latin1');
  if (typeof v === 'boolean') return Uint8Array.of(v ? 1 : 0);
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(Math.trunc(v))));
  return b;
}
