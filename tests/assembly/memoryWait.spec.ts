// The wait for KV memory in the work model's predicted TTFT
// (workModel.ts predictMemoryWait, through predictWork): a replica whose
// cache is full starts the next request only as a running one finishes.
import { Candidates } from "../../assembly/scheduling/candidates";
import { WorkParams, decodeStepMs, predictWork } from "../../assembly/scheduling/workModel";

/** 683 blocks of 16 tokens, bench:peers' sp-32x32 cache on 8 replicas. */
const CAPACITY: f64 = 683 * 16;
/** A 2304-token prompt whose first 2048 tokens (128 blocks) replica 0 holds; 256 output tokens. */
const PROMPT: f64 = 2304;
const OUTPUT: f64 = 256;

/** The work model's prediction for that request (`withMetrics`: the replicas' metrics can be trusted). */
function predict(c: Candidates, p: WorkParams, withMetrics: bool = true): void {
  predictWork(c, p, PROMPT, 16, PROMPT + 3.8 * OUTPUT, 0.5, true, OUTPUT, withMetrics);
}

/** Candidate `i`: replica i with `usage` of its cache in use, `running` and `waiting` in its engine, `inflight` sent by this gateway of which `decoding` decode. */
function replica(c: Candidates, i: i32, usage: f64, running: f64, waiting: f64, inflight: f64, decoding: f64): void {
  c.replica[i] = i;
  c.kvCapacityTokens[i] = CAPACITY;
  c.kvUsage[i] = usage;
  c.running[i] = running;
  c.waiting[i] = waiting;
  c.inflight[i] = inflight;
  c.decoding[i] = decoding;
}

/** Replica 0 holds the prompt's prefix with its cache full (9 running, 1 waiting); replicas 1 and 2 are half full with 4 running. */
function fullHolder(): Candidates {
  const c = new Candidates();
  c.n = 3;
  replica(c, 0, 1, 9, 1, 10, 9);
  replica(c, 1, 0.5, 4, 0, 4, 4);
  replica(c, 2, 0.5, 4, 0, 4, 4);
  c.matched[0] = 128;
  c.queued[0] = 256;
  return c;
}

describe("the wait for KV memory", () => {
  it("on a full cache is one finish per request in line and this one, a finish every output / running decode steps", () => {
    const c = fullHolder();
    const p = new WorkParams();
    predict(c, p);
    // 9 running + 1 waiting + this one, against the 9 the cache holds.
    expect(c.memoryWaitMs[0]).toBeCloseTo(2 * OUTPUT * decodeStepMs(p, 9) / 9);
    // Half full: the whole 2304-token prompt fits in the free half.
    expect(c.memoryWaitMs[1]).toBe(0);
    expect(c.memoryWaitMs[2]).toBe(0);
  });
  it("counts this gateway's requests sent since the scrape", () => {
    const c = fullHolder();
    const p = new WorkParams();
    c.inflight[0] = 13;
    predict(c, p);
    expect(c.memoryWaitMs[0]).toBeCloseTo(5 * OUTPUT * decodeStepMs(p, 9) / 9);
  });
  it("is none where the queued prompts and this one fit in the free part of the cache", () => {
    const c = fullHolder();
    const p = new WorkParams();
    // 10% free: 1093 tokens, more than the 256 queued and the 256 + one block this request prefills.
    c.kvUsage[0] = 0.9;
    predict(c, p);
    expect(c.memoryWaitMs[0]).toBe(0);
    // Where the cache's size is not known, the request count decides: 11 wanting against 10 held.
    c.kvCapacityTokens[0] = 0;
    predict(c, p);
    expect(c.memoryWaitMs[0]).toBeCloseTo(1 * OUTPUT * decodeStepMs(p, 9) / 9);
  });
  it("is none where every candidate is full: moving the request gains no room", () => {
    const c = fullHolder();
    const p = new WorkParams();
    for (let i = 1; i < 3; i++) { c.kvUsage[i] = 1; c.running[i] = 8; c.inflight[i] = 8; }
    predict(c, p);
    for (let i = 0; i < 3; i++) expect(c.memoryWaitMs[i]).toBe(0);
  });
  it("is none where fewer than a quarter of the candidates have room: the overflow would fill them at once", () => {
    const c = new Candidates();
    c.n = 5;
    replica(c, 0, 1, 9, 1, 10, 9);
    for (let i = 1; i < 4; i++) replica(c, i, 1, 8, 0, 8, 8);
    replica(c, 4, 0.5, 4, 0, 4, 4);
    c.matched[0] = 128;
    c.queued[0] = 256;
    const p = new WorkParams();
    // One of five has room.
    predict(c, p);
    for (let i = 0; i < 5; i++) expect(c.memoryWaitMs[i]).toBe(0);
    // Two of five: the full ones wait.
    replica(c, 3, 0.5, 4, 0, 4, 4);
    predict(c, p);
    expect(c.memoryWaitMs[0]).toBeCloseTo(2 * OUTPUT * decodeStepMs(p, 9) / 9);
    expect(c.memoryWaitMs[3]).toBe(0);
  });
  it("is none without trusted metrics", () => {
    const c = fullHolder();
    const p = new WorkParams();
    predict(c, p, false);
    for (let i = 0; i < 3; i++) expect(c.memoryWaitMs[i]).toBe(0);
  });
  it("moves a warm request off a full holder to a replica with room, in the predicted cost", () => {
    const c = fullHolder();
    const p = new WorkParams();
    predict(c, p);
    // Without the wait the holder's prefill of 256 queued + 256 new tokens beats a 2304-token prefill elsewhere.
    expect(c.ttftMs[0] - c.memoryWaitMs[0]).toBeLessThan(c.ttftMs[1]);
    expect(c.ttftMs[0] + c.copyMs[0]).toBeGreaterThan(c.ttftMs[1] + c.copyMs[1]);
  });
});
