// One HTTP stream's context. Thin: it decides when the body is needed, hands
// it to the router its root context gave it, and writes the decision into the
// request headers.
import {
  BufferType, FilterData, FilterHeaders, HeaderMap, HostBytes, WasmResult, addHeader, addHeaderRaw, continueRequest, getBuffer,
  getBufferSize, getHeaderPairs, nowNs, removeHeader, replaceHeader, sendLocalResponse,
} from "./abi/hostCalls";
import { NO_REPLICA_BODY, NO_REPLICA_DETAILS } from "./errors";
import { PausedStreams } from "./pausedStreams";
import { bytesEqual } from "./request/jsonScanner";
import { Decision, Router } from "./router";
import { CharCode } from "./charCode";

const DESTINATION = String.UTF8.encode("x-gateway-destination-endpoint");
/** The runner-up, for a gateway that retries a failed connection elsewhere (ORIGINAL_DST only dials the first). */
const FALLBACK = String.UTF8.encode("x-prefix-router-fallback-endpoint");
const DEBUG_ENDPOINT = String.UTF8.encode("x-prefix-router-endpoint");
const DEBUG_PREFIX = String.UTF8.encode("x-prefix-router-prefix");

const bytes = new HostBytes();
/** "matched/total" is written here: no allocation per response. */
const RATIO: usize = memory.data(24);

@final
export class HttpContext {
  id: u32 = 0;
  /** The root context's router; null while the root has no configuration. */
  private router: Router | null = null;
  private paused: PausedStreams<HttpContext> | null = null;
  readonly decision: Decision = new Decision();
  private buffering: bool = false;
  /** Tick count when the headers were paused for the body (see PausedStreams). */
  pausedAtTick: u32 = 0;
  /** Neighbours in the root's list of paused streams. */
  pausedPrev: HttpContext | null = null;
  pausedNext: HttpContext | null = null;
  /** True until the first body callback after pausing the headers. */
  awaitingBody: bool = false;

  reset(id: u32, router: Router | null, paused: PausedStreams<HttpContext>): void {
    this.id = id;
    this.router = router;
    this.paused = paused;
    this.decision.reset();
    this.buffering = false;
    this.awaitingBody = false;
  }

  onRequestHeaders(endOfStream: bool): FilterHeaders {
    const h = head;
    scanRequestHead(h);
    // A client never chooses the upstream: drop whatever it sent, in any case and count.
    if (h.destination || !h.scanned) removeHeader(HeaderMap.RequestHeaders, DESTINATION);
    if (h.fallback || !h.scanned) removeHeader(HeaderMap.RequestHeaders, FALLBACK);
    const router = this.router;
    if (router === null) return FilterHeaders.Continue;
    const paused = this.paused!;
    if (!endOfStream && !paused.bodyUnavailable && h.post && h.inferencePath) {
      const declared = h.contentLength;
      if (declared < 0 || declared <= <i64>router.cfg.maxBodyBytes) {
        this.buffering = true;
        this.awaitingBody = true;
        paused.pause(this);
        return FilterHeaders.StopIteration;
      }
    }
    return this.route(router, 0, 0) ? FilterHeaders.Continue : FilterHeaders.StopIteration;
  }

  onRequestBody(size: u32, endOfStream: bool): FilterData {
    if (this.awaitingBody) {
      this.awaitingBody = false;
      this.paused!.bodyArrived(this);
    }
    if (!this.buffering) return FilterData.Continue;
    const router = this.router;
    if (router === null) return FilterData.Continue;
    if (size > router.cfg.maxBodyBytes) {
      // Too large to buffer: route on load alone and let the body stream.
      this.buffering = false;
      return this.route(router, 0, 0) ? FilterData.Continue : FilterData.StopIterationNoBuffer;
    }
    if (!endOfStream) return FilterData.StopIterationAndBuffer;
    this.buffering = false;
    return this.routeOnBody(router, size) ? FilterData.Continue : FilterData.StopIterationNoBuffer;
  }

  onRequestTrailers(): FilterHeaders {
    removeHeader(HeaderMap.RequestTrailers, DESTINATION);
    removeHeader(HeaderMap.RequestTrailers, FALLBACK);
    if (!this.buffering) return FilterHeaders.Continue;
    // The body ended with trailers rather than an end-of-stream data frame.
    this.buffering = false;
    const router = this.router;
    if (router === null) return FilterHeaders.Continue;
    const size = getBufferSize(BufferType.RequestBody);
    if (size <= 0 || size > <i64>router.cfg.maxBodyBytes) return this.route(router, 0, 0) ? FilterHeaders.Continue : FilterHeaders.StopIteration;
    return this.routeOnBody(router, <u32>size) ? FilterHeaders.Continue : FilterHeaders.StopIteration;
  }

  onResponseHeaders(): FilterHeaders {
    const router = this.router;
    const d = this.decision;
    if (router !== null && router.cfg.debugHeaders && d.replica >= 0) {
      addHeader(HeaderMap.ResponseHeaders, DEBUG_ENDPOINT, d.addressBytes);
      const len = formatRatio(d.matched, d.total);
      addHeaderRaw(HeaderMap.ResponseHeaders, DEBUG_PREFIX, RATIO, len);
    }
    return FilterHeaders.Continue;
  }

  /**
   * Called from a tick (effective context set to this stream) when the host
   * never delivered the body after the headers were paused: route on load
   * alone and let the request go.
   */
  releaseStalled(): void {
    this.awaitingBody = false;
    this.buffering = false;
    const router = this.router;
    if (router === null) return;
    if (this.route(router, 0, 0)) continueRequest();
  }

  /** The stream is over, however it ended. */
  onDelete(): void {
    if (this.awaitingBody) {
      this.awaitingBody = false;
      this.paused!.forget(this);
    }
    const router = this.router;
    if (router !== null) router.finish(this.decision);
    this.router = null;
    this.paused = null;
  }

  private routeOnBody(router: Router, size: u32): bool {
    if (getBuffer(BufferType.RequestBody, 0, size, bytes) != WasmResult.Ok) {
      bytes.free();
      return this.route(router, 0, 0);
    }
    const ok = this.route(router, bytes.ptr, bytes.len);
    bytes.free();
    return ok;
  }

  private route(router: Router, body: usize, len: usize): bool {
    if (router.route(body, len, nowNs(), this.decision)) {
      replaceHeader(HeaderMap.RequestHeaders, DESTINATION, this.decision.addressBytes);
      const fallback = this.decision.fallbackBytes;
      if (fallback !== null && router.cfg.fallbackHeader) replaceHeader(HeaderMap.RequestHeaders, FALLBACK, fallback);
      return true;
    }
    sendLocalResponse(503, NO_REPLICA_DETAILS, NO_REPLICA_BODY, "application/json");
    return false;
  }
}

/** What the request headers say, from one read of the whole map. */
@unmanaged
@final
class RequestHead {
  /** The map was read and parsed; when false nothing below is known. */
  scanned: bool = false;
  post: bool = false;
  /** :path is /v1/completions or /v1/chat/completions (query string ignored). */
  inferencePath: bool = false;
  /** The declared body length, or -1 when absent or unreadable. */
  contentLength: i64 = -1;
  /** The client sent x-gateway-destination-endpoint / the fallback header (any case). */
  destination: bool = false;
  fallback: bool = false;
}

const head = new RequestHead();

/**
 * Reads the request header map once (proxy_get_header_map_pairs) instead of
 * a call per header: method, path, length, and whether the headers only this
 * filter may set are there, so the common request needs no remove calls.
 * Every size in the serialized map is checked against its length.
 */
function scanRequestHead(h: RequestHead): void {
  h.scanned = false;
  h.post = false;
  h.inferencePath = false;
  h.contentLength = -1;
  h.destination = false;
  h.fallback = false;
  if (getHeaderPairs(HeaderMap.RequestHeaders, bytes) != WasmResult.Ok) {
    bytes.free();
    return;
  }
  const base = bytes.ptr;
  const end = <u64>base + <u64>bytes.len;
  if (bytes.len == 0) {
    h.scanned = true; // no headers at all
    return;
  }
  if (bytes.len < 4) {
    bytes.free();
    return;
  }
  const n = <u64>load<u32>(base);
  let data = <u64>base + 4 + n * 8;
  if (data > end) {
    bytes.free();
    return;
  }
  let seenMethod = false, seenPath = false, seenLength = false;
  for (let i: u64 = 0; i < n; i++) {
    const kl = <u64>load<u32>(<usize>(<u64>base + 4 + i * 8));
    const vl = <u64>load<u32>(<usize>(<u64>base + 8 + i * 8));
    if (data + kl + vl + 2 > end) {
      bytes.free();
      return;
    }
    const k = <isize>data;
    const v = <isize>(data + kl + 1);
    data += kl + vl + 2;
    if (!seenMethod && bytesEqual(k, <isize>kl, ":method")) {
      seenMethod = true;
      h.post = bytesEqual(v, <isize>vl, "POST");
    } else if (!seenPath && bytesEqual(k, <isize>kl, ":path")) {
      seenPath = true;
      h.inferencePath = isInferencePath(v, <isize>vl);
    } else if (!seenLength && equalsIgnoreCase(k, <isize>kl, "content-length")) {
      seenLength = true;
      h.contentLength = parseLength(v, <isize>vl);
    } else if (equalsIgnoreCase(k, <isize>kl, "x-gateway-destination-endpoint")) h.destination = true;
    else if (equalsIgnoreCase(k, <isize>kl, "x-prefix-router-fallback-endpoint")) h.fallback = true;
  }
  h.scanned = true;
  bytes.free();
}

function isInferencePath(p: isize, len: isize): bool {
  let n = len;
  for (let i: isize = 0; i < len; i++) {
    if (load<u8>(p + i) == CharCode.QUESTION) { n = i; break; }
  }
  return bytesEqual(p, n, "/v1/completions") || bytesEqual(p, n, "/v1/chat/completions");
}

function parseLength(p: isize, len: isize): i64 {
  if (len <= 0 || len > 18) return -1;
  let v: i64 = 0;
  for (let i: isize = 0; i < len; i++) {
    const c = <i32>load<u8>(p + i);
    if (c < CharCode._0 || c > CharCode._9) return -1;
    v = v * 10 + <i64>(c - CharCode._0);
  }
  return v;
}

/** ASCII case-insensitive comparison with a lower-case ASCII `s`. */
function equalsIgnoreCase(p: isize, len: isize, s: string): bool {
  if (len != <isize>s.length) return false;
  for (let i: isize = 0; i < len; i++) {
    let c = <i32>load<u8>(p + i);
    if (c >= CharCode.A && c <= CharCode.Z) c += CharCode.a - CharCode.A;
    if (c != s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** Writes "a/b" (both >= 0) at RATIO; returns its length. */
function formatRatio(a: i32, b: i32): usize {
  let p = RATIO + writeDigits(RATIO, a);
  store<u8>(p++, CharCode.SLASH);
  p += writeDigits(p, b);
  return p - RATIO;
}

function writeDigits(at: usize, v: i32): usize {
  let n: usize = 1;
  for (let x = v; x >= 10; x /= 10) n++;
  for (let i = n; i > 0; i--) {
    store<u8>(at + i - 1, <u8>(CharCode._0 + v % 10));
    v /= 10;
  }
  return n;
}
