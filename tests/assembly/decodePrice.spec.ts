// What a replica's decode work weighs in the work model: each output token
// still to decode at what its sequence adds to the replica's decode step, or
// at the saturated batch's price where its KV cache is full
// (workModel.ts decodePriceShare), as the candidate filter prices it.
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { CandidateFilter } from "../../assembly/scheduling/candidateFilter";
import { Candidates } from "../../assembly/scheduling/candidates";
import { Decision } from "../../assembly/scheduling/decision";
import { WorkParams, decodePriceShare } from "../../assembly/scheduling/workModel";
import { GatewayBlob } from "../../assembly/state/gatewayBlob";
import { InflightCounters } from "../../assembly/state/inflightCounters";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"];
const NOW_NS: u64 = 5000000000;
/** One decoding request's decode work: 256 output tokens at the saturated price. */
const DECODE_WORK: f64 = 3.8 * 256;
/** The default model's marginal step below saturation over its saturated step per sequence: (1/3) / ((27 + 49/3) / 50). */
const BELOW_SATURATION: f64 = (1.0 / 3.0) / ((27 + 49.0 / 3.0) / 50);

/** `n` requests decoding on replica `i` of `t`, counted by `vm`. */
function decodeOn(t: ReplicaTable, vm: InflightCounters, i: i32, n: i32): void {
  for (let k = 0; k < n; k++) {
    const d = new Decision();
    d.replica = i;
    d.address = A[i];
    d.tableVersion = t.version;
    d.newTokens = 100;
    d.decodeWork = DECODE_WORK;
    vm.committed(t, d, NOW_NS, 0, 0);
    vm.responseStarted(t, d, 5, 5000);
  }
}

describe("decode work's price", () => {
  it("is what a sequence adds to the decode step: a third of a ms below saturation, rising towards the saturated step's share past it", () => {
    const p = new WorkParams();
    expect(decodePriceShare(p, 0, 0)).toBeCloseTo(BELOW_SATURATION);
    expect(decodePriceShare(p, 16, 0)).toBeCloseTo(BELOW_SATURATION);
    expect(decodePriceShare(p, 48, 0)).toBeCloseTo(BELOW_SATURATION);
    // The 50th sequence fills the batch: no jump there.
    expect(decodePriceShare(p, 49, 0)).toBeCloseTo(BELOW_SATURATION);
    // Past it, (step(n) - 27 ms) / n over the saturated 0.867 ms: 1 - 27 / (n x 0.867).
    const saturatedPerSeq = (27 + 49.0 / 3.0) / 50;
    expect(decodePriceShare(p, 99, 0)).toBeCloseTo(1 - 27 / (100 * saturatedPerSeq));
    expect(decodePriceShare(p, 199, 0)).toBeCloseTo(1 - 27 / (200 * saturatedPerSeq));
    expect(decodePriceShare(p, 99, 0)).toBeGreaterThan(decodePriceShare(p, 60, 0));
    expect(decodePriceShare(p, 60, 0)).toBeGreaterThan(BELOW_SATURATION);
    expect(decodePriceShare(p, 100000, 0)).toBeLessThan(1);
    expect(decodePriceShare(p, 100000, 0)).toBeGreaterThan(0.99);
  });
  it("is the saturated price where the KV cache would not hold one more of the sequences it runs", () => {
    const p = new WorkParams();
    // 4 sequences in 85% of the cache: a fifth takes 21%, more than is left.
    expect(decodePriceShare(p, 4, 0.85)).toBe(1);
    // In 75%, a fifth fits.
    expect(decodePriceShare(p, 4, 0.75)).toBeCloseTo(BELOW_SATURATION);
    expect(decodePriceShare(p, 16, 0.5)).toBeCloseTo(BELOW_SATURATION);
  });
  it("is the whole configured price where the model's decode step does not grow more slowly below saturation", () => {
    const p = new WorkParams();
    p.interTokenLatencyMs = 0;
    expect(decodePriceShare(p, 4, 0)).toBe(1);
    p.decodeTimePerSeqMs = 0;
    expect(decodePriceShare(p, 4, 0)).toBe(1);
    // A step that does not grow with the batch below saturation: decode work is free there.
    const q = new WorkParams();
    q.decodeTimePerSeqMs = 0;
    expect(decodePriceShare(q, 4, 0)).toBe(0);
  });
  it("is what the candidate filter gives each replica's decode work, by its own batch", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    decodeOn(t, vm, 0, 16);
    decodeOn(t, vm, 1, 60);
    decodeOn(t, vm, 2, 4);
    t.kvUsage[2] = 0.9;
    const filter = new CandidateFilter(new PluginConfig(), new RouterMetrics(), vm);
    const c = new Candidates();
    expect(filter.filter(t, c, false, NOW_NS, null)).toBe(true);
    expect(c.n).toBe(3);
    expect(c.decoding[0]).toBe(16);
    expect(c.decodeWork[0]).toBeCloseTo(16 * DECODE_WORK * BELOW_SATURATION);
    // 60 decoding and this one: each adds (61 x 0.867 - 27) / 61 ms to a lone sequence's step, of a saturated step's 0.867 ms each.
    expect(c.decodeWork[1]).toBeCloseTo(60 * DECODE_WORK * (1 - 27 / (61 * ((27 + 49.0 / 3.0) / 50))));
    expect(c.decodeWork[2]).toBeCloseTo(4 * DECODE_WORK);
  });
});
