// Near-equal predictions go to the replica placed longest ago
// (scheduling/picker.ts), on placement times the worker VMs share through the
// gateway blob (state/gatewayBlob.ts, on as-pect's stand-in for shared data).
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { Candidates } from "../../assembly/scheduling/candidates";
import { Pick, pick } from "../../assembly/scheduling/picker";
import { NEAR_CHUNKS, WorkParams, predictWork } from "../../assembly/scheduling/workModel";
import { GatewayBlob, laterPlacement, msSincePlacement } from "../../assembly/state/gatewayBlob";
import { InflightCounters } from "../../assembly/state/inflightCounters";
import { allCandidates, replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"];

/**
 * Three candidates that would each prefill 2000 tokens, each with a prompt
 * queued, predicted within a few ms of each other; candidate 0 the best
 * scored and of the highest rendezvous weight, candidate 2 placed on longest ago.
 */
function nearEqual(): Candidates {
  const c = allCandidates(replicaTable(A, 100000));
  for (let i = 0; i < 3; i++) {
    c.newTokens[i] = 2000;
    c.queued[i] = 1000;
    c.work[i] = 3000;
    c.rendezvous[i] = <u64>(3 - i);
    c.score[i] = 1000 - <f64>i;
    // The other scorers agree (10 each); the work term makes the difference.
    c.workTerm[i] = c.score[i] - 10;
  }
  c.ttftMs[0] = 500; c.ttftMs[1] = 502; c.ttftMs[2] = 504;
  c.sinceAnyPlacedMs[0] = 100; c.sinceAnyPlacedMs[1] = 200; c.sinceAnyPlacedMs[2] = 300;
  c.nearMs = 47;
  return c;
}

function chosen(c: Candidates): i32 {
  const p = new Pick();
  pick(c, 0.5, 1e-9, p, 2048);
  return p.index;
}

describe("placement order among near-equal predictions", () => {
  it("takes the replica placed longest ago over the score's and rendezvous' favourite", () => {
    expect(chosen(nearEqual())).toBe(2);
  });
  it("counts a replica never placed on as placed longest ago", () => {
    const c = nearEqual();
    c.sinceAnyPlacedMs[1] = Infinity;
    expect(chosen(c)).toBe(1);
  });
  it("orders replicas placed at the same time by rendezvous weight", () => {
    const c = nearEqual();
    c.sinceAnyPlacedMs[0] = Infinity; c.sinceAnyPlacedMs[1] = Infinity; c.sinceAnyPlacedMs[2] = Infinity;
    expect(chosen(c)).toBe(0);
  });
  it("leaves a replica with nothing queued where its prediction ranks it: that prediction is exact", () => {
    const c = nearEqual();
    c.queued[2] = 0;
    expect(chosen(c)).toBe(1);
    c.queued[1] = 0;
    expect(chosen(c)).toBe(0);
  });
  it("leaves a replica out that the other scorers rank lower by more than the band", () => {
    const c = nearEqual();
    // The work term is 990 everywhere; the other scorers give 10, 9 and 8 (queue, KV, affinities).
    for (let i = 0; i < 3; i++) c.workTerm[i] = 990;
    expect(chosen(c)).toBe(0);
    const p = new Pick();
    pick(c, 0.5, 1.5, p, 2048);
    expect(p.index).toBe(1);
    pick(c, 0.5, 2.5, p, 2048);
    expect(p.index).toBe(2);
  });
  it("leaves a prediction more than nearMs slower out", () => {
    const c = nearEqual();
    c.ttftMs[2] = 548;
    expect(chosen(c)).toBe(1);
  });
  it("keeps a request on the replica holding more of its prompt, however long ago another was placed on", () => {
    const c = nearEqual();
    // Candidate 0 holds 10 tokens of the prompt: its prediction is barely lower, but it is the holder.
    c.newTokens[0] = 1990;
    c.work[0] = 2990;
    c.ttftMs[0] = 499;
    c.sinceAnyPlacedMs[0] = 0;
    expect(chosen(c)).toBe(0);
  });
  it("keeps the score and rendezvous order when nearMs is 0", () => {
    const c = nearEqual();
    c.nearMs = 0;
    expect(chosen(c)).toBe(0);
  });
  it("never takes a replica the guards pass over", () => {
    const c = nearEqual();
    c.workBound = 3000;
    c.work[2] = 4000;
    expect(chosen(c)).toBe(1);
  });
  it("is a tenth of a chunk's prefill while the prediction decides, off otherwise", () => {
    const c = nearEqual();
    const p = new WorkParams();
    predictWork(c, p, 2000, 16, 2000, 0.5, true);
    expect(c.nearMs).toBe(NEAR_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs);
    predictWork(c, p, 2000, 16, 2000, 0.5, false);
    expect(c.nearMs).toBe(0);
  });
});

describe("placement times across worker VMs", () => {
  it("each VM reads the latest placement any VM of the gateway made", () => {
    const t = replicaTable(A, 100000);
    const vm1 = new InflightCounters(new GatewayBlob(true), 1);
    const vm2 = new InflightCounters(new GatewayBlob(true), 2);
    vm1.placed(t, 1, 5000);
    vm1.add(t, 1, 1, 0, 100, 0, 5);
    vm2.read(t, 5);
    expect(vm2.total.placedMs[0]).toBe(0);
    expect(vm2.total.placedMs[1]).toBe(5000);
    vm2.placed(t, 1, 7000);
    vm2.add(t, 1, 1, 0, 100, 0, 7);
    vm1.read(t, 7);
    expect(vm1.total.placedMs[1]).toBe(7000);
    // An older placement of this VM does not hide the other's later one.
    vm1.placed(t, 0, 6000);
    vm1.add(t, 0, 1, 0, 100, 0, 7);
    vm2.read(t, 7);
    expect(vm2.total.placedMs[0]).toBe(6000);
    expect(vm2.total.placedMs[1]).toBe(7000);
  });
  it("stamps a placement at clock 0 as 1, since 0 means never", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 3);
    vm.placed(t, 2, 0);
    expect(vm.own.placedMs[2]).toBe(1);
  });
  it("compares stamps across the 2^32 ms wrap", () => {
    expect(laterPlacement(0xffffff00, 5)).toBe(5);
    expect(laterPlacement(5, 0xffffff00)).toBe(5);
    expect(laterPlacement(0, 7)).toBe(7);
    expect(laterPlacement(7, 0)).toBe(7);
    expect(laterPlacement(9, 7)).toBe(9);
  });
  it("reads the time since a placement across the wrap, and a placement after the request's clock as just now", () => {
    expect(msSincePlacement(5000, 0)).toBe(Infinity);
    expect(msSincePlacement(5000, 4000)).toBe(1000);
    expect(msSincePlacement(5, 0xffffff00)).toBe(261);
    // Another worker VM placed a request 2 ms after this one read its clock: not 49 days ago.
    expect(msSincePlacement(5000, 5002)).toBe(0);
  });
});
