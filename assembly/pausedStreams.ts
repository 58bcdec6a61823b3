// Streams whose request headers are paused until their body arrives, oldest
// first, and what their waits say about the host: a host that never delivers
// the body after paused headers (Envoy before 1.35, or without
// allow_on_headers_stop_iteration) would hang such requests, so a stream
// waiting too long is routed on load alone and let go, and after a few such
// stalls with no body ever delivered, streams stop pausing at all.
//
// Linked through the streams themselves, so pausing and resuming, twice per
// request, hash nothing and allocate nothing. Generic over the stream class so
// that the stream's module does not import the root context's.
import { LogLevel, log, setEffectiveContext } from "./abi/hostCalls";
import { BODY_NOT_DELIVERED } from "./errors";

/**
 * A stream whose body has not started arriving this many ticks after its
 * headers were paused is routed on load alone and let go.
 */
const STALL_TICKS: u32 = 2;
/** After this many stalls and no body ever delivered, stop pausing for bodies at all. */
const STALLS_BEFORE_HEADERS_ONLY: u32 = 3;

/**
 * T has `id: u32`, `pausedAtTick: u32`, `pausedPrev`/`pausedNext: T | null`
 * and `releaseStalled(): void`, called with the effective context set to it.
 */
@final
export class PausedStreams<T> {
  private head: T | null = null;
  private tail: T | null = null;
  /** Ticks seen, the clock of stall detection. */
  private ticks: u32 = 0;
  private bodyDelivered: bool = false;
  private stalls: u32 = 0;
  /** The host does not deliver bodies after paused headers: route every request on its headers. */
  bodyUnavailable: bool = false;

  pause(s: T): void {
    s.pausedAtTick = this.ticks;
    s.pausedNext = null;
    s.pausedPrev = this.tail;
    const tail = this.tail;
    if (tail !== null) tail.pausedNext = s;
    else this.head = s;
    this.tail = s;
  }

  bodyArrived(s: T): void {
    this.unpause(s);
    this.bodyDelivered = true;
  }

  /** The stream ended before its body came (client gone): no verdict on body delivery. */
  forget(s: T): void {
    this.unpause(s);
  }

  private unpause(s: T): void {
    const prev = s.pausedPrev;
    const next = s.pausedNext;
    if (prev !== null) prev.pausedNext = next;
    else if (this.head === s) this.head = next;
    if (next !== null) next.pausedPrev = prev;
    else if (this.tail === s) this.tail = prev;
    s.pausedPrev = null;
    s.pausedNext = null;
  }

  /** A tick of root context `rootId`: lets go of requests the host never gave a body to. */
  tick(rootId: u32): void {
    this.ticks++;
    // Paused in tick order: the stalled ones are at the front.
    const stallsBefore = this.stalls;
    let s = this.head;
    while (s !== null && this.ticks - s.pausedAtTick >= STALL_TICKS) {
      this.unpause(s);
      this.stalls++;
      setEffectiveContext(s.id);
      s.releaseStalled();
      s = this.head;
    }
    if (this.stalls == stallsBefore) return;
    setEffectiveContext(rootId);
    if (!this.bodyDelivered && !this.bodyUnavailable && this.stalls >= STALLS_BEFORE_HEADERS_ONLY) {
      this.bodyUnavailable = true;
      log(LogLevel.Warn, BODY_NOT_DELIVERED);
    }
  }
}
