// The cost of sending this request to each candidate, in work and in time:
//   new_r   = prompt tokens - tokens of its prefix r holds (what r must prefill)
//   W_r     = queued_r + new_r (prefill tokens ahead of its first token)
//   TTFT_r  = overhead + perToken x W_r + (W_r / chunk + 1) x decodeStep(decoding_r) + memoryWait_r
//   work_r  = queued_r + decodeWork_r + new_r
// where queued_r are prefill tokens sent to r not yet prefilled (this
// gateway's drained since its last send or first token there, the others'
// whole: candidateFilter.ts), and
// decodeWork_r prices the output still to decode there in prefill tokens, at
// what each sequence adds to r's decode step (decodePriceShare).
// The work scorer ranks on cost_r = TTFT_r + copy_r, where copy_r prices the
//   copied_r = new_r - min over candidates of new
// prompt tokens r would prefill although another candidate holds them:
//   copy_r = evictionReuse x reused_r x perToken x copied_r
// A warmed vLLM cache is always full (freed blocks stay cached until their
// space is needed), so each copied token evicts the least recently used
// cached one; if that one is asked for again it is prefilled again, at
// perToken. reused_r is the share of r's cache held by prompt content in
// reuse (prefix/cacheReuse.ts): where that is high the evicted token is
// likely one, where r holds a few hot prompt starts among unique tails it is
// a tail nobody asks for again. Every copied token is charged, however long
// the prompt: moving a 30k-token conversation off its holder to skip that
// replica's queue makes a replica prefill it all again (7 s of a T4).
// Where the prefix's demand needs another holder, the copy's prefill is what
// the requests that follow it save, and it is credited:
//   copy_r = (evictionReuse x reused_r - 1) x perToken x copied_r
// A share s of the recent requests found this prefix held, or began with it
// where it is a prompt start every holder holds no more of
// (prefix/prefixDemand.ts): it keeps about s x n of n replicas busy, and
// while that is more than hold it (beyond chance, DEMAND_Z), a copy is
// needed. One system prompt for everyone so spreads at once, as round robin
// spreads it, rather than after its holders have queued; one of 32 groups'
// prefixes, or a conversation's history, is not copied for a few decoding
// requests (the count guard may not: picker.ts). Tokens every candidate
// would prefill (a unique prompt, a unique tail) cost the same wherever they
// go and are not charged, so plain load balancing is left as it was.
// Where no copy is needed, a copy also pays the holder's unseen progress:
//   copy_r += perToken x (min(progress_h, copied_r) - progress_r)   (when positive)
// for h the holder of least predicted TTFT. The prediction keeps the last
// chunk of a queue unseen (all of it where other gateways queue there too),
// but the engine has been prefilling it since it arrived and caches each
// block as it schedules it: a request that
// follows its group's first onto the holder waits less than predicted, and
// a copy made for a few tens of milliseconds puts a whole prefill in the
// tail. progress_r is what r may have prefilled unseen since this gateway
// last sent there, at most its queue and one chunk (unseenProgress). The
// charge holds only while the demand stays within PROGRESS_DEMAND_Z of the
// holders: a prefix everyone asks for, read from a gateway's first few
// requests, still spreads before its holders queue. A gateway of a fleet
// reads too few requests for that test, and keeps the charge wherever no
// copy is needed.
// The work guard passes over a replica whose work_r would exceed
// (1 + epsilon) x (all queued and decode work + this request's) / n + one chunk
// by more than saved_r = (most new over candidates) - new_r, the prefill it
// saves against the candidate holding least of the prompt, at most
// ALLOWANCE_CHUNKS: passing over a holder adds that prefill to the fleet's
// work, and a few decoding requests over the mean weigh less than
// re-prefilling a conversation's history.
// memoryWait_r is the wait for KV memory where r's cache is full
// (predictMemoryWait): vLLM starts a request only when its prompt's blocks
// fit, so on a full cache the next one starts as a running one finishes,
// however short the prefill it is queued behind.
// The latency model's constants are configuration (plugin/CONFIG.md `work`);
// the defaults are vLLM on one T4 serving Qwen2.5-3B, the model bench:routing's
// simulated replicas run (simulator/latency.ts).
import { maxTokensAsked } from "../request/promptHasher";
import { Candidates } from "./candidates";

/** Characters per token, the usual estimate for English text and code. */
const CHARS_PER_TOKEN: f64 = 4;

/** The prompt tokens of `textBytes` bytes of prompt text, as the work model and the context bound count them. */
@inline export function promptTokensOf(textBytes: i32): f64 {
  return Math.floor(<f64>textBytes / CHARS_PER_TOKEN);
}

@final
export class WorkParams {
  /** Lone-request TTFT intercept, ms. */
  prefillOverheadMs: f64 = 38;
  /** Per prompt token prefilled, ms. */
  prefillTimePerTokenMs: f64 = 0.228;
  /** Decode step of one sequence alone, ms. */
  interTokenLatencyMs: f64 = 27;
  /** Added to the decode step per further sequence, ms (27 ms alone, 32 ms at 16). */
  decodeTimePerSeqMs: f64 = 1.0 / 3.0;
  /** Sequences past which decode throughput is flat. */
  saturationNumSeqs: f64 = 50;
  /** Prefill tokens per engine step (vLLM's max_num_batched_tokens); also the work guard's slack. */
  chunkTokens: f64 = 2048;
  /** Prefill-token equivalents of one output token still to decode (0.87 ms at a saturated batch / 0.228 ms). */
  decodeTokenCost: f64 = 3.8;
  /** Output tokens assumed for a request that names no max_tokens or max_completion_tokens. */
  defaultMaxTokens: f64 = 256;
  /** Re-prefills expected per cached token in reuse that a copied prompt token evicts (0: copies are free). */
  evictionReuse: f64 = 1;
  /**
   * The least cache-reuse share the charge assumes (0..1): 1 charges every
   * copy in full, for pickers that each see a fraction of the traffic and
   * under-read the share (bench/picker/README.md).
   */
  evictionReuseFloor: f64 = 0;
}

/**
 * Predicted TTFTs within this many chunks of prefill of each other are
 * near-equal (c.nearMs): a tenth of a chunk, about 47 ms with the default
 * model. A replica's queued tokens count each request's whole prompt until
 * its first token, so the prediction cannot see how far a replica is into
 * its queue: up to a chunk per engine step. Below a tenth of a chunk lie the
 * differences that decode counts make (a third of a ms per sequence per
 * step), which say less than that unseen progress; one queued prompt of a
 * few hundred tokens or more is a real difference and still decides.
 */
export const NEAR_CHUNKS: f64 = 0.1;

/**
 * A prompt no candidate holds goes back to a replica that held it (until the
 * shared index took it as evicted: c.formerMatched) whose predicted cost is
 * within this many chunks of prefill of the best: a quarter chunk, about
 * 117 ms with the default model. The home is where the gateway's other
 * worker VMs and the other gateways still look for the prefix, and may
 * still hold it; elsewhere the prefix would have two homes and take twice
 * the cache. The band covers the decode steps of the home's other requests
 * (a few 27-30 ms steps) but not a queued prefill of any length: the
 * prompt is cold everywhere as far as the router can tell.
 */
export const HOME_BAND_CHUNKS: f64 = 0.25;

/**
 * The most prefill, in chunks, a replica's saving lets it past the work
 * bound: two engine steps, about a second of prefill on the reference T4.
 * A conversation's history of a few thousand tokens stays; a hot document
 * of tens of thousands still gets a second holder once its first one's
 * excess passes this, so the requests that follow it can spread.
 */
export const ALLOWANCE_CHUNKS: f64 = 2;

/**
 * Standard deviations by which a prefix's demand must pass its holders for
 * a copy to count as needed. A share read from few requests (a gateway's
 * first) is noisy: one of 32 groups found twice in the first 20 requests
 * reads as 1.6 replicas' worth of 16. The deviation
 * is the binomial one of the holders' share h/n over the requests counted,
 * sqrt(h x (n - h) / requests) replicas, which vanishes as h nears n, so
 * the last replica still gets one prompt sent by everyone.
 */
export const DEMAND_Z: f64 = 2;

/**
 * Standard deviations (as DEMAND_Z's) by which a prefix's demand may pass
 * its holders with copies still paying the holder's unseen progress. At 0,
 * a share read from a gateway's first requests (one of 32 groups found in a
 * quarter of them) turns the charge off when in-flight holdings are most
 * common; at DEMAND_Z, a prefix all ask for but not yet read from enough
 * requests to spread stays on its first holders while they queue. A gateway
 * alone only: one of a fleet of g reads its demand from a g-th of the
 * requests, and one of 32 groups met twice in its first dozen passes one
 * deviation about one time in five, copying a prefix whose first prefill is
 * under way. There the charge holds wherever no copy is needed (DEMAND_Z),
 * and the other gateways' placements, heard within milliseconds, tell it
 * where the first prefill runs.
 */
export const PROGRESS_DEMAND_Z: f64 = 1;

/**
 * The least share of candidates with KV room for the memory wait to count
 * (predictMemoryWait). Where only a few have room, the whole fleet's
 * overflow would be steered onto them: each fills within a few requests and
 * the ones after meet a full cache there too, having left the replica that
 * held their prefix. Below a quarter, room is a passing state, not a place.
 */
export const ROOM_SHARE: f64 = 0.25;

/** Prefill tokens candidate `k` may have done unseen since this gateway last sent there: at most its queue and one chunk. */
@inline function unseenProgress(c: Candidates, p: WorkParams, k: i32): f64 {
  const byTime = unchecked(c.sincePlacedMs[k]) / p.prefillTimePerTokenMs;
  return Math.min(byTime, Math.min(unchecked(c.queued[k]), p.chunkTokens));
}

/** Candidate `k`'s predicted cost, ms: its predicted TTFT and its copy charge (cost_r above). */
@inline export function predictedCostMs(c: Candidates, k: i32): f64 {
  return unchecked(c.ttftMs[k]) + unchecked(c.copyMs[k]);
}

/**
 * The share of work.decodeTokenCost (the price of an output token at a
 * saturated batch) one output token costs on a replica decoding `batch`
 * sequences: what its sequence adds to the decode step. Below saturation
 * that is decodeTimePerSeqMs (a third of a ms on the reference T4, 0.38 of
 * the saturated 0.87 ms): a replica decoding 16 requests among others
 * decoding 8 is a few ms a step slower, not 8 x 256 tokens of full decode
 * time behind, and the work guard should not pass over a prefix's holder
 * for it. Past saturation the step grows by the saturated share per
 * sequence, so what each of the n = batch + 1 sequences adds to a lone
 * sequence's step rises from that third of a ms towards the saturated share
 * as the batch grows: (step(n) - interTokenLatencyMs) / n. The whole
 * saturated share from the batch that fills it would make a replica's
 * decode work jump 2.6-fold at one sequence more: the guard would pass over
 * every conversation's holder there at once, and each history prefilled
 * elsewhere would push the next replica over. A batch is also full where
 * the KV cache (`kvUsage` of it in use, 0..1) would not hold one more of
 * the sequences it runs: there the next one waits for memory as for a
 * saturated batch, and a short cache (long prompts, a scarce KV) fills long
 * before saturationNumSeqs.
 */
export function decodePriceShare(p: WorkParams, batch: f64, kvUsage: f64): f64 {
  const saturatedPerSeq = saturatedStepMs(p) / p.saturationNumSeqs;
  if (p.decodeTimePerSeqMs >= saturatedPerSeq) return 1;
  // The KV cache holds batch / kvUsage such sequences: where the next one does not fit, the batch is full.
  if (kvUsage * (batch + 1) > batch) return 1;
  const below = p.decodeTimePerSeqMs / saturatedPerSeq;
  const n = batch + 1;
  if (n < p.saturationNumSeqs) return below;
  const past = 1 - p.interTokenLatencyMs / (n * saturatedPerSeq);
  return past > below ? past : below;
}

/** A decode step over saturationNumSeqs sequences, ms: past them each sequence costs its share of it. */
@inline function saturatedStepMs(p: WorkParams): f64 {
  return p.interTokenLatencyMs + p.decodeTimePerSeqMs * (p.saturationNumSeqs - 1);
}

/** Time of a decode step over n sequences, ms (0 for none). */
export function decodeStepMs(p: WorkParams, n: f64): f64 {
  if (n <= 0) return 0;
  const linear = p.interTokenLatencyMs + p.decodeTimePerSeqMs * (n - 1);
  const saturated = n * saturatedStepMs(p) / p.saturationNumSeqs;
  return linear > saturated ? linear : saturated;
}

/** Predicted TTFT, ms, with `work` prefill tokens ahead of the first token and `decoding` sequences decoding. */
@inline export function predictTtftMs(p: WorkParams, work: f64, decoding: f64): f64 {
  return p.prefillOverheadMs + p.prefillTimePerTokenMs * work + (work / p.chunkTokens + 1) * decodeStepMs(p, decoding);
}

/**
 * Fills each candidate's new tokens, work, predicted TTFT and copy charge from its
 * matched blocks (`c.matched`, `tokensPerBlock` tokens each) and counters
 * (`c.queued`, `c.decoding`, `c.decodeWork`), for a request of
 * `promptTokens` prompt tokens and `ownWork` work (prompt plus decode), and
 * the work guard's bound (`c.workBound`; Infinity when `guard` is off) and
 * the near-equal band (`c.nearMs`; 0 when `guard` is off: the prediction does not decide).
 * The TTFT counts the wait for KV memory (predictMemoryWait) for a request
 * of `outputTokens` output tokens where `withMetrics` (the replicas' metrics
 * can be trusted) and `guard`; else none.
 */
export function predictWork(c: Candidates, p: WorkParams, promptTokens: f64, tokensPerBlock: f64, ownWork: f64, epsilon: f64, guard: bool, outputTokens: f64 = 0, withMetrics: bool = false): void {
  const n = c.n;
  // vLLM always computes the last prompt token: at most all but one is a hit.
  const maxHit = promptTokens > 1 ? promptTokens - 1 : 0;
  let total: f64 = 0;
  let leastFresh = Infinity;
  let mostFresh: f64 = 0;
  for (let k = 0; k < n; k++) {
    let hit = <f64>unchecked(c.matched[k]) * tokensPerBlock;
    if (hit > maxHit) hit = maxHit;
    const fresh = promptTokens - hit;
    const q = unchecked(c.queued[k]);
    unchecked(c.newTokens[k] = fresh);
    unchecked(c.ttftMs[k] = predictTtftMs(p, q + fresh, unchecked(c.decoding[k])));
    total += q + unchecked(c.decodeWork[k]);
    if (fresh < leastFresh) leastFresh = fresh;
    if (fresh > mostFresh) mostFresh = fresh;
  }
  predictMemoryWait(c, p, tokensPerBlock, outputTokens, withMetrics && guard);
  for (let k = 0; k < n; k++) unchecked(c.ttftMs[k] += unchecked(c.memoryWaitMs[k]));
  const perToken = p.prefillTimePerTokenMs;
  const perCopied = p.evictionReuse * perToken;
  const allowance = ALLOWANCE_CHUNKS * p.chunkTokens;
  // The candidates holding the most of the prompt, against the replicas its prefix's demand keeps busy.
  let holders: f64 = 0;
  if (leastFresh < promptTokens) {
    for (let k = 0; k < n; k++) if (unchecked(c.newTokens[k]) == leastFresh) holders += 1;
  }
  // Where the prompt is held: its demand, in replicas, beyond the holders, against chance's deviation of it.
  let spread = false;
  let chargesProgress = false;
  if (holders > 0) {
    const excess = c.demandShare * <f64>n - holders;
    const deviation = Math.sqrt(holders * (<f64>n - holders) / c.demandRequests);
    spread = c.demandRequests > 0 && excess > DEMAND_Z * deviation;
    chargesProgress = holders < <f64>n && !spread && (c.fleetGateways > 1 || excess <= PROGRESS_DEMAND_Z * deviation);
  }
  c.copyNeeded = spread;
  // Held for less than half by its best holder: the part held (a shared preamble) says little of where the rest belongs.
  c.mostlyNew = leastFresh < promptTokens && leastFresh * 2 > promptTokens;
  for (let k = 0; k < n; k++) {
    const fresh = unchecked(c.newTokens[k]);
    // Past the bound by no more than the prefill it saves against the candidate holding least of the prompt, up to the allowance.
    let saved = mostFresh - fresh;
    if (saved > allowance) saved = allowance;
    unchecked(c.work[k] = unchecked(c.queued[k]) + unchecked(c.decodeWork[k]) + fresh - saved);
    const copied = fresh - leastFresh;
    const reuse = unchecked(c.cacheReuse[k]);
    unchecked(c.copyMs[k] = perCopied * (reuse > p.evictionReuseFloor ? reuse : p.evictionReuseFloor) * copied - (spread ? perToken * copied : 0));
  }
  if (chargesProgress) chargeProgress(c, p, leastFresh);
  c.workBound = guard && n > 0 ? (1 + epsilon) * (total + ownWork) / <f64>n + p.chunkTokens : Infinity;
  c.nearMs = guard ? NEAR_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs : 0;
  c.homeBandMs = guard ? HOME_BAND_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs : 0;
}

/**
 * Fills c.memoryWaitMs (from c.newTokens): how long this request would wait
 * for KV memory on each candidate, ms, from its metrics (kvUsage, running and
 * waiting of one scrape) and this gateway's in-flight count. vLLM admits a waiting request
 * only when the blocks of its prompt fit in the free ones, and a decode step
 * that finds none free sends the newest running request back to the head of
 * the queue. Where this request's prompt and the prompts queued before it
 * (c.queued) fit in the free part of the cache, it waits for none. Else the
 * cache holds running / kvUsage requests of its present mix, the requests
 * wanting to run are the engine's running and waiting ones, or this
 * gateway's own in flight where it has sent more since the scrape, and this
 * one; each past what the cache holds waits for a running one to finish,
 * which happens about every outputTokens / running decode steps. A replica
 * holding several groups' prefixes fills its cache with their warm requests,
 * each of which the prefill queue prices at a few tokens: without this it
 * is sent more of them while they wait seconds. Below the scraped usage's
 * precision (no metrics, or none running) nothing is predicted, and where
 * fewer than ROOM_SHARE of the candidates have room nothing is predicted
 * anywhere: moving the request gains no room that lasts, and a copy between
 * full caches takes room that both groups' later requests need.
 */
function predictMemoryWait(c: Candidates, p: WorkParams, tokensPerBlock: f64, outputTokens: f64, withMetrics: bool): void {
  let withRoom = 0;
  for (let k = 0; k < c.n; k++) {
    unchecked(c.memoryWaitMs[k] = 0);
    const usage = unchecked(c.kvUsage[k]);
    const running = unchecked(c.running[k]);
    if (!withMetrics || usage <= 0 || running <= 0) { withRoom++; continue; }
    const capacity = unchecked(c.kvCapacityTokens[k]);
    // Its new tokens, and the block the last of them opens.
    const prompt = unchecked(c.newTokens[k]) + tokensPerBlock;
    if (capacity > 0 && unchecked(c.queued[k]) + prompt <= (1 - usage) * capacity) { withRoom++; continue; }
    const holds = running / (usage < 1 ? usage : 1);
    const wanting = Math.max(running + unchecked(c.waiting[k]), unchecked(c.inflight[k])) + 1;
    const past = wanting - holds;
    if (past > 0) unchecked(c.memoryWaitMs[k] = past * outputTokens * decodeStepMs(p, running) / running);
    else withRoom++;
  }
  if (<f64>withRoom < ROOM_SHARE * <f64>c.n) for (let k = 0; k < c.n; k++) unchecked(c.memoryWaitMs[k] = 0);
}

/** Adds to each copy's charge the holder's unseen progress beyond its own (the progress charge above). */
function chargeProgress(c: Candidates, p: WorkParams, leastFresh: f64): void {
  let holder = -1;
  for (let k = 0; k < c.n; k++) {
    if (unchecked(c.newTokens[k]) == leastFresh && (holder < 0 || unchecked(c.ttftMs[k]) < unchecked(c.ttftMs[holder]))) holder = k;
  }
  const progress = unseenProgress(c, p, holder);
  for (let k = 0; k < c.n; k++) {
    const copied = unchecked(c.newTokens[k]) - leastFresh;
    if (copied <= 0) continue;
    const charge = Math.min(progress, copied) - unseenProgress(c, p, k);
    if (charge > 0) unchecked(c.copyMs[k] += p.prefillTimePerTokenMs * charge);
  }
}

/**
 * The cycle's predict point: what this request asks of a replica (prompt
 * tokens from the prompt text hashed, output tokens from its max_tokens or
 * the default) and so each candidate's predicted cost (predictWork). Keeps
 * the request's output and decode work for commit.
 */
@final
export class WorkPrediction {
  /** Output tokens of the request being scheduled. */
  outputTokens: f64 = 0;
  /** Its decode work, in prefill-token equivalents. */
  decodeWork: f64 = 0;

  /** `textBytes`, `blockBytes`: prompt text hashed and per block (read only when `hasPrompt`); `withMetrics`: the replicas' metrics can be trusted. */
  predict(c: Candidates, p: WorkParams, hasPrompt: bool, textBytes: i32, blockBytes: i32, epsilon: f64, guard: bool, withMetrics: bool): void {
    const promptTokens = hasPrompt ? promptTokensOf(textBytes) : 0;
    const asked = hasPrompt ? maxTokensAsked : -1;
    this.outputTokens = asked >= 0 ? <f64>asked : p.defaultMaxTokens;
    this.decodeWork = Math.round(p.decodeTokenCost * this.outputTokens);
    predictWork(c, p, promptTokens, <f64>blockBytes / CHARS_PER_TOKEN, promptTokens + this.decodeWork, epsilon, guard, this.outputTokens, withMetrics);
  }
}
