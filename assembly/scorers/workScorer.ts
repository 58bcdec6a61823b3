import { Candidates } from "../scheduling/candidates";
import { predictedCostMs } from "../scheduling/workModel";

/**
 * Predicted cost: time to first token plus what copying a prefix another
 * replica holds costs (workModel.ts); score = cheapest / this
 * replica's (1 for the cheapest, 0.5 for one predicted twice as costly). A
 * ratio, not min-max: how much costlier a replica is counts, not its rank in
 * the spread.
 */
export function workScorer(c: Candidates, out: StaticArray<f64>): void {
  let lo = Infinity;
  for (let i = 0; i < c.n; i++) {
    const t = predictedCostMs(c, i);
    if (t < lo) lo = t;
  }
  for (let i = 0; i < c.n; i++) {
    const t = predictedCostMs(c, i);
    unchecked(out[i] = t > 0 ? lo / t : 1.0);
  }
}
