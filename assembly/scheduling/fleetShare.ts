// Gateways of a fleet decide independently and hear of each other's
// placements only with the next state (tens of milliseconds later). In that
// window two gateways that both see a replica idle both pick it, and the two
// prefills queue behind each other. So a gateway that knows its position in
// the fleet (state section 3: index i of count g) splits the replica table
// into g shares, rotated to start at its own (replica i x n / g), and among
// candidates of nearly the same predicted TTFT takes one from the nearest
// share: while there is room, gateways fill different replicas. A gateway
// whose share is full goes to the others' from their far end, away from the
// replicas their owners are filling. It applies
// only to a request no replica holds any of (a prefix held somewhere goes
// there, whichever gateway sees it) and only when the work model decides.
// The picker (scheduling/picker.ts) makes the choice under the work guard.
import { Candidates } from "./candidates";
import { ReplicaTable } from "../state/replicaTable";
import { WorkParams } from "./workModel";

/**
 * Candidates whose predicted TTFT is within this many chunks of prefill of
 * the fastest count as equal: a quarter chunk, about 117 ms with the default
 * work model. A replica with a quarter chunk or more of prefill queued ahead
 * stays out (a collision costs the later request the earlier one's whole
 * prefill, some 500 ms for a 2k-token prompt on the reference T4), while the
 * decode steps the prediction adds for this gateway's own requests on its
 * share (a few 27-30 ms steps) do not push the share out of the band: the
 * other gateways' decoding requests are not in the count, so their shares
 * always look a little faster.
 */
export const SHARE_BAND_CHUNKS: f64 = 0.25;

/**
 * Fills c.shareRank and c.shareBandMs for this request: off (band 0) for a
 * gateway alone, for a request some replica holds part of, or when the work
 * model does not decide.
 */
export function markShares(t: ReplicaTable, c: Candidates, p: WorkParams, applies: bool): void {
  const g = t.fleetCount;
  const n = t.n;
  if (!applies || g <= 1 || n <= 1) {
    c.shareBandMs = 0;
    return;
  }
  c.shareBandMs = SHARE_BAND_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs;
  // Rotated position of replica r: (r - start) mod n, start = i x n / g (in 64 bits: n, g <= 65535).
  // Its share: position x g / n, 0 this gateway's own. Each gateway fills its
  // own share from the front and the others' from the back, where their
  // owners come last: so the rank, lower first, is the position in the own
  // share and the position mirrored within its share in the others.
  const start = <i32>(<i64>t.fleetIndex * <i64>n / <i64>g);
  for (let k = 0; k < c.n; k++) {
    let pos = unchecked(c.replica[k]) - start;
    if (pos < 0) pos += n;
    const share = <i32>(<i64>pos * <i64>g / <i64>n);
    if (share == 0) {
      unchecked(c.shareRank[k] = pos);
      continue;
    }
    const fromBack = shareStart(share + 1, n, g) - 1 - pos;
    unchecked(c.shareRank[k] = n + fromBack * g + share);
  }
}

/** The first rotated position of share s of g over n replicas: ceil(s x n / g). */
@inline function shareStart(s: i32, n: i32, g: i32): i32 {
  return <i32>((<i64>s * <i64>n + <i64>g - 1) / <i64>g);
}
