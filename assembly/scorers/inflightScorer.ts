import { Candidates } from "../scheduling/candidates";
import { lowerIsBetter } from "./minMax";

/**
 * In-flight load: score = (maxF - f) / (maxF - minF) over the requests this
 * gateway has in flight to each replica (all worker VMs); 1 when all are equal.
 * Unlike queue depth it is current between metric scrapes.
 */
export function inflightScorer(c: Candidates, out: StaticArray<f64>): void {
  lowerIsBetter(c, c.inflight, out);
}
