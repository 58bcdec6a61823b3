// The prefix demand shared by a gateway's worker VMs (prefix/prefixDemand.ts,
// SharedDemand), on as-pect's stand-in for proxy-wasm shared data
// (as-pect.config.js), which lasts the whole file: each test counts its own
// prefixes, in buckets (the top 16 bits of a hash) no other test uses.
import { hostAlloc, setSharedRaw } from "../../assembly/abi/hostCalls";
import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { PrefixDemand, SharedDemand } from "../../assembly/prefix/prefixDemand";
import { PrefixLocator } from "../../assembly/prefix/prefixLocator";
import { Candidates } from "../../assembly/scheduling/candidates";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { allCandidates, replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

/** A hash in bucket `bucket` (its top 16 bits), told apart by `n`. */
function inBucket(bucket: u64, n: u64): u64 {
  return (bucket << 48) | (n + 1);
}

/** Writes `bytes` as the shared demand bucket of hash `h`, as a foreign writer could. */
function writeBucket(h: u64, bytes: Uint8Array): void {
  let hex = (<u32>(h >> 48)).toString(16);
  while (hex.length < 4) hex = "0" + hex;
  const key = String.UTF8.encode("prefix_router.demand." + hex);
  setSharedRaw(changetype<usize>(key), <usize>key.byteLength, bytes.dataStart, <usize>bytes.length, 0);
}

/** One bucket entry: [u64 hash][f32 count][u32 stamp]. */
function entry(h: u64, count: f32, stamp: u32): Uint8Array {
  const b = new Uint8Array(16);
  store<u64>(b.dataStart, h);
  store<f32>(b.dataStart, count, 8);
  store<u32>(b.dataStart, stamp, 12);
  return b;
}

describe("SharedDemand", () => {
  it("adds up two worker VMs' counts: each reads the share and evidence one VM counting every request would", () => {
    const vms = [new SharedDemand(), new SharedDemand()];
    const alone = new PrefixDemand();
    const hot = inBucket(1, 1);
    const other = inBucket(1, 2);
    let shared: f64 = 0;
    let own: f64 = 0;
    // The gateway's requests alternate between the VMs; a third find the hot prefix held, a third another.
    for (let i: u32 = 0; i < 900; i++) {
      const key = i % 3 == 0 ? hot : other;
      const held = i % 3 != 2;
      shared = vms[i % 2].observe(key, held, i);
      own = alone.observe(key, held);
      if (i % 3 == 0) expect(shared).toBeCloseTo(own, 4);
      expect(vms[i % 2].requests).toBeCloseTo(alone.requests, 6);
    }
    // 900 requests: (1 - 2^(-900/256)) x 370.
    expect(vms[1].requests).toBeCloseTo(337.5, 0);
    // Each VM alone would read the hot prefix's third from half the evidence; shared, both read the gateway's.
    expect(vms[0].observe(hot, true, 900)).toBeCloseTo(alone.observe(hot, true), 3);
  });

  it("decays by the gateway's clock: 256 requests routed on other VMs halve a count", () => {
    const d = new SharedDemand();
    const k = inBucket(2, 1);
    // From the gateway's first request: its share is read from all the requests (not since its first).
    for (let i: u32 = 0; i < 4; i++) d.observe(k, true, i);
    const before = d.observe(k, true, 4) * d.requests; // 5 at clock 5
    expect(before).toBeCloseTo(5, 1);
    const after = d.observe(k, true, 4 + 256) * d.requests;
    expect(after).toBeCloseTo(before / 2 + 1, 2);
    // A clock read lower (a VM's row gone from the sum) does not run it back.
    const again = d.observe(k, true, 10) * d.requests;
    expect(again).toBeCloseTo(after + 1, 2);
  });

  it("reads a prefix first sent on a busy gateway from the requests since its first, on any VM", () => {
    const vms = [new SharedDemand(), new SharedDemand()];
    const alone = new PrefixDemand();
    const hot = inBucket(15, 1);
    for (let i: u32 = 0; i < 3000; i++) {
      vms[i % 2].observe(0, false, i);
      alone.observe(0, false);
    }
    let shared: f64 = 0;
    let own: f64 = 0;
    for (let i: u32 = 3000; i < 3009; i++) {
      shared = vms[i % 2].observe(hot, true, i);
      own = alone.observe(hot, true);
    }
    // Its first and 8 more: all of the 8 since its first, less a half, as one VM counting every request reads.
    expect(shared).toBeCloseTo(0.937, 2);
    expect(vms[0].evidence).toBeCloseTo(8, 1);
    expect(own).toBeCloseTo(shared, 4);
    expect(alone.evidence).toBeCloseTo(8, 1);
    // Then every other request: toward a half, as one VM reads it.
    for (let i: u32 = 3009; i < 3209; i++) {
      const held = i % 2 == 0;
      shared = vms[i % 2].observe(held ? hot : 0, held, i);
      own = alone.observe(held ? hot : 0, held);
    }
    expect(shared).toBeCloseTo(own, 3);
    expect(vms[0].evidence).toBeCloseTo(alone.evidence, 2);
  });

  it("reads a prefix counted for longer than its clock's 16 bits span as an old one", () => {
    const d = new SharedDemand();
    const k = inBucket(16, 1);
    let share: f64 = 0;
    // A quarter of the gateway's requests from its first on, past two wraps of 2^16.
    for (let i: u32 = 0; i < 140000; i += 4) {
      share = d.observe(k, true, i);
      if (i > 4000) {
        expect(share).toBeGreaterThan(0.2);
        expect(share).toBeLessThan(0.3);
        expect(d.evidence).toBeGreaterThan(360);
      }
    }
  });

  it("counts a request that finds nothing held only in the evidence, which starts at 1 and grows to about 370", () => {
    const d = new SharedDemand();
    expect(d.observe(inBucket(3, 1), false, 0)).toBe(0);
    expect(d.requests).toBeCloseTo(1, 6);
    expect(d.observe(inBucket(3, 1), false, 255)).toBe(0);
    expect(d.requests).toBeCloseTo(185, 0);
    d.observe(0, false, 1 << 20);
    expect(d.requests).toBeCloseTo(369.83, 1);
    // Past the clock's wrap the evidence stays whole: no share is read from nothing.
    d.observe(0, false, U32.MAX_VALUE);
    expect(d.requests).toBeCloseTo(369.83, 1);
    expect(d.observe(inBucket(3, 2), true, 0)).toBeCloseTo(1 / 369.83, 4);
  });

  it("reads any bucket content safely: short, long, not a number, infinite, negative, stamped ahead", () => {
    const d = new SharedDemand();
    const clock: u32 = 5000;
    const requests: f64 = d.observe(0, false, clock) == 0 ? d.requests : 0;
    // Shorter than an entry: an empty bucket.
    const short = inBucket(4, 1);
    writeBucket(short, new Uint8Array(7));
    expect(d.observe(short, true, clock)).toBeCloseTo(1 / requests, 6);
    // Longer than a bucket: its first entries, the prefix's among them.
    const long = inBucket(5, 1);
    const bytes = new Uint8Array(100);
    bytes.set(entry(long, 9, clock + 1), 16);
    writeBucket(long, bytes);
    expect(d.observe(long, true, clock)).toBeCloseTo(10 / requests, 4);
    // Counts that are not a positive number read as none; one too large, as every request.
    const cases: f32[] = [NaN, -Infinity, -3, 0];
    for (let i = 0; i < cases.length; i++) {
      const h = inBucket(6 + i, 1);
      writeBucket(h, entry(h, cases[i], clock));
      expect(d.observe(h, true, clock)).toBeCloseTo(1 / requests, 6);
    }
    const huge: f32[] = [Infinity, 1e30, 400];
    for (let i = 0; i < huge.length; i++) {
      const e = new SharedDemand();
      const h = inBucket(10 + i, 1);
      writeBucket(h, entry(h, huge[i], clock));
      expect(e.observe(h, true, clock)).toBe(1);
      // What it wrote back is a count within the evidence, which decays as any other.
      expect(e.observe(h, true, clock + 256)).toBeLessThan(0.51 + 1 / requests);
    }
    // A stamp far ahead of the clock (a foreign write, not a VM's skew): taken as not yet decayed.
    const ahead = inBucket(13, 1);
    writeBucket(ahead, entry(ahead, 3, clock + 100000));
    expect(d.observe(ahead, true, clock)).toBeCloseTo(4 / requests, 4);
  });

  it("gives a full bucket's longest uncounted entry to a new prefix", () => {
    const d = new SharedDemand();
    for (let i: u32 = 0; i < 4; i++) d.observe(inBucket(14, i), true, 2000 + i);
    d.observe(inBucket(14, 0), true, 2010);
    d.observe(inBucket(14, 9), true, 2011);
    // Entry 1 was counted longest ago: gone; entry 2 is kept.
    expect(d.observe(inBucket(14, 1), true, 2012) * d.requests).toBeCloseTo(1, 6);
    expect(d.observe(inBucket(14, 9), true, 2013) * d.requests).toBeGreaterThan(1.9);
  });
});

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"];

function locator(vm: u32, t: ReplicaTable): PrefixLocator {
  const cfg = new PluginConfig();
  cfg.indexEntries = 65536;
  const p = new PrefixLocator(cfg, new RouterMetrics(), vm);
  p.resize(new ReplicaTable(), t);
  return p;
}

function matchDoc(p: PrefixLocator, t: ReplicaTable, c: Candidates, doc: string, fleet: bool, routed: u32): void {
  const b = String.UTF8.encode('{"model":"m","prompt":"' + doc + '"}');
  expect(p.hash(changetype<usize>(b), <usize>b.byteLength, false)).toBe(true);
  p.matchRequest(t, c, true, fleet, 100, routed);
}

describe("PrefixLocator's prefix demand", () => {
  it("with no other worker VM is this VM's own, whatever the shared counts say", () => {
    const t = replicaTable(A, 1000000);
    const c = allCandidates(t);
    const doc = "a shared document of the demand spec, long enough for several blocks of prompt text. ".repeat(8);
    const placer = locator(1, t);
    matchDoc(placer, t, c, doc, true, 0);
    placer.record(t, c, 0, 0);
    // Another worker VM of the gateway draws the document 50 times: the gateway's share is high.
    const other = locator(2, t);
    for (let i: u32 = 0; i < 50; i++) matchDoc(other, t, c, doc, true, 1 + i);
    expect(c.demandShare).toBeGreaterThan(0.9);
    // A VM alone (fleet false), however its gateway's clock reads: exactly PrefixDemand over its own requests.
    const alone = locator(3, t);
    const ref = new PrefixDemand();
    for (let i = 0; i < 20; i++) {
      alone.matchRequest(t, c, false, false, 100, 5000);
      expect(c.demandShare).toBe(ref.observe(0, false));
    }
    matchDoc(alone, t, c, doc, false, 5000);
    expect(c.demandShare).toBe(ref.observe(42, true));
    expect(c.demandRequests).toBe(ref.requests);
    // The same VM with others routing reads the gateway's.
    matchDoc(alone, t, c, doc, true, 52);
    expect(c.demandShare).toBeGreaterThan(0.9);
  });
});
