// Session affinity: a request that names a session goes where the session's
// earlier requests went, so the conversation so far is in that replica's KV
// cache. The replica is the rendezvous choice for the session key among the
// candidates below the saturation bound: every worker VM and every gateway
// computes the same one from the same state, with no table to share. When it
// saturates, the session moves to its next choice and stays there while that
// one has room (the next request goes back once the first has room again,
// where the session's earlier turns still are).
import { Counter, RouterMetrics } from "../metrics";
import { rendezvousWeight } from "../prefix/hash";
import { RequestTraits } from "../request/requestTraits";
import { ReplicaTable } from "../state/replicaTable";
import { Saturation } from "../admission/saturation";
import { Candidates } from "./candidates";
import { Pick } from "./picker";

/** The header that names a session unless configured otherwise (lower case). */
export const DEFAULT_SESSION_HEADER = "x-session-id";

@final
export class SessionConfig {
  enabled: bool = true;
  /** Lower case. */
  header: string = DEFAULT_SESSION_HEADER;
  /** Take the body's `user` as the session when the header is absent. */
  bodyUser: bool = true;
}

/**
 * The candidate a request of session `traits.session` goes to: the highest
 * rendezvous weight among candidates `sat` marks unsaturated, or among all
 * when every one is saturated. -1 when the request names no session.
 */
export function sessionCandidate(t: ReplicaTable, c: Candidates, sat: Saturation, traits: RequestTraits): i32 {
  if (!traits.hasSession || c.n == 0) return -1;
  const key = traits.session;
  const any = sat.unsaturated == 0;
  let best = -1;
  let bestW: u64 = 0;
  for (let k = 0; k < c.n; k++) {
    if (!any && unchecked(sat.saturated[k])) continue;
    const w = rendezvousWeight(key, unchecked(t.addressHash[unchecked(c.replica[k])]));
    if (best < 0 || w > bestW) {
      best = k;
      bestW = w;
    }
  }
  return best;
}

/** The cycle's session affinity plugin: after the picker, it may replace the pick. */
@final
export class SessionAffinity {
  private readonly cfg: SessionConfig;
  private readonly metrics: RouterMetrics;

  constructor(cfg: SessionConfig, metrics: RouterMetrics) {
    this.cfg = cfg;
    this.metrics = metrics;
  }

  /** Sends a request of a session to its own replica while that one has room; true when it did. */
  apply(t: ReplicaTable, c: Candidates, sat: Saturation, traits: RequestTraits, picked: Pick): bool {
    const session = this.cfg.enabled ? sessionCandidate(t, c, sat, traits) : -1;
    if (session < 0) return false;
    picked.index = session;
    picked.spilled = false;
    this.metrics.add(Counter.SessionRouted, 1);
    return true;
  }
}
