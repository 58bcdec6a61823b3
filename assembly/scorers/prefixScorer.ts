import { Candidates } from "../scheduling/candidates";

/**
 * Prefix-cache affinity: score = matched leading blocks / total blocks of the
 * prompt, in [0,1]; 0 for every replica when the request has no full block.
 */
export function prefixScorer(c: Candidates, out: StaticArray<f64>): void {
  const total = c.totalBlocks;
  const perBlock = total > 0 ? 1.0 / <f64>total : 0.0; // one division, not one per replica
  for (let i = 0; i < c.n; i++) {
    unchecked(out[i] = <f64>unchecked(c.matched[i]) * perBlock);
  }
}
