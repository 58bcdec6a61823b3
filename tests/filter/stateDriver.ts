// Drives the filter's state without a control plane: publishes a state into a
// host's shared data the way the filter's own poller does (plugin/sharedData.ts),
// on a manual clock, so tests decide when metrics change and when ticks fire.
import { ManualClock, type ProxyWasmHost } from '../../host/index.js';
import { encodeState, type ReplicaState, type StateSection } from '../../control-plane/stateWire.js';
import { writeStamp } from '../../plugin/sharedData.js';

/** A plausible Unix time: in-flight heartbeats are kept in whole seconds since the epoch. */
export const EPOCH_NS = 1_700_000_000_000_000_000n;
const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };

export function replicaState(address: string, over: Partial<ReplicaState> = {}): ReplicaState {
  return { address, ready: true, metricsKnown: true, waiting: 0, running: 0, kvUsage: 0.1, kvCapacityTokens: 150000, metricsAgeMs: 0, ...over };
}

export class StateDriver {
  private version = 0n;
  constructor(readonly hosts: ProxyWasmHost[], readonly clock: ManualClock) {}

  publish(replicas: ReplicaState[], sections?: StateSection[]): void {
    this.version++;
    const now = this.clock.nowNs();
    const payload = encodeState({ version: this.version, weights, replicas, ...(sections ? { sections } : {}) });
    const value = new Uint8Array(8 + payload.length);
    new DataView(value.buffer).setBigUint64(0, now, true);
    value.set(payload, 8);
    for (const h of this.hosts) {
      h.sharedData.set('prefix_router', 'prefix_router.state', value, 0);
      writeStamp(h.sharedData, { version: this.version, seenNs: now }, 'prefix_router');
    }
  }

  /** Moves time on by `ms`, firing the ticks due (each host's), after refreshing the stamp (a live control plane). */
  advance(ms: number): void {
    const to = this.clock.nowNs() + BigInt(ms) * 1_000_000n;
    for (const h of this.hosts) {
      writeStamp(h.sharedData, { version: this.version, seenNs: to }, 'prefix_router');
      h.advanceTo(to);
    }
  }
}
