// The one place scores are combined: score = sum over scorers of weight x clamp(score, 0, 1);
// the work scorer's term is kept apart too (c.workTerm), for the picker's near-equal order.
import { Candidates } from "./candidates";
import { Weights } from "./weights";
import { prefixScorer } from "../scorers/prefixScorer";
import { queueScorer } from "../scorers/queueScorer";
import { kvCacheScorer } from "../scorers/kvCacheScorer";
import { inflightScorer } from "../scorers/inflightScorer";
import { Scorer, decisions } from "../decisionRecord";
import { workScorer } from "../scorers/workScorer";

@inline function accumulate(c: Candidates, weight: f64, scorer: Scorer): void {
  if (decisions.active) decisions.column(scorer, c, weight);
  for (let i = 0; i < c.n; i++) {
    const s = unchecked(c.scratch[i]);
    unchecked(c.score[i] += weight * (s < 0 ? 0 : s > 1 ? 1 : s));
  }
}

/**
 * Fills `c.score`. `withMetrics` is false when the replicas' metrics cannot be
 * trusted (static replicas, or a state past its staleness bound): the queue and
 * KV scorers then sit out and routing rests on prefix and in-flight load.
 * `withInflight` is false when placing a prefix nobody holds: in-flight counts
 * are each gateway's own, metrics are the same for every gateway, so
 * independent gateways score the new prefix alike and agree where it goes.
 */
export function weightedScore(c: Candidates, w: Weights, withMetrics: bool, withInflight: bool = true): void {
  for (let i = 0; i < c.n; i++) unchecked(c.score[i] = 0);
  if (w.prefix > 0 && c.totalBlocks > 0) { prefixScorer(c, c.scratch); accumulate(c, w.prefix, Scorer.Prefix); }
  if (withMetrics && w.queue > 0) { queueScorer(c, c.scratch); accumulate(c, w.queue, Scorer.Queue); }
  if (withMetrics && w.kvCache > 0) { kvCacheScorer(c, c.scratch); accumulate(c, w.kvCache, Scorer.KvCache); }
  if (withInflight && w.inflight > 0) { inflightScorer(c, c.scratch); accumulate(c, w.inflight, Scorer.Inflight); }
  if (w.work > 0) {
    workScorer(c, c.scratch);
    accumulate(c, w.work, Scorer.Work);
    for (let i = 0; i < c.n; i++) {
      const s = unchecked(c.scratch[i]);
      unchecked(c.workTerm[i] = w.work * (s < 0 ? 0 : s > 1 ? 1 : s));
    }
  }
}
