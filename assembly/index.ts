// prefix-router: the module's entry. Exports the proxy-wasm 0.2.x ABI and
// dispatches each call to the root context or the stream it names. An id the
// module does not know is ignored, never a trap.
import { FilterData, FilterHeaders, hostAlloc } from "./abi/host";
import { RouterRoot } from "./rootContext";
import { RouterStream } from "./httpContext";

export { abortHandler } from "./abi/host";

const roots = new Map<u32, RouterRoot>();
const streams = new Map<u32, RouterStream>();
/** Finished streams, reused so the request path allocates no context objects. */
const pool: Array<RouterStream> = [];
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

/**
 * The stream the last hook named: a stream's hooks mostly come one after
 * another, so most calls skip the map's two lookups (has, then get).
 */
let lastId: u32 = 0;
let lastStream: RouterStream | null = null;

function streamOf(id: u32): RouterStream | null {
  const last = lastStream;
  if (last !== null && lastId == id) return last;
  if (!streams.has(id)) return null;
  const s = streams.get(id);
  lastId = id;
  lastStream = s;
  return s;
}

/** The root context streams were last created under (one per plugin; a VM usually has one). */
let lastRootId: u32 = 0;
let lastRoot: RouterRoot | null = null;

function rootOf(id: u32): RouterRoot | null {
  const last = lastRoot;
  if (last !== null && lastRootId == id) return last;
  if (!roots.has(id)) return null;
  const r = roots.get(id);
  lastRootId = id;
  lastRoot = r;
  return r;
}

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
    if (!roots.has(id)) roots.set(id, new RouterRoot(id));
    return;
  }
  const root = rootOf(parent);
  if (root === null) return;
  const s = pool.length > 0 ? pool.pop() : new RouterStream();
  s.reset(id, root);
  streams.set(id, s);
  lastId = id;
  lastStream = s;
}

export function proxy_on_vm_start(id: u32, size: u32): u32 {
  return 1;
}

export function proxy_validate_configuration(id: u32, size: u32): u32 {
  return 1;
}

export function proxy_on_configure(id: u32, size: u32): u32 {
  if (!roots.has(id)) return 0;
  const ok = roots.get(id).onConfigure(size);
  collect();
  return ok ? 1 : 0;
}

export function proxy_on_tick(id: u32): void {
  if (roots.has(id)) roots.get(id).onTick();
  collect();
}

export function proxy_on_http_call_response(id: u32, token: u32, nheaders: u32, bodySize: u32, ntrailers: u32): void {
  if (roots.has(id)) roots.get(id).onHttpCallResponse(token, nheaders, bodySize);
}

export function proxy_on_queue_ready(id: u32, token: u32): void {}
export function proxy_on_foreign_function(id: u32, fn: u32, size: u32): void {}

export function proxy_on_request_headers(id: u32, n: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? <u32>s.onRequestHeaders(endOfStream != 0) : <u32>FilterHeaders.Continue;
}
export function proxy_on_request_body(id: u32, size: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? <u32>s.onRequestBody(size, endOfStream != 0) : <u32>FilterData.Continue;
}
export function proxy_on_request_trailers(id: u32, n: u32): u32 {
  const s = streamOf(id);
  return s !== null ? <u32>s.onRequestTrailers() : <u32>FilterHeaders.Continue;
}
export function proxy_on_request_metadata(id: u32, n: u32): u32 {
  return 0;
}
export function proxy_on_response_headers(id: u32, n: u32, endOfStream: u32): u32 {
  const s = streamOf(id);
  return s !== null ? <u32>s.onResponseHeaders() : <u32>FilterHeaders.Continue;
}
export function proxy_on_response_body(id: u32, size: u32, endOfStream: u32): u32 {
  return <u32>FilterData.Continue;
}
export function proxy_on_response_trailers(id: u32, n: u32): u32 {
  return <u32>FilterHeaders.Continue;
}
export function proxy_on_response_metadata(id: u32, n: u32): u32 {
  return 0;
}

export function proxy_on_done(id: u32): u32 {
  if (roots.has(id)) roots.get(id).onDone();
  return 1;
}

export function proxy_on_log(id: u32): void {}

export function proxy_on_delete(id: u32): void {
  const s = streamOf(id);
  if (s !== null) {
    streams.delete(id);
    lastStream = null;
    s.onDelete();
    if (pool.length < POOL_MAX) pool.push(s);
    if (++streamsSinceCollect >= COLLECT_EVERY_STREAMS) collect();
    return;
  }
  roots.delete(id);
  if (lastRootId == id) lastRoot = null;
  collect();
}
