import { PrefixDemand } from "../../assembly/prefix/prefixDemand";
import { Candidates } from "../../assembly/scheduling/candidates";
import { WorkParams, predictWork } from "../../assembly/scheduling/workModel";
import { workScorer } from "../../assembly/scorers/workScorer";

describe("prefix demand", () => {
  it("gives a prefix every request finds held a share near 1, one of 32 groups about 1/32", () => {
    const d = new PrefixDemand();
    let share: f64 = 0;
    for (let i = 0; i < 1000; i++) share = d.observe(7, true);
    expect(share).toBeGreaterThan(0.99);
    const g = new PrefixDemand();
    for (let i = 0; i < 3200; i++) share = g.observe(<u64>(100 + i % 32), true);
    expect(share).toBeGreaterThan(0.8 / 32);
    expect(share).toBeLessThan(1.2 / 32);
  });
  it("counts a request that finds nothing held only in the total, and a history reached once as one request", () => {
    const d = new PrefixDemand();
    for (let i = 0; i < 100; i++) expect(d.observe(0, false)).toBe(0);
    // A conversation's next turn finds its history, a prefix no request found held before: one of about 100.
    const share = d.observe(12345, true);
    expect(share).toBeGreaterThan(0.5 / 100);
    expect(share).toBeLessThan(1.5 / 100);
    // Found again, twice that.
    expect(d.observe(12345, true)).toBeCloseTo(2 * share, 3);
  });
  it("keeps its shares through the rescaling of its weights", () => {
    const d = new PrefixDemand();
    let share: f64 = 0;
    // 2^64 of growth is 16,384 requests: past it several times.
    for (let i = 0; i < 60000; i++) share = d.observe(<u64>(100 + i % 4), true);
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.3);
    expect(isFinite(share)).toBe(true);
  });
  it("counts the requests its shares are read from: all of a few, about 370 at length (a half-life of 256)", () => {
    const d = new PrefixDemand();
    d.observe(0, false);
    // Its second request finds a prefix held: a half, from two requests.
    expect(d.observe(99, true)).toBeCloseTo(0.5, 2);
    expect(d.requests).toBeCloseTo(2, 1);
    for (let i = 0; i < 20000; i++) d.observe(0, false);
    expect(d.requests).toBeGreaterThan(365);
    expect(d.requests).toBeLessThan(375);
  });
  it("reads a prefix first sent on a busy gateway from the requests since its first, once there are a few", () => {
    const d = busyWith32Groups();
    expect(d.evidence).toBeGreaterThan(360);
    // A new system prompt every request sends from now on. Its first makes it a prefix to count;
    // until 4 more, its share is the moving one, a few of 370.
    let share = d.observe(7, true);
    for (let i = 0; i < 3; i++) share = d.observe(7, true);
    expect(share).toBeLessThan(0.03);
    expect(d.evidence).toBeGreaterThan(360);
    // From 4 on, every request since its first, counted half a request short: 3.5 of 4.
    share = d.observe(7, true);
    expect(share).toBeCloseTo(0.874, 2);
    expect(d.evidence).toBeCloseTo(4, 1);
    for (let i = 0; i < 4; i++) share = d.observe(7, true);
    expect(share).toBeCloseTo(0.937, 2);
    expect(d.evidence).toBeCloseTo(7.92, 1);
    // Then a third of 90 more: 8 + 30 of the 98 since its first, less a half.
    for (let i = 0; i < 90; i++) {
      const s = d.observe(i % 3 == 0 ? 7 : <u64>(100 + i % 32), true);
      if (i % 3 == 0) share = s;
    }
    expect(share).toBeGreaterThan(0.36);
    expect(share).toBeLessThan(0.42);
    const g = new PrefixDemand();
    for (let i = 0; i < 2000; i++) g.observe(<u64>(100 + i % 32), true);
    let evidence: f64 = 0;
    for (let i = 0; i < 31; i++) {
      const s = g.observe(i % 3 == 0 ? 7 : <u64>(100 + i % 32), true);
      if (i % 3 == 0) { share = s; evidence = g.evidence; }
    }
    // Its first, then 10 of the 30 requests since, less a half.
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.38);
    expect(evidence).toBeCloseTo(29, 0);
  });
  it("counts a new prefix half a request short, so 2 of 8 requests do not pass for more than a sixteenth's share", () => {
    const p = new WorkParams();
    for (let found = 2; found <= 3; found++) {
      const d = busyWith32Groups();
      // A new group's first request, then `found` of the 8 since (the last ones).
      d.observe(55, true);
      let share: f64 = 0;
      for (let i = 0; i < 8; i++) {
        const held = i >= 8 - found;
        const s = d.observe(held ? 55 : <u64>(100 + i % 32), true);
        if (held) share = s;
      }
      // One holder of 16: 2 of 8 is 8.5% likely from a sixteenth's share, 3 of 8 1.1%.
      const c = hotPrompt(16);
      c.demandShare = share;
      c.demandRequests = d.evidence;
      predictWork(c, p, 2304, 16, 2304, 0.5, true);
      expect(c.copyNeeded).toBe(found == 3);
    }
  });
  it("reads a new group of 32 as about 1/32 from its later requests, not the share its first request would add", () => {
    const d = new PrefixDemand();
    for (let i = 0; i < 2000; i++) d.observe(0, false);
    const share = shareFoundEvery(d, 55, 32, 640);
    expect(share).toBeGreaterThan(0.8 / 32);
    expect(share).toBeLessThan(1.2 / 32);
  });
  it("keeps its young shares through the rescaling of its weights", () => {
    const d = new PrefixDemand();
    // Past 2^64 of growth between a prefix's first request and its share's reading.
    for (let i = 0; i < 16000; i++) d.observe(0, false);
    const share = shareFoundEvery(d, 9, 2, 800);
    expect(share).toBeGreaterThan(0.45);
    expect(share).toBeLessThan(0.55);
    expect(d.evidence).toBeGreaterThan(360);
  });
  it("forgets a prefix that stops being sent", () => {
    const d = new PrefixDemand();
    for (let i = 0; i < 500; i++) d.observe(7, true);
    for (let i = 0; i < 2000; i++) d.observe(<u64>(1000 + i), true);
    expect(d.observe(7, true)).toBeLessThan(0.01);
  });
});

/** A gateway in service: 2000 requests of 32 groups (keys 100-131), each prefix's share read from all the recent requests. */
function busyWith32Groups(): PrefixDemand {
  const d = new PrefixDemand();
  for (let i = 0; i < 2000; i++) d.observe(<u64>(100 + i % 32), true);
  return d;
}

/** `n` requests, every `every`-th finding prefix `key` held and the rest nothing: the share read the last time it was found. */
function shareFoundEvery(d: PrefixDemand, key: u64, every: i32, n: i32): f64 {
  let share: f64 = 0;
  for (let i = 0; i < n; i++) {
    const held = i % every == 0;
    const s = d.observe(held ? key : 0, held);
    if (held) share = s;
  }
  return share;
}

/** n idle candidates, replica 0 holding 2048 of a 2304-token prompt with one hit queued ahead. */
function hotPrompt(n: i32): Candidates {
  const c = new Candidates();
  c.n = n;
  for (let i = 0; i < n; i++) { c.replica[i] = i; c.matched[i] = 0; c.queued[i] = 0; c.cacheReuse[i] = 0; }
  c.matched[0] = 128;
  c.queued[0] = 256;
  return c;
}

describe("work model: spreading a prefix its demand needs on more replicas", () => {
  it("spreads on a share only past what chance reads from few requests", () => {
    const p = new WorkParams();
    const c = hotPrompt(16);
    // A tenth of the requests: 1.6 replicas' worth, one holder. Read from 20 requests that is two of
    // them, as likely from a group's share of a sixteenth; from 2000 it is not.
    c.demandShare = 0.1;
    c.demandRequests = 20;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyNeeded).toBe(false);
    c.demandRequests = 2000;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyNeeded).toBe(true);
  });
  it("credits an idle replica the copy of a prefix whose demand keeps more replicas busy than hold it", () => {
    const p = new WorkParams();
    const c = hotPrompt(16);
    c.demandShare = 1; // one system prompt for all: sixteen replicas' worth, one holder
    c.demandRequests = 300;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyMs[0]).toBe(0);
    // A replica of cold tails (cacheReuse 0): the copy's prefill is credited whole.
    expect(c.copyMs[1]).toBeCloseTo(-0.228 * 2048);
    workScorer(c, c.scratch);
    // This request would start sooner on the holder; the copy is taken for the requests that follow.
    expect(c.ttftMs[0]).toBeLessThan(c.ttftMs[1]);
    expect(c.scratch[1]).toBeGreaterThan(c.scratch[0]);
    // The count guard may copy it (the router then passes it a move limit of one chunk).
    expect(c.copyNeeded).toBe(true);
  });
  it("charges copies their evictions once the holders cover the demand, and nothing for a prompt nobody holds", () => {
    const p = new WorkParams();
    const c = hotPrompt(16);
    c.demandShare = 1.0 / 32; // one of 32 groups: half a replica's worth, one holder
    c.demandRequests = 300;
    for (let k = 0; k < 16; k++) c.cacheReuse[k] = 1; // every cache holds prompt starts in reuse
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    // Copies are charged what they evict, and the count guard may not make one.
    expect(c.copyMs[1]).toBeCloseTo(0.228 * 2048);
    expect(c.copyNeeded).toBe(false);
    workScorer(c, c.scratch);
    expect(c.scratch[0]).toBeGreaterThan(c.scratch[1]);
    // Fifteen holders of nearly sixteen replicas' worth: the last replica gets it once the share is
    // read from enough requests to tell it from fifteen's (300), not from 20.
    for (let k = 0; k < 15; k++) c.matched[k] = 128;
    c.demandShare = 0.99;
    c.demandRequests = 20;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyMs[15]).toBeCloseTo(0.228 * 2048);
    c.demandRequests = 300;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    // Credited: what it evicts (all in reuse here) against the prefill it saves the requests that follow.
    expect(c.copyMs[15]).toBeCloseTo(0);
    expect(c.copyNeeded).toBe(true);
    const u = hotPrompt(4);
    u.matched[0] = 0;
    u.demandShare = 0;
    u.demandRequests = 300;
    predictWork(u, p, 2304, 16, 2304, 0.5, true);
    for (let k = 0; k < 4; k++) expect(u.copyMs[k]).toBe(0);
  });
});

/** Replica 0 holds the group's prefix and still prefills the group's first prompt (2304 tokens), sent `sinceMs` ago; the others are idle. */
function inFlightHolding(n: i32, sinceMs: f64): Candidates {
  const c = hotPrompt(n);
  c.queued[0] = 2304;
  for (let k = 0; k < n; k++) c.sincePlacedMs[k] = Infinity;
  c.sincePlacedMs[0] = sinceMs;
  c.demandShare = 1.0 / 32;
  c.demandRequests = 300;
  return c;
}

describe("work model: the holder's unseen progress", () => {
  it("charges a copy what the holder has prefilled unseen, so the group's next request follows its first", () => {
    const p = new WorkParams();
    const fresh = inFlightHolding(16, 0);
    predictWork(fresh, p, 2304, 16, 2304, 0.5, true);
    // Just sent: nothing unseen, and the copy looks faster (the queued prompt counts whole).
    expect(fresh.copyMs[1]).toBe(0);
    expect(fresh.ttftMs[1] + fresh.copyMs[1]).toBeLessThan(fresh.ttftMs[0] + fresh.copyMs[0]);
    const c = inFlightHolding(16, 300);
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    // 300 ms of a T4's prefill: 300 / 0.228 tokens, charged back at 0.228 ms each.
    expect(c.copyMs[1]).toBeCloseTo(300, 6);
    expect(c.copyMs[0]).toBe(0);
    expect(c.ttftMs[0] + c.copyMs[0]).toBeLessThan(c.ttftMs[1] + c.copyMs[1]);
  });
  it("caps the charge at one chunk and at the copy's prefill, and takes off the copy target's own unseen progress", () => {
    const p = new WorkParams();
    const c = inFlightHolding(16, 10000);
    c.queued[2] = 512;
    c.sincePlacedMs[2] = 57; // 250 tokens of its own queue done unseen
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    // The holder's progress stops at a chunk (2048 tokens), which is also the prefill a copy adds.
    expect(c.copyMs[1]).toBeCloseTo(0.228 * 2048, 6);
    expect(c.copyMs[2]).toBeCloseTo(0.228 * 2048 - 57, 6);
  });
  it("charges nothing where the demand passes the holders by more than chance's one deviation", () => {
    const p = new WorkParams();
    const c = inFlightHolding(16, 300);
    // 2.4 replicas' worth on one holder, read from a gateway's first 20 requests: within DEMAND_Z's
    // two deviations (0.87 replicas each) of chance, so no copy is needed, but past one.
    c.demandShare = 0.15;
    c.demandRequests = 20;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyNeeded).toBe(false);
    expect(c.copyMs[1]).toBe(0);
    // One of 32 groups from as few requests: the holder's progress is charged.
    c.demandShare = 1.0 / 32;
    predictWork(c, p, 2304, 16, 2304, 0.5, true);
    expect(c.copyMs[1]).toBeCloseTo(300, 6);
  });
});
