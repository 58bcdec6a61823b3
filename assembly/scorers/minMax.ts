import { Candidates } from "../scheduling/candidates";

/**
 * (max - v) / (max - min) over the candidates: 1 for the least loaded, 0 for
 * the most; 1 for all when all are equal. Shared by the queue and in-flight scorers.
 */
export function lowerIsBetter(c: Candidates, values: StaticArray<f64>, out: StaticArray<f64>): void {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < c.n; i++) {
    const v = unchecked(values[i]);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo;
  if (!(span > 0)) {
    for (let i = 0; i < c.n; i++) unchecked(out[i] = 1.0);
    return;
  }
  const perUnit = 1.0 / span; // one division, not one per replica
  for (let i = 0; i < c.n; i++) {
    unchecked(out[i] = (hi - unchecked(values[i])) * perUnit);
  }
}
