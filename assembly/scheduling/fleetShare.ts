// Gateways of a fleet decide independently and hear of each other's
// placements only with the next state (tens of milliseconds later). In that
// window two gateways that both see a replica idle both pick it, and the two
// prefills queue behind each other. So a gateway that knows its position in
// the fleet (state section 3: index i of count g) splits the replica table
// into g shares, rotated to start at its own (replica i x n / g), and among
// candidates of nearly the same predicted TTFT takes one from the nearest
// share: while there is room, gateways fill different replicas. Within a
// share the replica the fleet has given the least content takes a new
// prefix (as leastContentNear does over all candidates; the other gateways'
// content comes with the state), so the shares fill evenly. It applies only
// to a request no replica holds any of (a prefix held somewhere goes there,
// whichever gateway sees it) and only when the work model decides. The
// picker (scheduling/picker.ts) makes the choice under the work guard alone.
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
 * Fills c.shareRank (each candidate's share, counted from this gateway's
 * own) and c.shareBandMs for this request: off (band 0) for a gateway
 * alone, or when `applies` is false (a request some replica holds part of,
 * or the work model does not decide).
 */
export function markShares(t: ReplicaTable, c: Candidates, p: WorkParams, applies: bool): void {
  const g = t.fleetCount;
  const n = t.n;
  if (!applies || g <= 1 || n <= 1) {
    c.shareBandMs = 0;
    return;
  }
  c.shareBandMs = SHARE_BAND_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs;
  // Rotated position of replica r: (r - start) mod n, start = i x n / g (in
  // 64 bits: n, g <= 65535); its share, position x g / n, is the rank: 0 this
  // gateway's own, then the next gateways' in turn.
  const start = <i32>(<i64>t.fleetIndex * <i64>n / <i64>g);
  for (let k = 0; k < c.n; k++) {
    let pos = unchecked(c.replica[k]) - start;
    if (pos < 0) pos += n;
    unchecked(c.shareRank[k] = <i32>(<i64>pos * <i64>g / <i64>n));
  }
}
