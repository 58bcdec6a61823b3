// Requests held while every replica is saturated, highest priority first and
// oldest first within a priority; bounded in count and in wait. A tick lets
// go of as many as the replicas have room for (Saturation.room), then refuses
// those whose wait is over (429). When the list is full, a newcomer of higher
// priority takes the place of the newest of the lowest priority, which is
// refused: low priority is shed first.
//
// Linked through the streams themselves, like PausedStreams: holding and
// letting go allocate nothing. Generic over the stream class so that the
// stream's module does not import the root context's.
import { setEffectiveContext } from "../abi/hostCalls";
import { AdmissionConfig } from "./admissionConfig";
import { Counter, RouterMetrics } from "../metrics";

/**
 * T has `id: u32`, `heldPriority: i32`, `heldUntilNs: u64`,
 * `heldPrev`/`heldNext: T | null`, `resumeHeld(): bool` (routes it now;
 * false when every replica is still saturated, and it stays held) and
 * `refuseHeld(): void` (answers 429), each called with the effective context
 * set to the stream.
 */
@final
export class HeldStreams<T> {
  private head: T | null = null;
  private tail: T | null = null;
  count: i32 = 0;
  private readonly metrics: RouterMetrics;

  constructor(metrics: RouterMetrics) {
    this.metrics = metrics;
  }

  /**
   * Holds `s` (the stream whose callback this is) with `priority` until
   * `untilNs`. False: it cannot be held (no wait for its priority, or the
   * list is full of requests of at least its priority); the caller refuses it.
   */
  hold(s: T, priority: i32, untilNs: u64, cfg: AdmissionConfig, nowNs: u64): bool {
    if (untilNs <= nowNs || cfg.maxHeld <= 0) return this.refuse();
    if (this.count >= cfg.maxHeld) {
      // maxHeld > 0 streams are held: the tail is one.
      const last = changetype<T>(this.tail);
      if (last.heldPriority >= priority) return this.refuse();
      this.remove(last);
      setEffectiveContext(last.id);
      last.refuseHeld();
      this.metrics.add(Counter.AdmissionRefused, 1);
      setEffectiveContext(s.id);
    }
    s.heldPriority = priority;
    s.heldUntilNs = untilNs;
    // After the last of at least its priority: FIFO within a priority.
    let after = this.tail;
    while (after !== null && after.heldPriority < priority) after = after.heldPrev;
    const next = after === null ? this.head : after.heldNext;
    s.heldPrev = after;
    s.heldNext = next;
    if (after !== null) after.heldNext = s;
    else this.head = s;
    if (next !== null) next.heldPrev = s;
    else this.tail = s;
    this.count++;
    this.metrics.add(Counter.AdmissionHeld, 1);
    return true;
  }

  private refuse(): bool {
    this.metrics.add(Counter.AdmissionRefused, 1);
    return false;
  }

  /** The stream ended while held (client gone). */
  forget(s: T): void {
    this.remove(s);
  }

  private remove(s: T): void {
    const prev = s.heldPrev;
    const next = s.heldNext;
    if (prev === null && next === null && this.head !== s) return; // not held
    if (prev !== null) prev.heldNext = next;
    else this.head = next;
    if (next !== null) next.heldPrev = prev;
    else this.tail = prev;
    s.heldPrev = null;
    s.heldNext = null;
    this.count--;
  }

  /**
   * A tick of root context `rootId`: lets go of up to `room` requests, best
   * first, while they find a replica with room; then refuses those whose
   * wait is over.
   */
  tick(rootId: u32, nowNs: u64, room: f64): void {
    if (this.head === null) return;
    let budget = room;
    let s = this.head;
    while (s !== null && budget >= 1) {
      setEffectiveContext(s.id);
      if (!s.resumeHeld()) break;
      this.remove(s);
      this.metrics.add(Counter.AdmissionReleased, 1);
      budget -= 1;
      s = this.head;
    }
    s = this.head;
    while (s !== null) {
      const next = s.heldNext;
      if (s.heldUntilNs <= nowNs) {
        this.remove(s);
        setEffectiveContext(s.id);
        s.refuseHeld();
        this.metrics.add(Counter.AdmissionRefused, 1);
      }
      s = next;
    }
    setEffectiveContext(rootId);
  }
}
