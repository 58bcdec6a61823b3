import { Candidates } from "../scheduling/candidates";
import { lowerIsBetter } from "./minMax";

/** Queue depth: score = (maxQ - q) / (maxQ - minQ) over waiting requests; 1 when all are equal. */
export function queueScorer(c: Candidates, out: StaticArray<f64>): void {
  lowerIsBetter(c, c.waiting, out);
}
