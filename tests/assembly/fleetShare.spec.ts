// The gateway fleet's shares (assembly/scheduling/fleetShare.ts) and the
// picker's preference for them among near-equal replicas.
import { Candidates } from "../../assembly/scheduling/candidates";
import { SHARE_BAND_CHUNKS, markShares } from "../../assembly/scheduling/fleetShare";
import { Pick, pick } from "../../assembly/scheduling/picker";
import { WorkParams } from "../../assembly/scheduling/workModel";
import { allCandidates, replicaTable } from "./support/replicas";

function addresses(n: i32): Array<string> {
  const a = new Array<string>();
  for (let i = 0; i < n; i++) a.push("10.9.0." + (i + 1).toString() + ":8000");
  return a;
}

/** Candidate indexes in the order of their share rank. */
function order(c: Candidates): Array<i32> {
  const out = new Array<i32>();
  for (let r = 0; out.length < c.n; r++) {
    for (let k = 0; k < c.n; k++) if (c.shareRank[k] == r) out.push(c.replica[k]);
    if (r > 1000000) break;
  }
  return out;
}

describe("fleet shares", () => {
  it("ranks each replica by its share, counted from this gateway's own", () => {
    const t = replicaTable(addresses(8), 100000);
    t.fleetIndex = 1;
    t.fleetCount = 4;
    const c = allCandidates(t);
    const p = new WorkParams();
    markShares(t, c, p, true);
    expect(c.shareBandMs).toBeCloseTo(SHARE_BAND_CHUNKS * p.chunkTokens * p.prefillTimePerTokenMs);
    // Own share: replicas 2, 3; then the next gateways' shares: 4, 5; 6, 7; 0, 1.
    for (let k = 0; k < 8; k++) expect(c.shareRank[k]).toBe([3, 3, 0, 0, 1, 1, 2, 2][k]);
  });
  it("gives every gateway a different own share while there are as many replicas", () => {
    const t = replicaTable(addresses(16), 100000);
    t.fleetCount = 4;
    const firsts = new Set<i32>();
    for (let i = 0; i < 4; i++) {
      t.fleetIndex = i;
      const c = allCandidates(t);
      markShares(t, c, new WorkParams(), true);
      firsts.add(order(c)[0]);
    }
    expect(firsts.size).toBe(4);
  });
  it("with more gateways than replicas, each still has a home replica and a full order", () => {
    const t = replicaTable(addresses(4), 100000);
    t.fleetIndex = 5;
    t.fleetCount = 16;
    const c = allCandidates(t);
    markShares(t, c, new WorkParams(), true);
    const o = order(c);
    expect(o.length).toBe(4);
    expect(o[0]).toBe(1);
    expect(c.shareRank[1]).toBe(0);
    expect(c.shareRank[0]).toBeGreaterThan(0);
  });
  it("is off for a gateway alone and for a request that does not qualify", () => {
    const t = replicaTable(addresses(8), 100000);
    const c = allCandidates(t);
    markShares(t, c, new WorkParams(), true);
    expect(c.shareBandMs).toBe(0);
    t.fleetCount = 2;
    markShares(t, c, new WorkParams(), false);
    expect(c.shareBandMs).toBe(0);
  });
});

function four(): Candidates {
  const c = new Candidates();
  c.n = 4;
  for (let i = 0; i < 4; i++) {
    c.replica[i] = i;
    c.load[i] = 0;
    c.score[i] = 1000;
    c.ttftMs[i] = 600;
    c.work[i] = 1000;
    c.rendezvous[i] = <u64>(i + 1);
    c.shareRank[i] = 3 - i;
  }
  c.workBound = 5000;
  return c;
}

describe("picker with fleet shares", () => {
  it("without a band, rendezvous among the tied; with one, the first of the share order", () => {
    const c = four();
    const p = new Pick();
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(3);
    c.shareRank[3] = 2; c.shareRank[2] = 3; c.shareRank[1] = 0; c.shareRank[0] = 1;
    c.shareBandMs = 100;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(1);
    expect(p.spilled).toBe(false);
  });
  it("within the nearest share, the best score, then rendezvous; the choice stays when it is in that share", () => {
    const c = four();
    c.shareRank[0] = 0; c.shareRank[1] = 0; c.shareRank[2] = 1; c.shareRank[3] = 1;
    c.shareBandMs = 100;
    const p = new Pick();
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(1);
    c.score[0] = 1000.5;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(0);
    c.score[0] = 1000;
    c.shareRank[3] = 0;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(3);
  });
  it("leaves out a replica predicted slower than the band, or over the work guard, but not one over the count guard", () => {
    const c = four();
    c.shareRank[3] = 3; c.shareRank[2] = 2; c.shareRank[1] = 1; c.shareRank[0] = 0;
    c.shareBandMs = 100;
    c.ttftMs[0] = 701;
    c.work[1] = 6000;
    c.load[2] = 50;
    const p = new Pick();
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(2);
    c.ttftMs[0] = 700;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(0);
  });
  it("for a new prefix, within the nearest share, the replica given the least content, one with nothing queued first", () => {
    const c = four();
    c.shareRank[0] = 0; c.shareRank[1] = 0; c.shareRank[2] = 0; c.shareRank[3] = 1;
    c.shareBandMs = 100;
    c.newPrefix = true;
    c.nearMs = 47;
    c.written[0] = 9000; c.written[1] = 5000; c.written[2] = 7000; c.written[3] = 0;
    const p = new Pick();
    // Replica 3 (least content of all) is the choice but not of this gateway's share: 1 has the least content in it.
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(1);
    c.queued[1] = 100;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(2);
    // Equal content: the better-ranked (score, then rendezvous).
    c.queued[1] = 0;
    c.written[2] = 5000;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(2);
    // A former home of the prompt within the band stays, whatever its share.
    c.written[2] = 7000;
    c.formerMatched[3] = 64;
    c.homeBandMs = 117;
    c.score[3] = c.score[0] + 1;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(3);
    c.formerMatched[3] = 0;
    // Not a new prefix: the score order, as before.
    c.newPrefix = false;
    c.written[2] = 7000;
    pick(c, 0.25, 0.2, p);
    expect(p.index).toBe(2);
  });
});
