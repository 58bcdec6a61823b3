// The gateway's shared checkpoint index and the shared search over it, on
// as-pect's stand-in for proxy-wasm shared data (as-pect.config.js).
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { checkpointDepth, checkpointIndex, checkpointsWithin, isCheckpoint } from "../../assembly/prefix/blockHasher";
import { MAX_SHARED_INSERTS, PrefixLocator } from "../../assembly/prefix/prefixLocator";
import { BUCKET_ENTRIES } from "../../assembly/prefix/sharedBucket";
import { SharedCheckpoints } from "../../assembly/prefix/sharedCheckpoints";
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

const A = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"];

function table(): ReplicaTable {
  return replicaTable(A, 1000000);
}

const candidates = allCandidates;

function config(): PluginConfig {
  const cfg = new PluginConfig();
  cfg.indexEntries = 65536;
  cfg.maxBlocks = 4096;
  return cfg;
}

/** `blocks` 64-byte blocks of prompt text, the same for the same seed. */
function prompt(seed: i32, blocks: i32): string {
  const parts = new Array<string>(blocks);
  for (let b = 0; b < blocks; b++) {
    const line = "block " + (seed * 100003 + b).toString() + " of a long shared document. ";
    parts[b] = (line + line + line).substring(0, 64);
  }
  return parts.join("");
}

/** Hashes `text` and matches it at `nowS`, as a worker VM of a gateway alone. */
function matchAt(p: PrefixLocator, t: ReplicaTable, c: Candidates, text: string, nowS: u32): void {
  const b = String.UTF8.encode('{"model":"m","prompt":"' + text + '"}');
  expect(p.hash(changetype<usize>(b), <usize>b.byteLength, false)).toBe(true);
  p.match(t, c, false, nowS);
}

function hashAndMatch(p: PrefixLocator, t: ReplicaTable, c: Candidates, text: string, fleet: bool): void {
  const b = String.UTF8.encode('{"model":"m","prompt":"' + text + '"}');
  expect(p.hash(changetype<usize>(b), <usize>b.byteLength, false)).toBe(true);
  p.match(t, c, fleet, 100);
}

describe("checkpoint depths", () => {
  it("are every block up to 16, then every 16th, in order", () => {
    let k = 0;
    for (let d = 1; d <= 5000; d++) {
      if (!isCheckpoint(d)) continue;
      expect(checkpointIndex(d)).toBe(k);
      expect(checkpointDepth(k)).toBe(d);
      k++;
      expect(checkpointsWithin(d)).toBe(k);
    }
    expect(checkpointsWithin(3750)).toBe(249); // 60k tokens: 16 dense, then 32..3744
    expect(checkpointsWithin(16384)).toBe(1039);
    expect(isCheckpoint(17)).toBe(false);
    expect(isCheckpoint(48)).toBe(true);
  });
});

describe("SharedCheckpoints", () => {
  it("finds the replicas a checkpoint was inserted for, and only for that hash", () => {
    const s = new SharedCheckpoints(true);
    const out = new StaticArray<u32>(BUCKET_ENTRIES);
    const h = inBucket(7, 1);
    expect(s.holders(h, out, 0)).toBe(0);
    expect(s.insert(h, 11, 5)).toBe(true);
    expect(s.insert(h, 12, 5)).toBe(true);
    expect(s.insert(inBucket(7, 2), 13, 5)).toBe(true);
    expect(s.holders(h, out, 0)).toBe(2);
    expect(out[0]).toBe(11);
    expect(out[1]).toBe(12);
    expect(s.holders(inBucket(8, 1), out, 0)).toBe(0);
  });

  it("gives a full bucket's least recently touched entry to a new one", () => {
    const s = new SharedCheckpoints(true);
    const out = new StaticArray<u32>(BUCKET_ENTRIES);
    for (let i: u32 = 0; i < 4; i++) s.insert(inBucket(9, i), 20 + i, 10 + i);
    // Touching entry 0 again makes entry 1 the oldest.
    s.insert(inBucket(9, 0), 20, 50);
    s.insert(inBucket(9, 4), 24, 60);
    expect(s.holders(inBucket(9, 1), out, 0)).toBe(0);
    for (let i: u32 = 0; i < 5; i++) {
      if (i == 1) continue;
      expect(s.holders(inBucket(9, i), out, 0)).toBe(1);
      expect(out[0]).toBe(20 + i);
    }
  });

  it("does nothing without shared data", () => {
    const s = new SharedCheckpoints(false);
    expect(s.insert(1, 1, 1)).toBe(false);
    expect(s.holders(1, new StaticArray<u32>(BUCKET_ENTRIES), 0)).toBe(0);
  });
});

describe("PrefixLocator with the shared index", () => {
  it("a worker VM finds, by binary search, how deep another placed a long prompt", () => {
    const t = table();
    const placer = new PrefixLocator(config(), new RouterMetrics(), 1);
    const reader = new PrefixLocator(config(), new RouterMetrics(), 2);
    placer.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const doc = prompt(1, 600); // 600 blocks: checkpoints to 592
    // The placer's first requests insert at most MAX_SHARED_INSERTS checkpoints each, shallowest first.
    let inserted = 0;
    for (let r = 0; r < 4; r++) {
      hashAndMatch(placer, t, c, doc, true);
      placer.record(t, c, 2, 2);
      inserted = placer.pendingPlacements;
    }
    expect(inserted).toBe(checkpointsWithin(600));
    reader.resize(new ReplicaTable(), t);
    hashAndMatch(reader, t, c, doc + " and a question", false);
    expect(reader.anyMatch).toBe(true);
    expect(c.matched[2]).toBe(592);
    expect(c.matched[0]).toBe(0);
    // A prompt sharing only the first 100 blocks is found to hold 96 (the deepest checkpoint within them).
    hashAndMatch(reader, t, c, doc.substring(0, 6400) + prompt(2, 50), false);
    expect(c.matched[2]).toBe(96);
  });

  it("shares a 64k-token prompt at its full depth with the first request, so the next turn on another worker VM is priced on it", () => {
    const t = table();
    const placer = new PrefixLocator(config(), new RouterMetrics(), 6);
    const reader = new PrefixLocator(config(), new RouterMetrics(), 7);
    placer.resize(new ReplicaTable(), t);
    reader.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const doc = prompt(5, 4000); // 64k tokens: checkpoints to 4000
    hashAndMatch(placer, t, c, doc, true);
    placer.record(t, c, 3, 3);
    expect(placer.pendingPlacements).toBe(checkpointsWithin(4000));
    hashAndMatch(reader, t, c, doc + " and the tool's answer", true);
    expect(c.matched[3]).toBe(4000);
  });

  it("inserts at most MAX_SHARED_INSERTS checkpoints a request, so a longer new prompt is completed by the next ones", () => {
    const t = table();
    const cfg = config();
    cfg.maxBlocks = 8192;
    const p = new PrefixLocator(cfg, new RouterMetrics(), 3);
    const q = new PrefixLocator(cfg, new RouterMetrics(), 4);
    p.resize(new ReplicaTable(), t);
    q.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const doc = prompt(3, 6000);
    expect(checkpointsWithin(6000)).toBeGreaterThan(MAX_SHARED_INSERTS);
    hashAndMatch(p, t, c, doc, true);
    p.record(t, c, 1, 1);
    expect(p.pendingPlacements).toBe(MAX_SHARED_INSERTS);
    hashAndMatch(q, t, c, doc, false);
    expect(c.matched[1]).toBe(checkpointDepth(MAX_SHARED_INSERTS - 1));
  });

  it("learns a placement from another gateway, and drains its own outbox oldest first", () => {
    const t = table();
    const p = new PrefixLocator(config(), new RouterMetrics(), 5);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const doc = prompt(4, 20);
    hashAndMatch(p, t, c, doc, false);
    p.record(t, c, 0, 0);
    const hashes = new StaticArray<u64>(64);
    const replicas = new StaticArray<u64>(64);
    const depths = new StaticArray<u32>(64);
    expect(p.takePlacements(hashes, replicas, depths)).toBe(16);
    expect(p.pendingPlacements).toBe(0);
    // Inserted deepest first.
    expect(depths[0]).toBe(16);
    expect(depths[15]).toBe(1);
    expect(replicas[0]).toBe(t.addressHash[0]);
    // Another gateway's placement of the same checkpoints on replica 3, learned by a fresh VM.
    const other = new PrefixLocator(config(), new RouterMetrics(), 6);
    other.resize(new ReplicaTable(), t);
    for (let i = 0; i < 16; i++) expect(other.learnPlacement(hashes[i], t.addressHash[3], depths[i])).toBe(true);
    expect(other.learnPlacement(hashes[0], t.addressHash[3], 17)).toBe(false); // not a checkpoint depth
    hashAndMatch(other, t, c, doc + "more", false);
    expect(c.matched[3]).toBe(16);
    expect(c.matched[0]).toBe(16);
  });

  it("touches the deepest checkpoint a request finds held where it goes, and tells the fleet at most once a second", () => {
    const t = table();
    const p = new PrefixLocator(config(), new RouterMetrics(), 7);
    p.resize(new ReplicaTable(), t);
    const c = candidates(t);
    const doc = prompt(5, 20);
    const hashes = new StaticArray<u64>(64);
    const replicas = new StaticArray<u64>(64);
    const depths = new StaticArray<u32>(64);
    matchAt(p, t, c, doc, 100);
    p.record(t, c, 1, 1);
    expect(p.takePlacements(hashes, replicas, depths)).toBe(16);
    // The same prompt again within the second: all held, nothing new, the touch already done.
    matchAt(p, t, c, doc, 100);
    expect(p.record(t, c, 1, 1)).toBe(16);
    expect(p.pendingPlacements).toBe(0);
    // A second later: the deepest held checkpoint is touched again, and posted for the other gateways.
    matchAt(p, t, c, doc, 101);
    p.record(t, c, 1, 1);
    expect(p.takePlacements(hashes, replicas, depths)).toBe(1);
    expect(depths[0]).toBe(16);
    expect(replicas[0]).toBe(t.addressHash[1]);
  });

  it("gathers every worker VM's placements for the VM that polls", () => {
    const t = table();
    const c = candidates(t);
    const a = new PrefixLocator(config(), new RouterMetrics(), 7);
    const b = new PrefixLocator(config(), new RouterMetrics(), 8);
    a.resize(new ReplicaTable(), t);
    b.resize(new ReplicaTable(), t);
    const hashes = new StaticArray<u64>(256);
    const replicas = new StaticArray<u64>(256);
    const depths = new StaticArray<u32>(256);
    b.takePlacements(hashes, replicas, depths); // what earlier specs left
    hashAndMatch(a, t, c, prompt(5, 3), false);
    a.record(t, c, 0, 0);
    hashAndMatch(b, t, c, prompt(6, 2), false);
    b.record(t, c, 1, 1);
    a.flushPlacements();
    expect(a.pendingPlacements).toBe(0);
    // The poller (b) takes its own and a's, oldest first, in batches as small as its arrays.
    const one = new StaticArray<u64>(1);
    expect(b.takePlacements(one, new StaticArray<u64>(4), new StaticArray<u32>(4))).toBe(1);
    // a's 3 checkpoints (deepest first; depth 3 went in the first batch), then b's 2.
    expect(b.takePlacements(hashes, replicas, depths)).toBe(4);
    expect(replicas[1]).toBe(t.addressHash[0]);
    expect(depths[1]).toBe(1);
    expect(replicas[2]).toBe(t.addressHash[1]);
    expect(depths[2]).toBe(2);
    expect(b.takePlacements(hashes, replicas, depths)).toBe(0);
  });
});
