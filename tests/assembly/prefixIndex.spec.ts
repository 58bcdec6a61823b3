import { PrefixIndex } from "../../assembly/prefix/prefixIndex";

function chain(n: i32, base: u64): StaticArray<u64> {
  const a = new StaticArray<u64>(n);
  for (let i = 0; i < n; i++) a[i] = base * 1000 + <u64>i;
  return a;
}

/** Records `prompts` new 20-block chains in slot 0 (bases from `base` up): 20 x prompts entries ahead of what was there. */
function pushBack(idx: PrefixIndex, prompts: u64, base: u64): void {
  for (let r: u64 = 0; r < prompts; r++) idx.record(chain(20, base + r), 20, 0);
}

/**
 * Records x (n blocks) in slot 0, pushes it back by `prompts` new prompts,
 * re-sends it once, then pushes 18 prompts more (360 entries): what of x
 * the slot holds then.
 */
function heldAfterOneResend(idx: PrefixIndex, x: StaticArray<u64>, n: i32, prompts: u64, base: u64): i32 {
  idx.record(x, n, 0);
  pushBack(idx, prompts, base);
  expect(idx.matchedBlocks(x, n, 0)).toBe(n);
  idx.record(x, n, 0, n);
  pushBack(idx, 18, base + 100);
  return idx.matchedBlocks(x, n, 0);
}

describe("PrefixIndex", () => {
  it("counts leading matched blocks per slot", () => {
    const idx = new PrefixIndex(1024);
    const h = chain(10, 1);
    idx.record(h, 6, 3);
    expect(idx.matchedBlocks(h, 10, 3)).toBe(6);
    expect(idx.matchedBlocks(h, 10, 4)).toBe(0);
    const other = chain(10, 2);
    expect(idx.matchedBlocks(other, 10, 3)).toBe(0);
  });
  it("evicts a slot's least recent blocks, a prompt's tail first", () => {
    const idx = new PrefixIndex(1024);
    idx.setSlotCapacity(0, 8);
    const a = chain(6, 1);
    idx.record(a, 6, 0);
    const b = chain(4, 2);
    idx.record(b, 4, 0);
    expect(idx.countOf(0)).toBe(8);
    // Two of a's blocks went, from its tail: its start still matches.
    expect(idx.matchedBlocks(a, 6, 0)).toBe(4);
    expect(idx.matchedBlocks(b, 4, 0)).toBe(4);
  });
  it("never holds more than its capacity in all", () => {
    const idx = new PrefixIndex(1024);
    for (let r: u64 = 0; r < 200; r++) {
      const h = chain(64, r + 10);
      idx.record(h, 64, <u32>(r % 5));
    }
    expect(idx.size).toBeLessThanOrEqual(1024);
    let sum: u32 = 0;
    for (let s: u32 = 0; s < 5; s++) sum += idx.countOf(s);
    expect(sum).toBe(idx.size);
  });
  it("keeps entries findable through heavy churn (backward-shift deletion)", () => {
    const idx = new PrefixIndex(1024);
    idx.setSlotCapacity(1, 300);
    for (let r: u64 = 0; r < 500; r++) {
      const h = chain(20, r + 100);
      idx.record(h, 20, 1);
      expect(idx.matchedBlocks(h, 20, 1)).toBe(20);
    }
    expect(idx.countOf(1)).toBe(300);
  });
  it("counts a checkpoint chain's blocks against the quota, not its entries", () => {
    // 64 blocks: checkpoints at depths 1..16, 32, 48 and 64, 19 entries.
    const idx = new PrefixIndex(1024, true);
    idx.setSlotCapacity(0, 80);
    const a = chain(19, 1);
    idx.record(a, 19, 0);
    expect(idx.matchedBlocks(a, 19, 0)).toBe(19);
    idx.record(chain(19, 2), 19, 0);
    // 128 blocks for a quota of 80: a loses its three 16-block checkpoints, keeping its first 16 blocks.
    expect(idx.matchedBlocks(a, 19, 0)).toBe(16);
    expect(idx.countOf(0)).toBe(35);
    // Counted as entries, the same chains would both fit (38 of 80).
    const plain = new PrefixIndex(1024);
    plain.setSlotCapacity(0, 80);
    plain.record(a, 19, 0);
    plain.record(chain(19, 2), 19, 0);
    expect(plain.matchedBlocks(a, 19, 0)).toBe(19);
  });

  it("forgets a cleared slot", () => {
    const idx = new PrefixIndex(1024);
    const h = chain(5, 7);
    idx.record(h, 5, 2);
    idx.record(h, 5, 3);
    idx.clearSlot(2);
    expect(idx.matchedBlocks(h, 5, 2)).toBe(0);
    expect(idx.matchedBlocks(h, 5, 3)).toBe(5);
    expect(idx.size).toBe(5);
  });
  it("shrinks a slot to a lower capacity", () => {
    const idx = new PrefixIndex(1024);
    const h = chain(50, 9);
    idx.record(h, 50, 0);
    idx.setSlotCapacity(0, 10);
    expect(idx.countOf(0)).toBe(10);
    expect(idx.matchedBlocks(h, 50, 0)).toBe(10);
  });
  it("finds by binary search exactly what a block-by-block walk finds, under churn of prompts sharing prefixes", () => {
    // Prompts share a system prompt (block 0..k) and then differ, as chained hashes do;
    // quotas are small so every slot evicts constantly, also by pool pressure.
    const idx = new PrefixIndex(2048);
    for (let s: u32 = 0; s < 4; s++) idx.setSlotCapacity(s, 300 + s * 200);
    let x: u64 = 88172645463325252;
    for (let r = 0; r < 3000; r++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      const group = <u64>(x % 12);
      const shared = <i32>(8 + (group % 5) * 6);
      const n = shared + <i32>((x >> 8) % 40);
      const h = new StaticArray<u64>(n);
      for (let i = 0; i < n; i++) h[i] = i < shared ? group * 100000 + <u64>i : ((x >> 20) % 1000000 + 2000000) * 1000 + <u64>i;
      const slot = <u32>((x >> 40) % 4);
      let held = 0;
      for (let s: u32 = 0; s < 4; s++) {
        let linear = 0;
        while (linear < n && idx.find(h[linear], s) != 0) linear++;
        const m = idx.matchedBlocks(h, n, s);
        expect(m).toBe(linear);
        if (s == slot) held = m;
      }
      // As the router does: what the slot was found to hold lets a recent chain stay put.
      idx.record(h, n, slot, held);
      expect(idx.matchedBlocks(h, n, slot)).toBe(n < <i32>(300 + slot * 200) ? n : 300 + slot * 200);
      expect(idx.listIsWhole(slot)).toBe(true);
    }
  });
  it("links a recent chain's new blocks in behind it, and moves a chain that fell back to the front", () => {
    const idx = new PrefixIndex(4096);
    idx.setSlotCapacity(0, 800); // refresh window: 400 entries
    const a = chain(40, 1);
    idx.record(a, 20, 0);
    // Chain a is recent: re-sent with 20 new blocks, they go in behind its start.
    idx.record(a, 40, 0, idx.matchedBlocks(a, 40, 0));
    expect(idx.matchedBlocks(a, 40, 0)).toBe(40);
    // 700 other blocks push a back past the window; re-sending it must move it to the front,
    pushBack(idx, 35, 100);
    expect(idx.matchedBlocks(a, 40, 0)).toBe(40);
    idx.record(a, 40, 0, 40);
    // so that 760 more blocks (past a's old place in the list) leave it whole.
    pushBack(idx, 38, 200);
    expect(idx.countOf(0)).toBe(800);
    expect(idx.matchedBlocks(a, 40, 0)).toBe(40);
  });
  it("moves a long chain that fell back to the front whole in one record, however far back it was", () => {
    const idx = new PrefixIndex(4096);
    idx.setSlotCapacity(0, 800); // refresh window: 400 entries
    const n = 74;
    // Pushed back 500 entries (past the window), re-sent once, then 360 entries
    // more: had only part of it moved, the rest would have been evicted.
    expect(heldAfterOneResend(idx, chain(n, 1), n, 25, 100)).toBe(n);
    // The same from 660 entries back, close to eviction.
    expect(heldAfterOneResend(idx, chain(n, 3), n, 33, 500)).toBe(n);
    expect(idx.listIsWhole(0)).toBe(true);
  });
  it("moves a chain that others branched off in its middle in runs, keeping it whole and in order", () => {
    const idx = new PrefixIndex(4096);
    idx.setSlotCapacity(0, 800);
    const n = 30;
    const a = chain(n, 1);
    idx.record(a, n, 0);
    // Prompts sharing a's first 10 and first 20 blocks: their own blocks are
    // linked in behind a's block 9 and block 19, so a is no longer one run.
    for (let k = 0; k < 2; k++) {
      const b = chain(n + 5, 10 + <u64>k);
      for (let i = 0; i < 10 * (k + 1); i++) b[i] = a[i];
      idx.record(b, n + 5, 0, idx.matchedBlocks(b, n + 5, 0));
    }
    expect(idx.listIsWhole(0)).toBe(true);
    // Pushed back past the window...
    pushBack(idx, 25, 100);
    idx.record(a, n, 0, idx.matchedBlocks(a, n, 0));
    expect(idx.listIsWhole(0)).toBe(true);
    // ...to the front, in order: 770 more entries leave exactly a (the branches' own blocks were older).
    pushBack(idx, 38, 200);
    idx.record(chain(10, 300), 10, 0);
    expect(idx.matchedBlocks(a, n, 0)).toBe(n);
    idx.record(chain(10, 301), 10, 0);
    expect(idx.matchedBlocks(a, n, 0)).toBeLessThan(n);
    expect(idx.listIsWhole(0)).toBe(true);
  });
  it("leaves a chain re-sent within the refresh window where it was (recency is exact up to half the quota)", () => {
    const idx = new PrefixIndex(4096);
    idx.setSlotCapacity(0, 800);
    const a = chain(20, 1);
    const b = chain(20, 2);
    idx.record(a, 20, 0);
    idx.record(b, 20, 0);
    idx.record(a, 20, 0, 20); // 40 entries old at most: stays behind b
    pushBack(idx, 38, 100);
    expect(idx.countOf(0)).toBe(800);
    idx.record(chain(10, 500), 10, 0);
    expect(idx.matchedBlocks(a, 20, 0)).toBe(10);
    expect(idx.matchedBlocks(b, 20, 0)).toBe(20);
  });
  it("counts a conversation's held turns and a shorter or diverging prompt right after its hint was set", () => {
    const idx = new PrefixIndex(4096);
    const conv = chain(60, 3);
    idx.record(conv, 20, 1);
    expect(idx.matchedBlocks(conv, 40, 1)).toBe(20); // the next turn holds what the last recorded
    idx.record(conv, 40, 1, 20);
    expect(idx.matchedBlocks(conv, 60, 1)).toBe(40);
    expect(idx.matchedBlocks(conv, 10, 1)).toBe(10); // a shorter prompt with the same start
    const fork = chain(60, 3);
    for (let i = 25; i < 60; i++) fork[i] = 99000000 + <u64>i; // same start, diverges after 25 blocks
    expect(idx.matchedBlocks(fork, 60, 1)).toBe(25);
    idx.record(fork, 60, 1, 25);
    expect(idx.matchedBlocks(conv, 60, 1)).toBe(40);
    expect(idx.matchedBlocks(fork, 60, 1)).toBe(60);
  });
});
