import { DecisionRecord, Scorer } from "../../assembly/decisionRecord";
import { Candidates } from "../../assembly/scheduling/candidates";
import { ReplicaTable } from "../../assembly/state/replicaTable";

function setup(n: i32): ReplicaTable {
  const t = new ReplicaTable();
  t.version = 7;
  for (let i = 0; i < n; i++) t.add("10.0.0." + (i + 1).toString() + ":8000", true, true, 0, 0, 0, 0, 0);
  return t;
}

function cands(n: i32): Candidates {
  const c = new Candidates();
  c.n = n;
  for (let k = 0; k < n; k++) {
    c.replica[k] = k;
    c.load[k] = <f64>k;
    c.score[k] = 1.0 / 3.0;
    c.scratch[k] = <f64>k / <f64>n;
  }
  return c;
}

describe("decision records", () => {
  it("samples one request in N, and none at 0", () => {
    const r = new DecisionRecord();
    let sampled = 0;
    for (let i = 0; i < 9; i++) if (r.sample(3)) sampled++;
    expect(sampled).toBe(3);
    expect(r.sample(0)).toBe(false);
    expect(r.active).toBe(false);
  });

  it("lists only the scorers that ran, with their weights, clamped to [0, 1], 3 decimals", () => {
    const r = new DecisionRecord();
    const t = setup(2);
    const c = cands(2);
    r.sample(1);
    c.scratch[1] = 1.5;
    c.ttftMs[0] = 152.25;
    c.ttftMs[1] = 1870.6666;
    c.memoryWaitMs[1] = 1244.4444;
    r.column(Scorer.Queue, c, 2);
    r.guard(9, 1, true, false, true, true, false);
    const json = r.json(t, c, 0, 1, 3, 10);
    expect(json).toBe(
      '{"event":"prefix_router.decision","stateVersion":7,"chosen":"10.0.0.1:8000","runnerUp":"10.0.0.2:8000",' +
      '"blocks":{"matched":3,"total":10},"weights":{"queue":2},"guard":{"cap":9,"workBound":null,"spilled":true,"passedOver":"10.0.0.2:8000"},' +
      '"newPrefix":false,"mostlyNew":true,"metricsTrusted":true,"session":false,"candidates":[' +
      '{"replica":"10.0.0.1:8000","matchedBlocks":0,"load":0,"overCap":false,"workTokens":0,"overWork":false,"predictedTtftMs":152.25,"memoryWaitMs":0,"score":0.333,"scores":{"queue":0}},' +
      '{"replica":"10.0.0.2:8000","matchedBlocks":0,"load":1,"overCap":false,"workTokens":0,"overWork":false,"predictedTtftMs":1870.667,"memoryWaitMs":1244.444,"score":0.333,"scores":{"queue":1}}]}');
  });

  it("gives each candidate's predicted work against the work guard's bound", () => {
    const r = new DecisionRecord();
    const t = setup(2);
    const c = cands(2);
    r.sample(1);
    c.work[0] = 1500.25;
    c.work[1] = 6000;
    c.workBound = 4096.5;
    r.column(Scorer.Queue, c, 1);
    r.guard(8, 1, true, false, false, true, false);
    const json = r.json(t, c, 0, 1, 0, 10);
    expect(json.includes('"guard":{"cap":8,"workBound":4096.5,"spilled":true')).toBe(true);
    expect(json.includes('"load":0,"overCap":false,"workTokens":1500.25,"overWork":false,')).toBe(true);
    expect(json.includes('"load":1,"overCap":false,"workTokens":6000,"overWork":true,')).toBe(true);
  });

  it("the header lists at most 16 candidates, then how many more; no runner-up is '-'", () => {
    const r = new DecisionRecord();
    const t = setup(20);
    const c = cands(20);
    r.sample(1);
    r.column(Scorer.Prefix, c, 3);
    r.guard(8, 0, false, true, false, false, false);
    const h = r.header(t, c, 0, -1, 0, 4);
    expect(h.startsWith("chosen=10.0.0.1:8000; runnerUp=-; blocks=0/4; cap=8; spilled=0; weights=prefix:3; 10.0.0.1:8000=score:0.333,load:0,prefix:0; ")).toBe(true);
    expect(h.includes("10.0.0.16:8000=")).toBe(true);
    expect(h.includes("10.0.0.17:8000=")).toBe(false);
    expect(h.endsWith("; more=4")).toBe(true);
    expect(r.json(t, c, 0, -1, 0, 4).includes('"runnerUp":null')).toBe(true);
  });
});
