import { Candidates } from "../scheduling/candidates";

/** KV-cache headroom: score = 1 - usage, usage clamped to [0,1]. */
export function kvCacheScorer(c: Candidates, out: StaticArray<f64>): void {
  for (let i = 0; i < c.n; i++) {
    const u = unchecked(c.kvUsage[i]);
    unchecked(out[i] = 1.0 - (u < 0 ? 0 : u > 1 ? 1 : u));
  }
}
