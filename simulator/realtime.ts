// Drives a ReplicaEngine in (scaled) wall-clock time: one timer for the engine's next event,
// events dispatched to per-request listeners. Virtual ms = real ms since start x timeScale.

import { performance } from 'node:perf_hooks';
import type { EngineEvent, EngineRequest, ReplicaEngine } from './engine.js';

export type EventListener = (event: EngineEvent) => void;

export class RealtimeDriver {
  private readonly t0 = performance.now();
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private readonly listeners = new Map<number, EventListener>();
  private closed = false;

  constructor(readonly engine: ReplicaEngine, readonly timeScale: number) {
    if (!(timeScale > 0)) throw new RangeError(`timeScale must be > 0, got ${timeScale}`);
  }

  /** Virtual now, never behind the engine's own clock. */
  now(): number {
    return Math.max(this.engine.nowMs, (performance.now() - this.t0) * this.timeScale);
  }

  /** Submits a request; `listener` gets its events until 'finished'. Throws EngineRequestError. */
  submit(req: EngineRequest, listener: EventListener): number {
    const id = this.engine.submit(req, this.now());
    this.listeners.set(id, listener);
    this.arm(true); // events reach listeners from a timer, never inside submit()
    return id;
  }

  abort(id: number): void {
    if (!this.listeners.delete(id)) return;
    this.engine.abort(id, this.now());
    this.arm(true);
  }

  /** Brings the engine up to now and snapshots it. */
  snapshot() {
    this.pump();
    return this.engine.metricsSnapshot();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.listeners.clear();
  }

  private pump(): void {
    if (this.closed) return;
    const events = this.engine.advance(this.now());
    for (const e of events) {
      const l = this.listeners.get(e.id);
      if (!l) continue;
      if (e.kind === 'finished') this.listeners.delete(e.id);
      try {
        l(e);
      } catch (err) {
        console.error(`simulator: event listener failed: ${err instanceof Error ? err.stack : String(err)}`);
      }
    }
    this.arm(false);
  }

  private arm(immediately: boolean): void {
    if (this.closed) return;
    const next = immediately ? this.engine.nowMs : this.engine.nextEventTime();
    if (this.timer && next >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = next;
    if (next === Infinity) return;
    const delayMs = Math.max(0, (next - this.now()) / this.timeScale);
    this.timer = setTimeout(() => { this.timer = null; this.timerAt = Infinity; this.pump(); }, delayMs);
  }
}
