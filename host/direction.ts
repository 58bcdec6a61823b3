// One direction (request or response) of a stream as the filter sees it: its headers and
// trailers, whether they are held or released, and the body held for the filter (Envoy's
// buffered data), growing in place.
import type { HeaderPairs } from './abi.js';

const EMPTY = new Uint8Array(0);

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** First capacity of a held body that takes a second chunk; it then doubles (Envoy's buffer is a slice chain: appends cost O(chunk)). */
const HELD_MIN_CAPACITY = 64 * 1024;

export type DirState = 'idle' | 'stopped-single' | 'stopped-all' | 'flowing';

/** One direction (request or response) of the stream as the filter sees it. */
export class Direction {
  headers: HeaderPairs = [];
  /** Envoy's request_headers_/response_headers_ pointer: set while the filter may read/modify headers. */
  headersAccessible = false;
  trailers: HeaderPairs | null = null;
  trailersAccessible = false;
  trailersHeld = false;
  state: DirState = 'idle';
  headersReleased = false;
  /** Data held for this filter (Envoy's buffered data). */
  held: Uint8Array = EMPTY;
  /** Room `held` grows into when it is a prefix of it (see appendHeld). */
  private heldStore: Uint8Array = EMPTY;
  /** The chunk being offered when the filter is not buffering. */
  current: Uint8Array = EMPTY;
  /** The filter returned StopIterationAndBuffer last time (Envoy's buffering_*_body_). */
  buffering = false;
  endSeen = false;
  /** Body released past the filter, not yet drained by the driver. */
  out: Uint8Array[] = [];
  outBytes = 0;
  constructor(readonly isRequest: boolean) {}

  /**
   * held = held + chunk, in amortised O(chunk): appended in place while `held` is the start of
   * its growable store, else copied into a new store of double size. Views already handed out
   * (emitted data) never share a store with a later `held`: emitting sets `held` to EMPTY first.
   */
  appendHeld(chunk: Uint8Array): void {
    const held = this.held;
    if (chunk.length === 0) return;
    if (held.length === 0) {
      this.held = chunk; // as concat(): the first chunk is kept as it came
      return;
    }
    const need = held.length + chunk.length;
    const store = this.heldStore;
    if (held.buffer === store.buffer && held.byteOffset === store.byteOffset && need <= store.length) {
      store.set(chunk, held.length);
      this.held = store.subarray(0, need);
      return;
    }
    const next = new Uint8Array(Math.max(need, 2 * held.length, HELD_MIN_CAPACITY));
    next.set(held, 0);
    next.set(chunk, held.length);
    this.heldStore = next;
    this.held = next.subarray(0, need);
  }
}
