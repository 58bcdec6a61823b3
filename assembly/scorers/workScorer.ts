import { Candidates } from "../scheduling/candidates";

/**
 * Predicted time to first token: score = fastest / this replica's (1 for the
 * fastest, 0.5 for one predicted twice as slow). A ratio, not min-max: how
 * much slower a replica is counts, not its rank in the spread.
 */
export function workScorer(c: Candidates, out: StaticArray<f64>): void {
  let lo = Infinity;
  for (let i = 0; i < c.n; i++) {
    const t = unchecked(c.ttftMs[i]);
    if (t < lo) lo = t;
  }
  for (let i = 0; i < c.n; i++) {
    const t = unchecked(c.ttftMs[i]);
    unchecked(out[i] = t > 0 ? lo / t : 1.0);
  }
}
