import { Candidates } from "../../assembly/scheduling/candidates";
import { prefixScorer } from "../../assembly/scorers/prefixScorer";
import { queueScorer } from "../../assembly/scorers/queueScorer";
import { kvCacheScorer } from "../../assembly/scorers/kvCacheScorer";
import { inflightScorer } from "../../assembly/scorers/inflightScorer";
import { weightedScore } from "../../assembly/scheduling/weightedScore";
import { Weights } from "../../assembly/scheduling/weights";
import { Pick, TIE, pick } from "../../assembly/scheduling/picker";
import { workScorer } from "../../assembly/scorers/workScorer";
import { WorkParams, decodeStepMs, predictTtftMs, predictWork } from "../../assembly/scheduling/workModel";

function cands(n: i32): Candidates {
  const c = new Candidates();
  c.n = n;
  for (let i = 0; i < n; i++) {
    c.replica[i] = i;
    c.matched[i] = 0;
    c.waiting[i] = 0;
    c.kvUsage[i] = 0;
    c.inflight[i] = 0;
    c.load[i] = 0;
    c.rendezvous[i] = <u64>(i + 1);
  }
  return c;
}

/**
 * Replica 0 holds 1024 of a 2000-token prompt; a quarter of what replica 1
 * would evict comes back, of replica 2's nothing (cold tails); the prefix was
 * found by `share` of 300 recent requests.
 */
function copyCase(share: f64): Candidates {
  const c = cands(3);
  c.matched[0] = 64;
  c.cacheReuse[1] = 0.25;
  c.cacheReuse[2] = 0;
  c.demandShare = share;
  c.demandRequests = 300;
  return c;
}

/** Replica 0, the favourite, holds a 12k-token conversation and is over the count cap (8); its work is under the bound. */
function heavySession(): Candidates {
  const c = cands(3);
  c.score[0] = 3; c.score[1] = 2; c.score[2] = 1;
  c.load[0] = 12;
  c.newTokens[0] = 300; c.newTokens[1] = 12300; c.newTokens[2] = 12300;
  c.work[0] = 3000; c.work[1] = 12300; c.work[2] = 12300;
  c.workBound = 20000;
  return c;
}

describe("scorers", () => {
  it("prefix: matched / total", () => {
    const c = cands(3);
    c.totalBlocks = 4;
    c.matched[0] = 4; c.matched[1] = 1; c.matched[2] = 0;
    prefixScorer(c, c.scratch);
    expect(c.scratch[0]).toBe(1.0);
    expect(c.scratch[1]).toBe(0.25);
    expect(c.scratch[2]).toBe(0.0);
  });
  it("prefix: 0 when the prompt has no full block", () => {
    const c = cands(2);
    c.totalBlocks = 0;
    prefixScorer(c, c.scratch);
    expect(c.scratch[0]).toBe(0.0);
  });
  it("queue: (max - q) / (max - min), 1 when all equal", () => {
    const c = cands(3);
    c.waiting[0] = 0; c.waiting[1] = 5; c.waiting[2] = 10;
    queueScorer(c, c.scratch);
    expect(c.scratch[0]).toBe(1.0);
    expect(c.scratch[1]).toBe(0.5);
    expect(c.scratch[2]).toBe(0.0);
    c.waiting[0] = 3; c.waiting[1] = 3; c.waiting[2] = 3;
    queueScorer(c, c.scratch);
    expect(c.scratch[1]).toBe(1.0);
  });
  it("kv: 1 - usage, clamped", () => {
    const c = cands(3);
    c.kvUsage[0] = 0.25; c.kvUsage[1] = 1.5; c.kvUsage[2] = -1;
    kvCacheScorer(c, c.scratch);
    expect(c.scratch[0]).toBe(0.75);
    expect(c.scratch[1]).toBe(0.0);
    expect(c.scratch[2]).toBe(1.0);
  });
  it("in-flight: least loaded scores 1", () => {
    const c = cands(2);
    c.inflight[0] = 4; c.inflight[1] = 2;
    inflightScorer(c, c.scratch);
    expect(c.scratch[0]).toBe(0.0);
    expect(c.scratch[1]).toBe(1.0);
  });
});

describe("weightedScore", () => {
  it("sums weight x score", () => {
    const c = cands(2);
    c.totalBlocks = 2;
    c.matched[0] = 2;
    c.waiting[0] = 10;
    const w = new Weights();
    w.work = 0;
    w.prefix = 3; w.queue = 1; w.kvCache = 1; w.inflight = 0;
    weightedScore(c, w, true);
    expect(c.score[0]).toBe(3 + 0 + 1);
    expect(c.score[1]).toBe(0 + 1 + 1);
  });
  it("leaves queue and KV out without metrics", () => {
    const c = cands(2);
    c.waiting[0] = 10;
    c.kvUsage[1] = 1;
    const w = new Weights();
    w.work = 0;
    weightedScore(c, w, false);
    expect(c.score[0]).toBe(c.score[1]);
  });
});

describe("picker", () => {
  it("takes the best score", () => {
    const c = cands(3);
    c.score[0] = 1; c.score[1] = 3; c.score[2] = 2;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(false);
  });
  it("breaks ties by rendezvous weight", () => {
    const c = cands(3);
    c.score[0] = 2; c.score[1] = 2; c.score[2] = 1;
    c.rendezvous[0] = 5; c.rendezvous[1] = 9; c.rendezvous[2] = 100;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(1);
  });
  it("places by rendezvous among replicas within the band of the best", () => {
    const c = cands(3);
    c.score[0] = 2.0; c.score[1] = 1.95; c.score[2] = 1.0;
    c.rendezvous[0] = 1; c.rendezvous[1] = 50; c.rendezvous[2] = 1000;
    const p = new Pick();
    pick(c, 0.25, 0.1, p);
    expect(p.index).toBe(1); // within 0.1 of the best; replica 2 is not, whatever its weight
    pick(c, 0.25, 10, p);
    expect(p.index).toBe(2);
  });
  it("passes over a replica above (1 + eps) x mean load", () => {
    const c = cands(3);
    c.score[0] = 5; c.score[1] = 1; c.score[2] = 2;
    c.load[0] = 12; c.load[1] = 0; c.load[2] = 0;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    // cap = max(8, ceil(1.25 * 13 / 3) = 6) = 8: replica 0 is over it, 2 is next best.
    expect(p.index).toBe(2);
    expect(p.spilled).toBe(true);
  });
  it("never spills below the minimum load, however uneven", () => {
    const c = cands(3);
    c.score[0] = 5;
    c.load[0] = 6; c.load[1] = 0; c.load[2] = 0;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(0);
    expect(p.spilled).toBe(false);
  });
  it("fills an idle replica before the favourite passes the least-loaded bound", () => {
    const c = cands(4);
    c.score[0] = 5; c.score[1] = 5; c.score[2] = 5; c.score[3] = 0;
    c.load[0] = 12; c.load[1] = 12; c.load[2] = 12; c.load[3] = 0;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    // over the mean: ceil(1.25 * 37 / 4) = 12 already excludes 0..2; over the least: floor(1.25 * 1) + 8 = 9.
    expect(p.index).toBe(3);
    c.load[0] = 8; c.load[1] = 8; c.load[2] = 8; c.load[3] = 0;
    pick(c, 0.25, TIE, p);
    // mean bound ceil(1.25 * 25 / 4) = 8 lets nobody at 8 in, the least bound 9 would: the idle one still wins.
    expect(p.index).toBe(3);
    c.load[0] = 7; c.load[1] = 7; c.load[2] = 7; c.load[3] = 0;
    pick(c, 0.25, TIE, p);
    // Under MIN_SPILL_LOAD affinity holds (the three equal favourites tie; rendezvous picks among them).
    expect(p.index).not.toBe(3);
    expect(p.spilled).toBe(false);
  });
  it("keeps affinity while the favourite is within the bound", () => {
    const c = cands(3);
    c.score[0] = 5;
    c.load[0] = 1; c.load[1] = 1; c.load[2] = 0;
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(0);
  });
  it("returns -1 with no candidates", () => {
    const c = cands(0);
    const p = new Pick();
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(-1);
  });
});

describe("work model and work guard", () => {
  it("predicts TTFT with the T4 model the simulator runs", () => {
    const p = new WorkParams();
    // Idle: overhead + per-token prefill.
    expect(predictTtftMs(p, 1000, 0)).toBeCloseTo(38 + 228);
    // Decoding sequences add a decode step per prefill chunk.
    expect(decodeStepMs(p, 1)).toBeCloseTo(27);
    expect(decodeStepMs(p, 16)).toBeCloseTo(32);
    expect(predictTtftMs(p, 2048, 16)).toBeCloseTo(38 + 0.228 * 2048 + 2 * 32);
    // Past saturation the step grows with the batch.
    expect(decodeStepMs(p, 100)).toBeCloseTo(100 * (27 + 49.0 / 3.0) / 50);
  });
  it("prices what a replica does not hold, its queue and its decode work", () => {
    const c = cands(3);
    const p = new WorkParams();
    c.matched[0] = 64; // holds 1024 tokens of the prompt
    c.queued[1] = 5000;
    c.decoding[2] = 4; c.decodeWork[2] = 4000;
    predictWork(c, p, 2000, 16, 2000 + 3.8 * 100, 0.5, true);
    expect(c.newTokens[0]).toBe(2000 - 1024);
    expect(c.newTokens[1]).toBe(2000);
    expect(c.work[1]).toBe(7000);
    expect(c.work[2]).toBe(6000);
    // The guard's load of a holder is less what it saves: 976 new tokens, 1024 fewer than replica 1's.
    expect(c.work[0]).toBe(976 - 1024);
    expect(c.ttftMs[0]).toBeLessThan(c.ttftMs[2]);
    expect(c.ttftMs[2]).toBeLessThan(c.ttftMs[1]);
    // (1.5 x (5000 + 4000 + 2380) / 3) + 2048
    expect(c.workBound).toBeCloseTo(1.5 * 11380 / 3 + 2048);
    // A replica holding all of it still prefills the last token.
    c.matched[0] = 1000;
    predictWork(c, p, 2000, 16, 2000, 0.5, false);
    expect(c.newTokens[0]).toBe(1);
    expect(c.workBound).toBe(Infinity);
  });
  it("passes over a replica whose work would exceed the bound, beside the count guard", () => {
    const c = cands(3);
    c.score[0] = 3; c.score[1] = 2; c.score[2] = 1;
    c.work[0] = 9000; c.work[1] = 100; c.work[2] = 100;
    c.workBound = 5000;
    const p = new Pick();
    pick(c, 0.5, TIE, p);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
    // Both guards: the next best by score is over the count bound.
    c.load[1] = 20;
    pick(c, 0.5, TIE, p);
    expect(p.index).toBe(2);
  });
  it("lets a holder past the work bound by the prefill it saves, no further", () => {
    // Replica 0 holds 4096 of a 5000-token prompt and has 8000 tokens of decode work; the others are idle.
    const c = cands(3);
    const p = new WorkParams();
    c.matched[0] = 256;
    c.decoding[0] = 8; c.decodeWork[0] = 8000;
    predictWork(c, p, 5000, 16, 5000 + 3.8 * 256, 0.25, true);
    // Bound 1.25 x (8000 + 5973) / 3 + 2048 = 7870: 8904 tokens of work over it, less the 4096 it saves.
    expect(c.work[0]).toBe(8000 + 904 - 4096);
    c.score[0] = 3; c.score[1] = 2; c.score[2] = 1;
    const out = new Pick();
    pick(c, 0.25, TIE, out, 2048);
    expect(out.index).toBe(0);
    // Twice the decode work: over the bound by more than the copy costs, it moves.
    c.decodeWork[0] = 16000;
    predictWork(c, p, 5000, 16, 5000 + 3.8 * 256, 0.25, true);
    pick(c, 0.25, TIE, out, 2048);
    expect(out.index).toBe(1);
    expect(out.spilled).toBe(true);
  });
  it("lets a holder past the work bound by at most two chunks, however much it holds", () => {
    // Replica 0 holds 40960 of a 41000-token document.
    const c = cands(3);
    const p = new WorkParams();
    c.matched[0] = 2560;
    c.decodeWork[0] = 8000;
    predictWork(c, p, 41000, 16, 41000, 0.25, true);
    expect(c.work[0]).toBe(8000 + 40 - 2 * 2048);
    expect(c.work[1]).toBe(41000);
  });
  it("takes the unguarded choice when no replica passes both guards", () => {
    const c = cands(2);
    c.score[0] = 2; c.score[1] = 1;
    c.work[0] = 9000; c.work[1] = 9000;
    c.workBound = 5000;
    const p = new Pick();
    pick(c, 0.5, TIE, p);
    expect(p.index).toBe(0);
    expect(p.spilled).toBe(false);
  });
  it("keeps a heavy session where it is when the count guard's move would add more than the move limit of prefill", () => {
    const c = heavySession();
    const p = new Pick();
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(0);
    expect(p.spilled).toBe(false);
    // Without a limit the count guard moves it.
    pick(c, 0.25, TIE, p);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
  });
  it("still spreads a hot prefix that other replicas hold or that is cheap to copy", () => {
    const c = cands(3);
    c.score[0] = 3; c.score[1] = 2; c.score[2] = 1;
    c.load[0] = 12;
    c.workBound = 20000;
    // Replica 1 holds the prefix too: the move costs nothing.
    c.newTokens[0] = 256; c.newTokens[1] = 256; c.newTokens[2] = 2304;
    const p = new Pick();
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
    // Nobody else holds it, and copying it costs exactly the limit: still moved.
    c.newTokens[1] = 2304;
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
  });
  it("the move limit leaves the work guard alone, and needs it on", () => {
    const c = heavySession();
    // Replica 0's work is over the bound: the session moves however long it is.
    c.work[0] = 30000;
    const p = new Pick();
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
    // Work guard off (work weight 0): the count guard alone keeps the loads even.
    c.work[0] = 3000;
    c.workBound = Infinity;
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(true);
  });
  it("under the move limit the count guard still picks among what fits, the work guard's choice being over the cap", () => {
    const c = cands(4);
    c.score[0] = 4; c.score[1] = 3; c.score[2] = 2; c.score[3] = 1;
    // 0 is over the work bound; 1, the work guard's choice, is over the count cap and holds the session.
    c.work[0] = 30000; c.workBound = 20000;
    c.load[1] = 12;
    c.newTokens[0] = 100; c.newTokens[1] = 300; c.newTokens[2] = 9000; c.newTokens[3] = 9000;
    const p = new Pick();
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(1);
    expect(p.preferred).toBe(0);
    expect(p.spilled).toBe(true);
    c.newTokens[2] = 1000;
    pick(c, 0.25, TIE, p, 2048);
    expect(p.index).toBe(2);
  });
  it("charges a replica for the prompt tokens it would copy that another candidate holds, never for tokens all would prefill", () => {
    const c = cands(3);
    const p = new WorkParams();
    expect(p.evictionReuse).toBe(1); // on by default
    for (let k = 0; k < 3; k++) c.cacheReuse[k] = 1; // what each evicts is always asked for again
    c.matched[0] = 64; // 1024 tokens of the 2000
    c.matched[1] = 16; // 256 tokens
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[0]).toBe(0);
    expect(c.copyMs[1]).toBeCloseTo(0.228 * (1024 - 256));
    expect(c.copyMs[2]).toBeCloseTo(0.228 * 1024);
    // The charge is not work: the guard's loads are unchanged.
    expect(c.work[2]).toBe(2000);
    // A unique prompt: every candidate prefills all of it, nobody is charged.
    c.matched[0] = 0; c.matched[1] = 0;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    for (let k = 0; k < 3; k++) expect(c.copyMs[k]).toBe(0);
    // evictionReuse scales it; 0 turns it off.
    c.matched[0] = 64;
    p.evictionReuse = 2;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(2 * 0.228 * 1024);
    p.evictionReuse = 0;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[1]).toBe(0);
    // A long copy is charged in full: 40,000 held tokens cost 40,000 tokens of prefill.
    p.evictionReuse = 1;
    c.matched[0] = 2500; c.matched[1] = 0;
    predictWork(c, p, 41000, 16, 41000, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(0.228 * 40000);
  });
  it("charges a copy only as often as what the replica would evict is asked for again", () => {
    const c = copyCase(0.3); // most of a replica's worth, one holder: no copy is needed
    const p = new WorkParams();
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(0.25 * 0.228 * 1024);
    expect(c.copyMs[2]).toBe(0);
    // A floor (the picker's 1) charges every copy in full whatever the estimate reads.
    p.evictionReuseFloor = 1;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(0.228 * 1024);
    expect(c.copyMs[2]).toBeCloseTo(0.228 * 1024);
  });
  it("credits the copy's prefill where the prefix's demand needs another holder, and charges what it evicts as often as that comes back", () => {
    const c = copyCase(1); // every request finds it held: three replicas' worth, one holder
    const p = new WorkParams();
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[0]).toBe(0);
    expect(c.copyMs[1]).toBeCloseTo((0.25 - 1) * 0.228 * 1024);
    expect(c.copyMs[2]).toBeCloseTo(-0.228 * 1024);
    // The replica of cold tails is priced as if it held the prefix.
    expect(c.ttftMs[2] + c.copyMs[2]).toBeCloseTo(c.ttftMs[0]);
    // A floor (the picker's 1) charges the evictions in full whatever the estimate reads: the copy is priced at this request's TTFT alone.
    p.evictionReuseFloor = 1;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(0);
    expect(c.copyMs[2]).toBeCloseTo(0);
    // Two holders of three replicas' worth: a third is still needed; of less than two replicas' worth, not.
    p.evictionReuseFloor = 0;
    c.matched[1] = 64;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[2]).toBeCloseTo(-0.228 * 1024);
    // Not needed: no credit, only the evictions (here all in reuse).
    c.demandShare = 0.6;
    c.cacheReuse[2] = 1;
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.copyMs[2]).toBeCloseTo(0.228 * 1024);
  });
  it("keeps a request on the replica holding its prompt unless the queue saved is worth the copy and what it evicts", () => {
    // Replica 0 holds 1500 of 1600 prompt tokens and has 2000 queued; replica 1 is idle and holds none.
    const c = cands(2);
    const p = new WorkParams();
    c.matched[0] = 1500 / 4; // 4 tokens per block
    c.cacheReuse[1] = 1;
    c.queued[0] = 2000;
    c.totalBlocks = 400;
    const w = new Weights();
    p.evictionReuse = 0;
    predictWork(c, p, 1600, 4, 1600, 0.5, true);
    weightedScore(c, w, false);
    // TTFT alone: 2100 tokens ahead on 0 against 1600 on 1, so the prompt start is copied to 1.
    expect(c.score[1]).toBeGreaterThan(c.score[0]);
    p.evictionReuse = 1;
    predictWork(c, p, 1600, 4, 1600, 0.5, true);
    weightedScore(c, w, false);
    expect(c.score[0]).toBeGreaterThan(c.score[1]);
    // A queue longer than the copy and its re-prefill together (2 x 1500 tokens) still moves it.
    c.queued[0] = 3600;
    predictWork(c, p, 1600, 4, 1600, 0.5, true);
    weightedScore(c, w, false);
    expect(c.score[1]).toBeGreaterThan(c.score[0]);
  });
  it("keeps a long conversation on its holder behind a queue shorter than the whole copy and its re-prefill", () => {
    // Replica 0 holds 30,000 of a 31,000-token prompt behind 35,000 queued; replica 1 is idle and holds none.
    const c = cands(2);
    const p = new WorkParams();
    c.matched[0] = 30000 / 16;
    c.cacheReuse[1] = 1;
    c.queued[0] = 35000;
    c.totalBlocks = 31000 / 16;
    const w = new Weights();
    predictWork(c, p, 31000, 16, 31000, 0.5, true);
    weightedScore(c, w, false);
    // Copying saves 5,000 tokens of queue (1.1 s) and costs 30,000 of prefill again: it stays.
    expect(c.ttftMs[1]).toBeLessThan(c.ttftMs[0]);
    expect(c.score[0]).toBeGreaterThan(c.score[1]);
    // Behind a queue longer than the copy's cost it moves.
    c.queued[0] = 70000;
    predictWork(c, p, 31000, 16, 31000, 0.5, true);
    weightedScore(c, w, false);
    expect(c.score[1]).toBeGreaterThan(c.score[0]);
  });
  it("charges a copy the holder's unseen progress where a gateway of a fleet reads the prefix's demand, which a gateway alone would take for a call to spread", () => {
    // Replica 0 holds 2048 of a 2304-token prompt and prefills another request of it (queued, sent by
    // another gateway: this one never sent there); replicas 1-15 are idle. The prefix was found held by
    // 2 of this gateway's last 12.8 requests: 2.5 replicas' worth of 16, between one and two deviations past its holder.
    const c = cands(16);
    const p = new WorkParams();
    c.matched[0] = 2048 / 16;
    c.queued[0] = 2304;
    c.totalBlocks = 2304 / 16;
    for (let k = 0; k < 16; k++) c.sincePlacedMs[k] = Infinity;
    c.demandShare = 2 / 12.8;
    c.demandRequests = 12.8;
    c.fleetGateways = 1;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    // Alone, the demand reads as more than the holder serves: the idle replica prefills it all at once.
    expect(c.copyMs[1]).toBe(0);
    expect(c.ttftMs[1] + c.copyMs[1]).toBeLessThan(c.ttftMs[0] + c.copyMs[0]);
    // One of four gateways: its count is too thin to say so; the copy pays the chunk the holder may have prefilled.
    c.fleetGateways = 4;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(p.prefillTimePerTokenMs * p.chunkTokens);
    expect(c.ttftMs[1] + c.copyMs[1]).toBeGreaterThan(c.ttftMs[0] + c.copyMs[0]);
  });
  it("scores unique prompts on predicted TTFT alone, as without the charge", () => {
    const c = cands(3);
    const p = new WorkParams();
    c.queued[0] = 3000; c.queued[1] = 500; c.queued[2] = 900;
    predictWork(c, p, 800, 16, 800, 0.5, true);
    workScorer(c, c.scratch);
    const fastest = c.ttftMs[1];
    for (let k = 0; k < 3; k++) expect(c.scratch[k]).toBeCloseTo(fastest / c.ttftMs[k]);
  });
  it("work decides by default: the fastest predicted replica wins over the other scorers' favourite", () => {
    const c = cands(2);
    c.totalBlocks = 10;
    // Prefix, queue and KV favour 1; the predicted TTFT favours 0 by 10%.
    c.matched[1] = 10; c.waiting[0] = 50; c.kvUsage[0] = 0.9;
    c.ttftMs[0] = 100; c.ttftMs[1] = 110;
    weightedScore(c, new Weights(), true);
    expect(c.score[0]).toBeGreaterThan(c.score[1]);
  });
});
