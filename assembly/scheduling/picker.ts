// The one picker: the highest weighted score, ties by rendezvous hashing,
// under a bounded-load guard (consistent hashing with bounded loads,
// Mirrokni, Thorup and Zadimoghaddam): no replica is chosen while its load
// would pass ceil((1 + epsilon) x (total load + 1) / n); the next best is.
// Some replica always fits: the least loaded is at most the mean.
import { Candidates } from "./candidates";

/** Scores closer than this are a tie (they come from sums of f64 ratios). */
// @ts-ignore: decorator
@inline const TIE: f64 = 1e-9;

export class Pick {
  /** Candidate index chosen. */
  index: i32 = -1;
  /** True when the guard passed over a better-scored replica. */
  spilled: bool = false;
}

/**
 * Picks a candidate. With `byRendezvous`, scores are ignored and replicas are
 * ranked by their rendezvous weight alone: how a prefix nobody holds yet is
 * placed, so every worker VM and every gateway agrees without talking.
 */
export function pick(c: Candidates, epsilon: f64, byRendezvous: bool, out: Pick): void {
  const n = c.n;
  out.index = -1;
  out.spilled = false;
  if (n == 0) return;
  let total: f64 = 0;
  for (let i = 0; i < n; i++) total += unchecked(c.load[i]);
  const cap = Math.ceil((1 + epsilon) * (total + 1) / <f64>n);
  let best = -1, bestAny = -1;
  for (let i = 0; i < n; i++) {
    if (bestAny < 0 || better(c, i, bestAny, byRendezvous)) bestAny = i;
    if (unchecked(c.load[i]) + 1 <= cap && (best < 0 || better(c, i, best, byRendezvous))) best = i;
  }
  if (best < 0) best = bestAny;
  out.index = best;
  out.spilled = best != bestAny;
}

@inline function better(c: Candidates, i: i32, j: i32, byRendezvous: bool): bool {
  if (!byRendezvous) {
    const d = unchecked(c.score[i]) - unchecked(c.score[j]);
    if (d > TIE) return true;
    if (d < -TIE) return false;
  }
  return unchecked(c.rendezvous[i]) > unchecked(c.rendezvous[j]);
}
