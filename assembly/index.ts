// prefix-router: the module's entry. Exports the proxy-wasm 0.2.x ABI and
// dispatches each call to the root context or the stream it names. An id the
// module does not know is ignored, never a trap.
import { FilterData, FilterHeaders, endStartCode, hostAlloc } from "./abi/hostCalls";
import { HttpContext } from "./httpContext";
import { RootContext } from "./rootContext";

export { abortHandler } from "./abi/hostCalls";

/**
 * Contexts by id, the one looked up last kept aside: a context's calls mostly
 * come one after another (a stream's hooks; streams created under the one
 * root), so most calls skip the map's two lookups (has, then get).
 */
@final
class Contexts<T> {
  private readonly byId: Map<u32, T> = new Map<u32, T>();
  private lastId: u32 = 0;
  private last: T | null = null;

  get(id: u32): T | null {
    const last = this.last;
    if (last !== null && this.lastId == id) return last;
    if (!this.byId.has(id)) return null;
    const c = this.byId.get(id);
    this.lastId = id;
    this.last = c;
    return c;
  }

  set(id: u32, c: T): void {
    this.byId.set(id, c);
    this.lastId = id;
    this.last = c;
  }

  delete(id: u32): void {
    this.byId.delete(id);
    if (this.lastId == id) this.last = null;
  }
}

const roots = new Contexts<RootContext>();
const streams = new Contexts<HttpContext>();
/** Finished streams, reused so the request path allocates no context objects. */
const pool: Array<HttpContext> = [];
/** Streams kept for reuse at most; beyond this, finished ones are left to the collector. */
const POOL_MAX = 1024;
/**
 * The module runs AssemblyScript's minimal runtime: no shadow stack and no
 * write barriers on the request path, and the collector runs only when called,
 * here at the end of an export, when no object is held by the stack alone.
 * It runs on every tick (ticks are off the request path); a VM without ticks
 * (sharedState: false) collects after this many finished streams instead.
 */
const COLLECT_EVERY_STREAMS: u32 = 4096;
let streamsSinceCollect: u32 = 0;

@inline function collect(): void {
  __collect();
  streamsSinceCollect = 0;
}

export function proxy_abi_version_0_2_0(): void {}

/** Memory for data the host hands in; the module frees it once read (HostBytes.free). */
export function malloc(size: usize): usize {
  return hostAlloc(size);
}
export function proxy_on_memory_allocate(size: usize): usize {
  return hostAlloc(size);
}

export function proxy_on_context_create(id: u32, parent: u32): void {
  if (parent == 0) {
    if (roots.get(id) === null) roots.set(id, new RootContext(id));
    return;
  }
  const root = roots.get(parent);
  if (root === null) return;
  const s = pool.length > 0 ? pool.pop() : new HttpContext();
  s.reset(id, root.router, root.paused, root.held);
  streams.set(id, s);
}

export function proxy_on_vm_start(id: u32, size: u32): u32 {
  return 1;
}

export function proxy_validate_configuration(id: u32, size: u32): u32 {
  return 1;
}

export function proxy_on_configure(id: u32, size: u32): u32 {
  const root = roots.get(id);
  if (root === null) return 0;
  const ok = root.onConfigure(size);
  collect();
  return ok ? 1 : 0;
}

export function proxy_on_tick(id: u32): void {
  const root = roots.get(id);
  if (root !== null) root.onTick();
  collect();
}

export function proxy_on_http_call_response(id: u32, token: u32, nheaders: u32, bodySize: u32, ntrailers: u32): void {
  const root = roots.get(id);
  if (root !== null) root.onHttpCallResponse(token, nheaders, bodySize);
}

export function proxy_on_queue_ready(id: u32, token: u32): void {
  const root = roots.get(id);
  // What a report allocates waits for the next tick's collection, as with proxy_on_http_call_response.
  if (root !== null) root.onQueueReady(token);
}

// Hooks the filter has no use for are not exported: a host skips a missing
// one (cpp-host and ours return Continue), so a response's trailers and
// every stream's log callback never enter the module (proxy_on_response_trailers,
// _log, _foreign_function, _request_metadata and
// _response_metadata). proxy_on_response_body is exported for the first
// token (HttpContext.onResponseBody); each later chunk costs one call that
// returns at once.

export function proxy_on_request_headers(id: u32, n: u32, endOfStream: u32): u32 {
  const s = streams.get(id);
  return s !== null ? <u32>s.onRequestHeaders(endOfStream != 0) : <u32>FilterHeaders.Continue;
}
export function proxy_on_request_body(id: u32, size: u32, endOfStream: u32): u32 {
  const s = streams.get(id);
  return s !== null ? <u32>s.onRequestBody(size, endOfStream != 0) : <u32>FilterData.Continue;
}
export function proxy_on_request_trailers(id: u32, n: u32): u32 {
  const s = streams.get(id);
  return s !== null ? <u32>s.onRequestTrailers() : <u32>FilterHeaders.Continue;
}
export function proxy_on_response_headers(id: u32, n: u32, endOfStream: u32): u32 {
  const s = streams.get(id);
  return s !== null ? <u32>s.onResponseHeaders(endOfStream != 0) : <u32>FilterHeaders.Continue;
}
export function proxy_on_response_body(id: u32, size: u32, endOfStream: u32): u32 {
  const s = streams.get(id);
  return s !== null ? <u32>s.onResponseBody(size, endOfStream != 0) : <u32>FilterData.Continue;
}

export function proxy_on_done(id: u32): u32 {
  // Streams have nothing to do here (onDelete ends them); the stream lookup is the cached one.
  if (streams.get(id) !== null) return 1;
  const root = roots.get(id);
  if (root !== null) root.onDone();
  return 1;
}

export function proxy_on_delete(id: u32): void {
  const s = streams.get(id);
  if (s !== null) {
    streams.delete(id);
    s.onDelete();
    if (pool.length < POOL_MAX) pool.push(s);
    if (++streamsSinceCollect >= COLLECT_EVERY_STREAMS) collect();
    return;
  }
  roots.delete(id);
  collect();
}

// The last statement of the start code (an entry file's statements run after its imports').
endStartCode();
