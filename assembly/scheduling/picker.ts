// The one picker: the highest weighted score, ties by rendezvous hashing,
// under a bounded-load guard (consistent hashing with bounded loads,
// Mirrokni, Thorup and Zadimoghaddam): no replica is chosen while its load
// would pass ceil((1 + epsilon) x (total load + 1) / n), nor
// (1 + epsilon) x (least load + 1) + MIN_SPILL_LOAD; the next best is.
// Below MIN_SPILL_LOAD nothing is passed over. Beside it, a guard on work
// (c.workBound, set by the work model): a replica whose predicted work would
// pass it is passed over too; a replica must fit both. When none fits both,
// the unguarded choice.
// The count guard tells a hot prefix from a heavy session by the prefix's
// demand: it may not pass over the work guard's choice when the replica it
// would send the request to has to prefill more than `moveLimit` tokens
// beyond it. The router passes one engine step (work.chunkTokens, about 0.5 s
// of prefill on a T4) where the prefix's demand needs another holder
// (workModel.ts), and 0 where it does not: moving a request off the prefix
// it shares with the requests of its group, or off a conversation's history,
// costs a prefill of that prefix, and once there the next requests of the
// group split between two holders, while the in-flight count it evens out
// gains a few milliseconds of decode step. The work guard still applies, so
// a heavy holder is passed over once its work passes the bound by more than
// the prefill the holder saves, up to two chunks (workModel.ts).
// Among candidates that would prefill the same tokens, whose predicted
// TTFTs are near-equal (within c.nearMs) and whose other scorers do not
// prefer another (within the band), one with prefill queued that this
// gateway placed a request on longest ago wins over the rendezvous order:
// the prediction keeps the last chunk of a queue unseen (or all of it where
// other gateways queue there too: candidateFilter.ts), and the replica that
// received a prompt longer ago has likely prefilled more of it.
// A replica with nothing queued is predicted exactly and keeps its rank.
// A prompt no candidate holds any of, or holds less than half of (a shared
// preamble before a document: c.mostlyNew), is placed, among candidates with
// nothing queued whose predicted cost is within c.nearMs, on the one the
// fleet has given the least content (like SGLang's smallest tree; a
// gateway's VMs share their counts through the gateway blob, the gateways
// through the control plane): new
// prefixes then spread evenly over the caches, rather than by the
// rendezvous draw, which can stack more hot prefixes on one replica than
// its cache holds (long documents behind one preamble evict each other on
// the preamble's favourite holder). A replica the shared index last saw holding the prompt
// (its former home) comes first within a wider band (c.homeBandMs), so a
// group whose prefix reads as evicted stays on one replica.
// Last, for a gateway of a fleet, a candidate of nearly the same predicted
// TTFT in a share of the replicas nearer its own (scheduling/fleetShare.ts)
// replaces the choice.
import { Candidates } from "./candidates";
import { predictedCostMs } from "./workModel";

/** Scores closer than this are a tie (they come from sums of f64 ratios). */
export const TIE: f64 = 1e-9;

/**
 * A prefix no replica holds yet goes to the rendezvous choice among replicas
 * whose metrics score (queue and KV, the same for every gateway) is within
 * this fraction of those weights of the best: close loads count as equal,
 * while a clearly busier replica is still passed over. The bounded-load guard
 * still applies. Among idle replicas of near-equal predicted cost the one
 * given the least content then takes it (leastContentNear); where several are
 * equal, independent VMs and gateways still agree by rendezvous.
 */
export const NEW_PREFIX_BAND: f64 = 0.1;

/** The score band pick() takes for a request: TIE, or for a new prefix NEW_PREFIX_BAND of `metricsWeight` (queue + KV weights; 0 without trusted metrics) more. */
@inline export function pickBand(newPrefix: bool, metricsWeight: f64): f64 {
  return newPrefix ? NEW_PREFIX_BAND * metricsWeight + TIE : TIE;
}

/**
 * Below this many requests a replica is never passed over for load: a GPU
 * batches a few requests nearly for free (the T4 reference decode step is
 * 27 ms alone and about 29 ms at 8), so moving a request off its cached
 * prefix at low load costs a prefill and saves nothing.
 */
export const MIN_SPILL_LOAD: f64 = 8;

@final
export class Pick {
  /** Candidate index chosen. */
  index: i32 = -1;
  /** True when the guard passed over a better-scored replica. */
  spilled: bool = false;
  /** The candidate the scores alone chose (the one passed over when spilled). */
  preferred: i32 = -1;
  /** The guard's cap: no candidate whose load + 1 exceeds it is chosen while one fits. */
  cap: f64 = 0;
}

/**
 * Picks a candidate: among those whose score is within `band` of the best,
 * the one with the highest rendezvous weight, then among those near-equal to
 * it the one placed longest ago, or for a new prefix the one given the least
 * content (byRendezvous). `band` is TIE for an ordinary
 * pick; wider for a prefix no replica holds yet, so that replicas of nearly
 * equal load count as equal and every worker VM and every gateway, each
 * seeing slightly different in-flight counts, still places it on the same one.
 * `moveLimit`: the most prefill tokens the count guard may add to a request
 * by passing over the work guard's choice (Infinity: no limit; the limit
 * applies only while the work guard is on, c.workBound finite).
 */
export function pick(c: Candidates, epsilon: f64, band: f64, out: Pick, moveLimit: f64 = Infinity): void {
  const n = c.n;
  out.index = -1;
  out.spilled = false;
  if (n == 0) return;
  let total: f64 = 0;
  let least = Infinity;
  for (let i = 0; i < n; i++) {
    const l = unchecked(c.load[i]);
    total += l;
    if (l < least) least = l;
  }
  // Above the mean: the paper's bound. Above the least loaded: without it a
  // few replicas could sit idle while the others stay under a mean that the
  // idle ones pull down (one system prompt for everyone, many replicas).
  const overMean = Math.ceil((1 + epsilon) * (total + 1) / <f64>n);
  const overLeast = Math.floor((1 + epsilon) * (least + 1)) + MIN_SPILL_LOAD;
  let cap = overMean < overLeast ? overMean : overLeast;
  if (cap < MIN_SPILL_LOAD) cap = MIN_SPILL_LOAD;
  let bestAll = -Infinity, bestFit = -Infinity;
  for (let i = 0; i < n; i++) {
    const s = unchecked(c.score[i]);
    if (s > bestAll) bestAll = s;
    if (fits(c, i, cap) && s > bestFit) bestFit = s;
  }
  const unbounded = byRendezvous(c, bestAll, band, Infinity);
  // No candidate fits when the work guard passes over all the count guard lets through.
  let chosen = bestFit > -Infinity ? byRendezvous(c, bestFit, band, cap) : unbounded;
  if (c.workBound < Infinity && moveLimit < Infinity) {
    const byWork = byWorkAlone(c, band);
    if (byWork >= 0 && byWork != chosen && unchecked(c.newTokens[chosen]) - unchecked(c.newTokens[byWork]) > moveLimit) chosen = byWork;
  }
  out.index = chosen;
  out.spilled = chosen != unbounded;
  out.preferred = unbounded;
  out.cap = cap;
}

/** A count cap no load reaches: fits() then checks the work guard alone. */
const NO_COUNT_CAP: f64 = f64.MAX_VALUE;

/** The choice under the work guard alone, or -1 when it passes over every candidate. */
function byWorkAlone(c: Candidates, band: f64): i32 {
  let best = -Infinity;
  for (let i = 0; i < c.n; i++) {
    const s = unchecked(c.score[i]);
    if (s > best && fits(c, i, NO_COUNT_CAP)) best = s;
  }
  return best > -Infinity ? byRendezvous(c, best, band, NO_COUNT_CAP) : -1;
}

/** Whether candidate i is under both guards (cap Infinity: no guard at all; NO_COUNT_CAP: the work guard alone). */
@inline function fits(c: Candidates, i: i32, cap: f64): bool {
  return cap == Infinity || (unchecked(c.load[i]) + 1 <= cap && underWorkGuard(c, i));
}

@inline function underWorkGuard(c: Candidates, i: i32): bool {
  return unchecked(c.work[i]) <= c.workBound;
}

/** Candidate i ranks above candidate j: a higher score, or an equal one and a higher rendezvous weight. */
@inline function ranksAbove(c: Candidates, i: i32, j: i32): bool {
  const d = unchecked(c.score[i]) - unchecked(c.score[j]);
  return d > TIE || (d >= -TIE && unchecked(c.rendezvous[i]) > unchecked(c.rendezvous[j]));
}

/**
 * Among candidates scoring at least `top` - `band` with load + 1 <= cap, the
 * highest rendezvous weight; then, among those near-equal to it, the one
 * placed longest ago (longestIdleNear), or for a prompt new or mostly new
 * with nothing queued there the one given the least content (leastContentNear).
 */
function byRendezvous(c: Candidates, top: f64, band: f64, cap: f64): i32 {
  const floor = top - band;
  let best = -1;
  for (let i = 0; i < c.n; i++) {
    if (unchecked(c.score[i]) < floor - TIE || !fits(c, i, cap)) continue;
    if (best < 0 || unchecked(c.rendezvous[i]) > unchecked(c.rendezvous[best])) best = i;
  }
  if (best < 0 || c.nearMs <= 0) return best;
  return (c.newPrefix || c.mostlyNew) && unchecked(c.queued[best]) <= 0 ? leastContentNear(c, best, cap, band) : longestIdleNear(c, best, cap, band);
}

/** Candidate i's score besides the work term: what the other scorers and affinities say. */
@inline function othersScore(c: Candidates, i: i32): f64 {
  return unchecked(c.score[i]) - unchecked(c.workTerm[i]);
}

/** The least othersScore a near-equal alternative to `b` may have: `band` below b's. */
@inline function othersFloor(c: Candidates, b: i32, band: f64): f64 {
  return othersScore(c, b) - band - TIE;
}

/**
 * `b`, or among the candidates with nothing queued and load + 1 <= cap whose
 * predicted cost (TTFT and copy charge) is at most c.nearMs above b's
 * and whose score besides the work term is at most `band` below b's (the
 * engine's queue and KV, which the prediction does not see, still count):
 * the one given the least content, ties by rendezvous weight. With nothing
 * queued the prediction is exact, so the choice costs this request at most
 * c.nearMs; where prefill is queued, longestIdleNear's order is the better guess.
 * A former home of the prompt (c.formerMatched) within c.homeBandMs comes
 * first, whatever the other scorers say (workModel.ts HOME_BAND_CHUNKS).
 */
function leastContentNear(c: Candidates, b: i32, cap: f64, band: f64): i32 {
  const within = predictedCostMs(c, b) + c.nearMs;
  const homeWithin = predictedCostMs(c, b) + c.homeBandMs;
  const restFloor = othersFloor(c, b, band);
  let best = b;
  let bestHome = isFormerHome(c, b);
  for (let i = 0; i < c.n; i++) {
    if (unchecked(c.queued[i]) > 0 || !fits(c, i, cap)) continue;
    const home = isFormerHome(c, i);
    if (home ? predictedCostMs(c, i) > homeWithin : predictedCostMs(c, i) > within || othersScore(c, i) < restFloor) continue;
    if (home != bestHome) {
      if (home) { best = i; bestHome = true; }
      continue;
    }
    const d = unchecked(c.written[i]) - unchecked(c.written[best]);
    if (d < 0 || (d == 0 && unchecked(c.rendezvous[i]) > unchecked(c.rendezvous[best]))) best = i;
  }
  return best;
}

/** The shared index saw candidate i hold this prompt's start before taking it as evicted. */
@inline function isFormerHome(c: Candidates, i: i32): bool {
  return unchecked(c.formerMatched[i]) > 0;
}

/**
 * `b`, or among the candidates with prefill queued and load + 1 <= cap that
 * would prefill the tokens `b` would (a replica holding more of the prompt
 * never ties with one holding less), whose predicted TTFT is at most
 * c.nearMs above b's and whose score besides the work term is at most
 * `band` below b's (what the other scorers and affinities say still
 * counts): the one placed longest ago by any gateway of the fleet, as far
 * as this one knows (its own placements, and the others' as the states
 * showed them: Router's notePlacementsSeen), ties by rendezvous weight. Gateways that hear
 * of each other within a millisecond or two thus take turns on replicas that
 * look equal instead of all picking the one each placed on last.
 */
function longestIdleNear(c: Candidates, b: i32, cap: f64, band: f64): i32 {
  const fresh = unchecked(c.newTokens[b]);
  const within = unchecked(c.ttftMs[b]) + c.nearMs;
  const restFloor = othersFloor(c, b, band);
  let best = b;
  for (let i = 0; i < c.n; i++) {
    if (unchecked(c.queued[i]) <= 0 || unchecked(c.newTokens[i]) != fresh || unchecked(c.ttftMs[i]) > within) continue;
    if (othersScore(c, i) < restFloor || !fits(c, i, cap)) continue;
    const idle = unchecked(c.sinceAnyPlacedMs[i]), bestIdle = unchecked(c.sinceAnyPlacedMs[best]);
    if (idle > bestIdle || (idle == bestIdle && unchecked(c.rendezvous[i]) > unchecked(c.rendezvous[best]))) best = i;
  }
  return best;
}

/** The best candidate other than `except` (score, then rendezvous), or -1: where a retry goes. */
export function runnerUp(c: Candidates, except: i32): i32 {
  let best = -1;
  for (let i = 0; i < c.n; i++) {
    if (i == except) continue;
    if (best < 0 || ranksAbove(c, i, best)) best = i;
  }
  return best;
}
