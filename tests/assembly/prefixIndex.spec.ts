import { PrefixIndex } from "../../assembly/prefix/prefixIndex";

function chain(n: i32, base: u64): StaticArray<u64> {
  const a = new StaticArray<u64>(n);
  for (let i = 0; i < n; i++) a[i] = base * 1000 + <u64>i;
  return a;
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
});
