// One HTTP stream's context. Thin: it decides when the body is needed, hands
// it to the router its root context gave it, and writes the decision into the
// request headers.
import {
  BufferType, FilterData, FilterHeaders, HeaderMap, HostBytes, WasmResult, addHeader, addHeaderRaw, continueRequest, getBuffer,
  getBufferSize, getHeaderPairs, nowNs, removeHeader, replaceHeader, sendLocalResponse,
} from "./abi/hostCalls";
import { ADMISSION_REFUSED_BODY, ADMISSION_REFUSED_DETAILS, NO_REPLICA_BODY, NO_REPLICA_DETAILS } from "./errors";
import { HeldStreams } from "./admission/heldStreams";
import { PausedStreams } from "./pausedStreams";
import { bytesEqual } from "./request/jsonScanner";
import { RequestTraits, bytesEqualIgnoreCase, offerHeader } from "./request/requestTraits";
import { SUBSET_HEADER } from "./request/endpointSubset";
import { Router, Routing } from "./router";
import { Decision } from "./scheduling/decision";
import { CharCode } from "./charCode";

const DESTINATION = String.UTF8.encode("x-gateway-destination-endpoint");
/** The runner-up, for a gateway that retries a failed connection elsewhere (ORIGINAL_DST only dials the first). */
const FALLBACK = String.UTF8.encode("x-prefix-router-fallback-endpoint");
const SUBSET = String.UTF8.encode(SUBSET_HEADER);
const DEBUG_ENDPOINT = String.UTF8.encode("x-prefix-router-endpoint");
const DEBUG_PREFIX = String.UTF8.encode("x-prefix-router-prefix");
/** A sampled request's decision record, compact (decisionRecord.ts). */
const DEBUG_DECISION = String.UTF8.encode("x-prefix-router-decision");

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
  /** Buffered body size at which onRequestBody next tries to route before the body ends. */
  private routeAtBytes: u32 = 0;
  /** Tick count when the headers were paused for the body (see PausedStreams). */
  pausedAtTick: u32 = 0;
  /** Neighbours in the root's list of paused streams. */
  pausedPrev: HttpContext | null = null;
  pausedNext: HttpContext | null = null;
  /** True until the first body callback after pausing the headers. */
  awaitingBody: bool = false;
  private held: HeldStreams<HttpContext> | null = null;
  /** Held by admission while every replica is saturated (see HeldStreams). */
  private holding: bool = false;
  /** A held request being routed again from a tick: still saturated leaves it held. */
  private resuming: bool = false;
  /** The whole request body has arrived. */
  private bodyEnded: bool = false;
  /**
   * The response headers came with a body to follow: the request counts as
   * queued until its first body bytes. vLLM and SGLang send a streamed
   * response's headers as soon as they accept the request, before its
   * prefill; the first token comes with the first body bytes.
   */
  private awaitingFirstBytes: bool = false;
  heldPriority: i32 = 0;
  heldUntilNs: u64 = 0;
  heldPrev: HttpContext | null = null;
  heldNext: HttpContext | null = null;

  reset(id: u32, router: Router | null, paused: PausedStreams<HttpContext>, held: HeldStreams<HttpContext>): void {
    this.id = id;
    this.router = router;
    this.paused = paused;
    this.held = held;
    this.decision.reset();
    this.buffering = false;
    this.awaitingBody = false;
    this.holding = false;
    this.resuming = false;
    this.bodyEnded = false;
    this.awaitingFirstBytes = false;
  }

  onRequestHeaders(endOfStream: bool): FilterHeaders {
    const h = head;
    scanRequestHead(h);
    // A client never chooses the upstream: drop whatever it sent, in any case and count.
    if (h.destination || !h.scanned) removeHeader(HeaderMap.RequestHeaders, DESTINATION);
    if (h.fallback || !h.scanned) removeHeader(HeaderMap.RequestHeaders, FALLBACK);
    if (headTraits.subset.given) removeHeader(HeaderMap.RequestHeaders, SUBSET);
    const router = this.router;
    if (router === null) return FilterHeaders.Continue;
    const traits = this.decision.traits;
    traits.copyFrom(headTraits);
    traits.inference = h.post && h.inferencePath;
    const paused = this.paused!;
    if (!endOfStream && !paused.bodyUnavailable && h.post && h.inferencePath) {
      // Whatever its length: the body is held only until its prompt is read (onRequestBody).
      this.buffering = true;
      this.awaitingBody = true;
      this.routeAtBytes = router.promptBytes;
      paused.pause(this);
      return FilterHeaders.StopIteration;
    }
    return this.route(router, 0, 0) ? FilterHeaders.Continue : FilterHeaders.StopIteration;
  }

  onRequestBody(size: u32, endOfStream: bool): FilterData {
    if (this.awaitingBody) {
      this.awaitingBody = false;
      this.paused!.bodyArrived(this);
    }
    if (endOfStream) this.bodyEnded = true;
    // A held request keeps its body until a tick lets it go.
    if (this.holding) return FilterData.StopIterationAndBuffer;
    if (!this.buffering) return FilterData.Continue;
    const router = this.router;
    if (router === null) return FilterData.Continue;
    // More to come: route as soon as what has come holds all of the prompt
    // the filter hashes, or at half of maxBodyBytes whatever it holds, and let
    // the rest stream through. A body is never held until the proxy's buffer
    // limit refuses it (413), and one larger than any buffer still goes on.
    if (!endOfStream && size < this.routeAtBytes) return FilterData.StopIterationAndBuffer;
    const half = router.cfg.maxBodyBytes >> 1;
    const r = this.routeOnBody(router, size, endOfStream, size >= half);
    if (r == Routing.Waiting) {
      // Try again once the body has doubled: reading it costs O(size) overall.
      const next = <u64>size << 1;
      this.routeAtBytes = next < <u64>half ? <u32>next : half;
      return FilterData.StopIterationAndBuffer;
    }
    this.buffering = false;
    if (this.holding) return FilterData.StopIterationAndBuffer;
    return r == Routing.Routed ? FilterData.Continue : FilterData.StopIterationNoBuffer;
  }

  onRequestTrailers(): FilterHeaders {
    removeHeader(HeaderMap.RequestTrailers, DESTINATION);
    removeHeader(HeaderMap.RequestTrailers, FALLBACK);
    this.bodyEnded = true;
    if (this.holding) return FilterHeaders.StopIteration;
    if (!this.buffering) return FilterHeaders.Continue;
    // The body ended with trailers rather than an end-of-stream data frame.
    this.buffering = false;
    const router = this.router;
    if (router === null) return FilterHeaders.Continue;
    const size = getBufferSize(BufferType.RequestBody);
    if (size <= 0) return this.route(router, 0, 0) ? FilterHeaders.Continue : FilterHeaders.StopIteration;
    const r = this.routeOnBody(router, size > <i64>U32.MAX_VALUE ? U32.MAX_VALUE : <u32>size, true, true);
    return r == Routing.Routed ? FilterHeaders.Continue : FilterHeaders.StopIteration;
  }

  onResponseHeaders(endOfStream: bool): FilterHeaders {
    const router = this.router;
    if (router === null) return FilterHeaders.Continue;
    const d = this.decision;
    if (endOfStream) router.responseStarted(d, nowNs());
    else this.awaitingFirstBytes = true;
    if (router.cfg.debugHeaders && d.replica >= 0) {
      addHeader(HeaderMap.ResponseHeaders, DEBUG_ENDPOINT, d.addressBytes);
      const len = formatRatio(d.matched, d.total);
      addHeaderRaw(HeaderMap.ResponseHeaders, DEBUG_PREFIX, RATIO, len);
      const record = d.record;
      if (record !== null) addHeader(HeaderMap.ResponseHeaders, DEBUG_DECISION, record);
    }
    return FilterHeaders.Continue;
  }

  /** A chunk of the response body: the first (or the end) means the prompt is prefilled. Every later chunk returns at once. */
  onResponseBody(size: u32, endOfStream: bool): FilterData {
    if (this.awaitingFirstBytes && (size > 0 || endOfStream)) {
      this.awaitingFirstBytes = false;
      const router = this.router;
      if (router !== null) router.responseStarted(this.decision, nowNs());
    }
    return FilterData.Continue;
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

  /**
   * Called from a tick (effective context set to this stream) while held:
   * routes the request again, on its body if one is buffered. False when
   * every replica is still saturated (it stays held); true when it left
   * (routed and let go, or answered 503).
   */
  resumeHeld(): bool {
    const router = this.router;
    if (router === null) return true;
    this.resuming = true;
    this.decision.saturated = false;
    const size = getBufferSize(BufferType.RequestBody);
    let routed: bool;
    if (size > 0) {
      routed = this.routeOnBody(router, size > <i64>U32.MAX_VALUE ? U32.MAX_VALUE : <u32>size, this.bodyEnded, true) == Routing.Routed;
    } else routed = this.route(router, 0, 0);
    this.resuming = false;
    if (!routed && this.decision.saturated) return false;
    this.holding = false;
    if (routed) continueRequest();
    return true;
  }

  /** Called from a tick (effective context set to this stream): its wait is over, or a request of higher priority took its place. */
  refuseHeld(): void {
    this.holding = false;
    const router = this.router;
    if (router !== null) this.refuse(router);
  }

  private refuse(router: Router): void {
    sendLocalResponse(429, ADMISSION_REFUSED_DETAILS, ADMISSION_REFUSED_BODY, "application/json", <i32>router.cfg.admission.retryAfterS);
  }

  /** The stream is over, however it ended. */
  onDelete(): void {
    if (this.awaitingBody) {
      this.awaitingBody = false;
      this.paused!.forget(this);
    }
    if (this.holding) {
      this.holding = false;
      this.held!.forget(this);
    }
    const router = this.router;
    if (router !== null) router.finish(this.decision);
    this.router = null;
    this.paused = null;
    this.held = null;
  }

  /**
   * Routes on the buffered body, `size` bytes so far (at most maxBodyBytes
   * of it read). `ended`: no more is coming. Unless `now` (or the body
   * ended), waits while what has come does not hold all of the hashed prompt.
   */
  private routeOnBody(router: Router, size: u32, ended: bool, now: bool): Routing {
    const max = router.cfg.maxBodyBytes;
    const whole = ended && size <= max;
    if (getBuffer(BufferType.RequestBody, 0, whole ? size : max, bytes) != WasmResult.Ok) {
      bytes.free();
      return this.route(router, 0, 0) ? Routing.Routed : Routing.NoReplica;
    }
    let r: Routing;
    if (whole) r = router.route(bytes.ptr, bytes.len, nowNs(), this.decision) ? Routing.Routed : Routing.NoReplica;
    else r = router.routeEarly(bytes.ptr, bytes.len, ended || now, nowNs(), this.decision);
    bytes.free();
    if (r != Routing.Waiting) this.apply(router, r == Routing.Routed);
    return r;
  }

  private route(router: Router, body: usize, len: usize): bool {
    return this.apply(router, router.route(body, len, nowNs(), this.decision));
  }

  /**
   * Writes the decision into the request headers; when every replica is
   * saturated, holds the request or refuses it (429); answers 503 when no
   * replica could take it.
   */
  private apply(router: Router, routed: bool): bool {
    if (routed) {
      replaceHeader(HeaderMap.RequestHeaders, DESTINATION, this.decision.addressBytes);
      const fallback = this.decision.fallbackBytes;
      if (fallback !== null && router.cfg.fallbackHeader) replaceHeader(HeaderMap.RequestHeaders, FALLBACK, fallback);
      return true;
    }
    if (this.decision.saturated) {
      if (this.resuming) return false;
      const a = router.cfg.admission;
      const p = this.decision.traits.priority;
      const now = nowNs();
      if (this.held!.hold(this, p, now + a.waitNs(p), a, now)) this.holding = true;
      else this.refuse(router);
      return false;
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
  /** The client sent x-gateway-destination-endpoint / the fallback header (any case). */
  destination: bool = false;
  fallback: bool = false;
}

const head = new RequestHead();
/** The traits the headers carry (session, priority), copied into the stream's decision. */
const headTraits = new RequestTraits();

/**
 * Reads the request header map once (proxy_get_header_map_pairs) instead of
 * a call per header: method, path, and whether the headers only this
 * filter may set are there, so the common request needs no remove calls.
 * Every size in the serialized map is checked against its length.
 */
function scanRequestHead(h: RequestHead): void {
  h.scanned = false;
  h.post = false;
  h.inferencePath = false;
  h.destination = false;
  h.fallback = false;
  headTraits.reset();
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
  let seenMethod = false, seenPath = false;
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
    } else if (bytesEqualIgnoreCase(k, <isize>kl, "x-gateway-destination-endpoint")) h.destination = true;
    else if (bytesEqualIgnoreCase(k, <isize>kl, "x-prefix-router-fallback-endpoint")) h.fallback = true;
    else offerHeader(headTraits, k, <isize>kl, v, <isize>vl);
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
