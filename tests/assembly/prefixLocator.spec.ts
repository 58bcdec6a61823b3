import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { PrefixLocator } from "../../assembly/prefix/prefixLocator";
import { Candidates } from "../../assembly/scheduling/candidates";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { allCandidates, replicaTable } from "./support/replicas";

const SYSTEM = "You are a careful assistant. Answer briefly, cite sources, and never invent facts or numbers. ";

function config(): PluginConfig {
  const cfg = new PluginConfig();
  cfg.indexEntries = 4096;
  cfg.blockChars = 64;
  cfg.maxBlocks = 64;
  return cfg;
}

function table(addresses: Array<string>): ReplicaTable {
  return replicaTable(addresses, 100000);
}

const candidates = allCandidates;

function body(prompt: string): ArrayBuffer {
  return String.UTF8.encode('{"model":"m","prompt":"' + prompt + '"}');
}

/** Hashes the prompt and, when there is one, matches it against the candidates. */
function match(p: PrefixLocator, t: ReplicaTable, c: Candidates, prompt: string): bool {
  const b = body(prompt);
  if (!p.hash(changetype<usize>(b), <usize>b.byteLength, false)) return false;
  p.match(t, c, false, 0);
  return true;
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"];

describe("PrefixLocator", () => {
  it("finds a prompt where it was recorded, and only there", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = table(A);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const prompt = SYSTEM + SYSTEM + "question one";
    expect(match(p, t, c, prompt)).toBe(true);
    expect(c.totalBlocks).toBe(3);
    expect(p.anyMatch).toBe(false);
    expect(p.record(t, c, 1, 1)).toBe(0);

    expect(match(p, t, c, prompt)).toBe(true);
    expect(p.anyMatch).toBe(true);
    expect(c.matched[0]).toBe(0);
    expect(c.matched[1]).toBe(3);
    expect(c.matched[2]).toBe(0);
    expect(p.record(t, c, 1, 1)).toBe(3);
  });

  it("matches the shared leading blocks of a longer prompt", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = table(A);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    match(p, t, c, SYSTEM + SYSTEM);
    p.record(t, c, 2, 2);
    expect(match(p, t, c, SYSTEM + SYSTEM + SYSTEM + "and more")).toBe(true);
    expect(c.totalBlocks).toBe(4);
    expect(c.matched[2]).toBe(2);
  });

  it("estimates the share of a replica's cache held by prompt content in reuse, for the copy charge", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = replicaTable(A, 20000);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const long = SYSTEM.repeat(43); // about 1000 tokens
    // Ten rounds: enough for the sums to forget where they start (a filled cache read as all in reuse).
    for (let round = 0; round < 10; round++) {
      for (let g = 0; g < 15; g++) {
        // Replica 0: one prompt start among unique questions, 300 tokens written a request.
        match(p, t, c, long + "question " + (round * 15 + g).toString());
        p.record(t, c, 0, 0, 300);
        // Replica 1: fifteen prompt starts in turn, 300 tokens written a request: more than half of its cache.
        match(p, t, c, "group " + g.toString() + " " + long);
        p.record(t, c, 1, 1, 300);
      }
    }
    // What the gateway's VMs wrote there (the candidate filter fills it from the gateway blob).
    c.written[0] = 45000; c.written[1] = 45000; c.written[2] = 0;
    match(p, t, c, SYSTEM);
    // Both caches were written more than once over. Replica 0: one start of 768 tokens (held to the
    // deepest checkpoint), back after 300 written: about 5% of the cache, over the quarter that counts as all.
    expect(c.cacheReuse[0]).toBeGreaterThan(0.1);
    expect(c.cacheReuse[0]).toBeLessThan(0.4);
    // 15 x 768 of 20,000 tokens: more than a quarter.
    expect(c.cacheReuse[1]).toBe(1);
    // Nothing written: a copy there evicts nothing.
    expect(c.cacheReuse[2]).toBe(0);
    // Replica 1 leaves; a replica given its slot starts from an empty cache.
    const u = replicaTable(["10.0.0.1:8000", "10.0.0.3:8000", "10.0.0.4:8000"], 20000);
    p.resize(t, u);
    const d = candidates(u);
    d.written[0] = 45000;
    match(p, u, d, SYSTEM);
    expect(d.cacheReuse[0]).toBeLessThan(0.4);
    expect(d.cacheReuse[2]).toBe(0);
  });

  it("has nothing to match without a prompt", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = table(A);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    expect(p.hash(0, 0, false)).toBe(false);
    const b = String.UTF8.encode('{"model":"m"}');
    expect(p.hash(changetype<usize>(b), <usize>b.byteLength, false)).toBe(false);
    expect(p.anyMatch).toBe(false);
  });

  it("is complete once the prompt fills the hasher, whatever follows", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    expect(p.promptBytes).toBe(64 * 64);
    let long = "";
    while (long.length < 5000) long += SYSTEM;
    const b = body(long);
    expect(p.hash(changetype<usize>(b), 3000, true)).toBe(true);
    expect(p.complete).toBe(false);
    expect(p.hash(changetype<usize>(b), 4200, true)).toBe(true);
    expect(p.complete).toBe(true);
  });

  it("forgets what a replica held when it leaves, and keeps the others' slots", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = table(A);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const prompt = SYSTEM + SYSTEM;
    match(p, t, c, prompt);
    p.record(t, c, 0, 0);
    const other = SYSTEM + "another question entirely, long enough for a block";
    match(p, t, c, other);
    p.record(t, c, 1, 1);

    const without = table([A[1], A[2]]);
    p.resize(t, without);
    expect(without.slot[0]).toBe(t.slot[1]);
    const back = table(A);
    p.resize(without, back);
    const c2 = candidates(back);
    match(p, back, c2, prompt);
    expect(c2.matched[0]).toBe(0);
    match(p, back, c2, other);
    expect(c2.matched[1]).toBe(2);
  });

  it("remembers of a replica's cache only this worker VM's share of the writes there", () => {
    // 2000 tokens of cache: an index quota of 125 blocks, so of 125 one-block prompts.
    const remembered = (share: f64): i32 => {
      const p = new PrefixLocator(config(), new RouterMetrics(), 0);
      const t = replicaTable(A, 2000);
      p.resize(new ReplicaTable(), t);
      const c = candidates(t);
      for (let i = 0; i < 200; i++) {
        match(p, t, c, "prompt " + i.toString() + " " + "x".repeat(60));
        p.record(t, c, 0, 0, 100, share);
      }
      let held = 0;
      for (let i = 0; i < 200; i++) {
        match(p, t, c, "prompt " + i.toString() + " " + "x".repeat(60));
        if (c.matched[0] > 0) held++;
      }
      return held;
    };
    expect(remembered(1.0)).toBe(125);
    expect(remembered(0.75)).toBe(93);
    // Never below the floor (64 blocks), however small the share.
    expect(remembered(0.0)).toBe(64);
  });
});

/** Session `i`'s prompt at turn `turn` (1: the first): the shared system prompt, its question, then a block of history a turn. */
function turnPrompt(i: i32, turn: i32): string {
  let s = SYSTEM.repeat(3) + "question " + i.toString() + ". ";
  for (let k = 1; k < turn; k++) s += "answer " + k.toString() + " of session " + i.toString() + ", and the user's next question on it. ";
  return s;
}

describe("PrefixLocator: a prefix's demand", () => {
  it("reads a shared start's demand from every request that goes on past it, not only those that end there", () => {
    const p = new PrefixLocator(config(), new RouterMetrics(), 0);
    const t = table(A);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    // Four conversations on one system prompt, two on each of replicas 0 and 1; replica 2 idle.
    for (let turn = 1; turn <= 6; turn++) {
      for (let i = 0; i < 4; i++) {
        match(p, t, c, turnPrompt(i, turn));
        p.record(t, c, i % 2, i % 2);
      }
    }
    // A later turn finds its history on one replica and only the system prompt on the other: its
    // demand is its own conversation's, a quarter of the requests at most.
    match(p, t, c, turnPrompt(2, 7));
    expect(c.matched[0]).toBeGreaterThan(c.matched[1]);
    expect(c.demandShare).toBeLessThan(0.3);
    // A new conversation's first turn finds the system prompt, and no more, on both holders: every
    // request so far began with it, so its demand is nearly all of them (the first turns alone
    // that ended there are a fifth).
    match(p, t, c, turnPrompt(9, 1));
    expect(c.matched[0]).toBe(c.matched[1]);
    expect(c.matched[0]).toBeGreaterThan(0);
    expect(c.demandShare).toBeGreaterThan(0.9);
  });
});
