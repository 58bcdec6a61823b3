// How long a replica's cache keeps untouched content (prefix/cacheTurnover.ts),
// and the shared index taking an entry untouched for longer as evicted
// (prefix/prefixLocator.ts), on as-pect's stand-in for shared data.
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { CacheTurnover } from "../../assembly/prefix/cacheTurnover";
import { PrefixLocator } from "../../assembly/prefix/prefixLocator";
import { Candidates } from "../../assembly/scheduling/candidates";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { allCandidates, replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000"];

describe("CacheTurnover", () => {
  it("is the capacity over the rate the gateway writes there, once a window of writes is seen", () => {
    const c = new CacheTurnover();
    expect(c.seconds(0, 100000)).toBe(Infinity);
    c.observe(0, 0, 0);
    c.observe(0, 5000, 5); // under a window: no rate yet
    expect(c.seconds(0, 100000)).toBe(Infinity);
    c.observe(0, 10000, 10); // 1000 tokens/s
    expect(c.seconds(0, 100000)).toBe(100);
    c.observe(0, 40000, 20); // 3000 tokens/s, averaged with the last: 2000
    expect(c.seconds(0, 100000)).toBe(50);
    expect(c.seconds(1, 100000)).toBe(Infinity);
    expect(c.seconds(-1, 100000)).toBe(Infinity);
  });

  it("starts a new window when the counts go back (a worker VM's row left), and forgets a replica that left", () => {
    const c = new CacheTurnover();
    c.observe(3, 50000, 0);
    c.observe(3, 60000, 10);
    expect(c.seconds(3, 10000)).toBe(10);
    c.observe(3, 20000, 15); // restarted: no sample from it
    expect(c.seconds(3, 10000)).toBe(10);
    c.observe(3, 30000, 25); // 1000 tokens/s, averaged with 1000
    expect(c.seconds(3, 10000)).toBe(10);
    c.forget(3);
    expect(c.seconds(3, 10000)).toBe(Infinity);
  });
});

function config(): PluginConfig {
  const cfg = new PluginConfig();
  cfg.indexEntries = 4096;
  cfg.maxBlocks = 256;
  return cfg;
}

const DOC = "a long shared document that one worker VM places and another reads ".repeat(20);

/** Matches DOC + `tail` at `nowS`, the gateway having written `written` tokens to each replica by then. */
function matchAt(p: PrefixLocator, t: ReplicaTable, c: Candidates, tail: string, nowS: u32, written: f64): void {
  const b = String.UTF8.encode('{"model":"m","prompt":"' + DOC + tail + '"}');
  expect(p.hash(changetype<usize>(b), <usize>b.byteLength, false)).toBe(true);
  for (let k = 0; k < c.n; k++) c.written[k] = written;
  p.match(t, c, true, nowS);
}

describe("the shared index's entries", () => {
  it("read as evicted once untouched for longer than the replica's turnover, unless a request touched them", () => {
    // 100k tokens of cache written at 1000 tokens/s: a turnover of 100 s.
    const t = replicaTable(A, 100000);
    const c = allCandidates(t);
    const placer = new PrefixLocator(config(), new RouterMetrics(), 1);
    const reader = new PrefixLocator(config(), new RouterMetrics(), 2);
    placer.resize(new ReplicaTable(), t);
    reader.resize(new ReplicaTable(), t);
    matchAt(placer, t, c, "first question", 5, 5000);
    placer.record(t, c, 1, 1);
    matchAt(reader, t, c, "second question", 6, 6000);
    matchAt(reader, t, c, "second question", 16, 16000);
    const held = c.matched[1];
    expect(held).toBeGreaterThan(0);
    // 95 s after the placement: still held.
    matchAt(reader, t, c, "second question", 100, 100000);
    expect(c.matched[1]).toBe(held);
    expect(c.formerMatched[1]).toBe(0);
    // 145 s after it, with nothing touching it: evicted.
    matchAt(reader, t, c, "second question", 150, 150000);
    expect(c.matched[1]).toBe(0);
    expect(reader.anyMatch).toBe(false);
    // The replica stays the prefix's former home, which prices a copy elsewhere (workModel.ts).
    expect(c.formerMatched[1]).toBe(held);
    expect(c.formerMatched[0]).toBe(0);
    // A request with no prompt to match (routed on load alone) leaves no former home behind.
    reader.matchRequest(t, c, false, true, 151);
    expect(c.formerMatched[1]).toBe(0);

    // A request routed there touches the deepest checkpoint it holds: another 100 s later it still reads as held.
    const again = new PrefixLocator(config(), new RouterMetrics(), 3);
    again.resize(new ReplicaTable(), t);
    matchAt(placer, t, c, "third question", 120, 120000);
    placer.record(t, c, 1, 1);
    matchAt(again, t, c, "fourth question", 121, 121000);
    matchAt(again, t, c, "fourth question", 131, 131000);
    matchAt(again, t, c, "fourth question", 200, 200000);
    expect(c.matched[1]).toBe(held);
  });
});
