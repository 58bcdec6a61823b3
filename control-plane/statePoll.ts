// One long poll of the state, whatever carries it: the HTTP route
// (routes/state.ts), or a simulation's in-process cluster (bench:routing).
// A fleet report is taken in first; the answer then carries that gateway's
// own sections (fleetExchange.ts), else the state without sections.
import type { FleetExchange } from './fleetExchange.js';
import type { PollReport } from './fleetWire.js';
import type { StateStore } from './stateStore.js';

export type PollAnswer = { status: 200; version: bigint; body: Uint8Array } | { status: 304; version: bigint };

/**
 * Answers `answer` once: 200 with the state as soon as its version differs
 * from `after` (or at once, when the reporting gateway has placements to
 * catch up on), 304 after `waitMs` without a change. Returns a cancel
 * function (the poller went away).
 */
export function pollState(store: StateStore, fleet: FleetExchange, after: bigint, waitMs: number, report: PollReport | null, answer: (a: PollAnswer) => void): () => void {
  const behind = report !== null && fleet.ingest(report);
  const done = (changed: boolean) => {
    if (!changed) return answer({ status: 304, version: store.version });
    const body = report ? store.payloadFor(fleet.sectionsFor(store.state, report)) : store.bytes;
    answer({ status: 200, version: store.version, body });
  };
  if (behind) {
    done(true);
    return () => {};
  }
  return store.waitForChange(after, waitMs, done);
}
