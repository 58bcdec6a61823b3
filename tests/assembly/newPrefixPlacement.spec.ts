// A prompt no replica holds any of, or holds less than half of, goes, among
// idle candidates of near-equal predicted cost, to the one given the least
// content (scheduling/picker.ts);
// a replica's filled cache counts as in reuse until requests show otherwise,
// and one never filled as evicting nothing (prefix/cacheReuse.ts).
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { Candidates } from "../../assembly/scheduling/candidates";
import { Pick, pick } from "../../assembly/scheduling/picker";
import { CacheReuse } from "../../assembly/prefix/cacheReuse";
import { WorkParams, predictWork } from "../../assembly/scheduling/workModel";
import { allCandidates, replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"];

/**
 * A new prompt of 2000 tokens, nothing queued anywhere; candidate 0 of the
 * highest rendezvous weight and cheapest by a decode step's difference,
 * candidate 2 given the least content.
 */
function newPrompt(): Candidates {
  const c = allCandidates(replicaTable(A, 100000));
  for (let i = 0; i < 3; i++) {
    c.newTokens[i] = 2000;
    c.work[i] = 2000;
    c.rendezvous[i] = <u64>(3 - i);
    c.ttftMs[i] = 500 + <f64>i;
    c.score[i] = 1000 - <f64>i;
    c.workTerm[i] = c.score[i] - 10;
  }
  c.written[0] = 30000; c.written[1] = 20000; c.written[2] = 10000;
  c.nearMs = 47;
  c.newPrefix = true;
  return c;
}

function chosen(c: Candidates): i32 {
  const p = new Pick();
  pick(c, 0.5, 1e-9, p, 2048);
  return p.index;
}

describe("placing a prompt no replica holds", () => {
  it("takes the near-equal candidate given the least content over the rendezvous favourite", () => {
    expect(chosen(newPrompt())).toBe(2);
  });
  it("orders candidates given equal content by rendezvous weight", () => {
    const c = newPrompt();
    c.written[1] = 10000;
    expect(chosen(c)).toBe(1);
  });
  it("leaves out a candidate whose predicted cost is not near the choice's", () => {
    const c = newPrompt();
    c.ttftMs[2] = 600;
    expect(chosen(c)).toBe(1);
  });
  it("counts the copy charge in the cost", () => {
    const c = newPrompt();
    c.copyMs[2] = 100;
    expect(chosen(c)).toBe(1);
  });
  it("leaves out a candidate the count guard passes over", () => {
    const c = newPrompt();
    c.load[2] = 40;
    expect(chosen(c)).toBe(1);
  });
  it("goes back to the prompt's former home within the home band, whatever content and the other scorers say", () => {
    const c = newPrompt();
    c.homeBandMs = 117;
    c.formerMatched[0] = 64;
    c.ttftMs[0] = 600; // its other requests' decode steps: out of the near band, within the home band
    c.score[0] = 900;
    c.workTerm[0] = c.score[0] - 200; // the other scorers put it far below
    expect(chosen(c)).toBe(0);
    // Past the home band (a queued prefill's worth): the least content again.
    c.ttftMs[0] = 700;
    expect(chosen(c)).toBe(2);
    // With prefill queued there: not a home to go back to.
    c.ttftMs[0] = 600;
    c.queued[0] = 512;
    expect(chosen(c)).toBe(2);
  });
  it("keeps the rendezvous order for a prompt some replica holds", () => {
    const c = newPrompt();
    c.newPrefix = false;
    expect(chosen(c)).toBe(0);
  });
  it("places a prompt held for less than half like a new one: among the replicas holding that part, the least content", () => {
    const c = newPrompt();
    c.newPrefix = false;
    c.mostlyNew = true;
    expect(chosen(c)).toBe(2);
  });
});

describe("a prompt held for less than half", () => {
  it("is marked by the work model where the best holder would prefill more than half of it", () => {
    const c = allCandidates(replicaTable(A, 100000));
    const p = new WorkParams();
    // A 40000-token prompt of 2500 blocks; candidate 0 holds its 4096-token preamble (256 blocks).
    c.matched[0] = 256;
    predictWork(c, p, 40000, 16, 40000, 0.5, true);
    expect(c.mostlyNew).toBe(true);
    // Holding 20016 tokens of it (1251 blocks): more than half is held.
    c.matched[0] = 1251;
    predictWork(c, p, 40000, 16, 40000, 0.5, true);
    expect(c.mostlyNew).toBe(false);
    // Held nowhere: a new prefix, not this.
    c.matched[0] = 0;
    predictWork(c, p, 40000, 16, 40000, 0.5, true);
    expect(c.mostlyNew).toBe(false);
  });
});

describe("the cache-reuse estimate", () => {
  it("reads a cache nothing was written to as evicting nothing", () => {
    const r = new CacheReuse();
    expect(r.estimate(0, 10000, 0)).toBe(0.0);
  });
  it("reads a cache filled once, with no request back yet, as nearly all in reuse", () => {
    const r = new CacheReuse();
    for (let i = 0; i < 4; i++) r.note(0, <u64>(i + 1), 0, 2560, 10000);
    expect(r.estimate(0, 10000, 10240)).toBeGreaterThan(0.8);
  });
  it("scales the estimate by how much of the cache was written", () => {
    const r = new CacheReuse();
    r.note(0, 1, 0, 2500, 10000);
    const quarter = r.estimate(0, 10000, 2500);
    expect(quarter).toBeGreaterThan(0.2);
    expect(quarter).toBeLessThanOrEqual(0.25);
  });
  it("falls as unique content is written with nothing coming back", () => {
    const r = new CacheReuse();
    for (let i = 0; i < 64; i++) r.note(0, <u64>(i + 1), 0, 2560, 100000);
    expect(r.estimate(0, 100000, 64 * 2560)).toBeLessThan(0.2);
  });
  it("starts a replica given the slot again from a full share", () => {
    const r = new CacheReuse();
    for (let i = 0; i < 64; i++) r.note(1, <u64>(i + 1), 0, 2560, 100000);
    r.forget(1);
    expect(r.estimate(1, 100000, 100000)).toBe(1.0);
  });
});
