import { blockDigest, chainBlock, laneDigest, xxh64, xxh64LaneSeed, xxh64Round, xxh64String, rendezvousWeight } from "../../assembly/prefix/hash";
import { BlockHasher } from "../../assembly/prefix/blockHasher";

function hashOf(s: string, seed: u64): u64 {
  return xxh64String(s, seed);
}

describe("xxh64", () => {
  it("matches the reference vectors", () => {
    // Published xxHash64 test vectors.
    expect(hashOf("", 0)).toBe(0xef46db3751d8e999);
    expect(hashOf("a", 0)).toBe(0xd24ec4f1a98c6e5b);
    expect(hashOf("abc", 0)).toBe(0x44bc2cf5ad770999);
    expect(hashOf("Nobody inspects the spammish repetition", 0)).toBe(0xfbcea83c8a378bf1);
  });
  it("depends on the seed", () => {
    expect(hashOf("abc", 1)).not.toBe(hashOf("abc", 0));
  });
  it("hashes long inputs through the 32-byte lanes", () => {
    const s = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef!";
    expect(hashOf(s, 0)).not.toBe(hashOf(s.slice(0, 64), 0));
  });
});

describe("BlockHasher", () => {
  it("chains full blocks and keeps the tail apart", () => {
    const h = new BlockHasher(8, 16);
    h.reset(7);
    const b = String.UTF8.encode("aaaaaaaabbbbbbbbcc");
    h.feed(changetype<usize>(b), b.byteLength);
    expect(h.count).toBe(2);
    expect(h.textBytes).toBe(18);
    const first = String.UTF8.encode("aaaaaaaa");
    expect(h.hashes[0]).toBe(chainBlock(7, blockDigest(changetype<usize>(first), 8)));
    const second = String.UTF8.encode("bbbbbbbb");
    expect(h.hashes[1]).toBe(chainBlock(h.hashes[0], blockDigest(changetype<usize>(second), 8)));
    // The same block after a different prefix hashes differently.
    expect(h.hashes[1]).not.toBe(chainBlock(h.hashes[0] + 1, blockDigest(changetype<usize>(second), 8)));
  });
  it("gives the same hashes however the text is split", () => {
    const a = new BlockHasher(8, 16);
    const b = new BlockHasher(8, 16);
    a.reset(1);
    b.reset(1);
    const s = String.UTF8.encode("the quick brown fox jumps over");
    a.feed(changetype<usize>(s), s.byteLength);
    for (let i = 0; i < s.byteLength; i++) b.feedByte(load<u8>(changetype<usize>(s) + i));
    expect(a.count).toBe(b.count);
    for (let i = 0; i < a.count; i++) expect(a.hashes[i]).toBe(b.hashes[i]);
  });
  it("gives the same hashes for pieces that start mid-block and span several blocks", () => {
    const a = new BlockHasher(8, 16);
    const b = new BlockHasher(8, 16);
    a.reset(3);
    b.reset(3);
    const s = String.UTF8.encode("pieces of uneven length cross block edges, some hashed in place");
    const p = changetype<usize>(s);
    a.feed(p, s.byteLength);
    // 5, then 19 (mid-block start), then 16 (block-aligned: hashed in place), then the rest
    b.feed(p, 5);
    b.feed(p + 5, 19);
    b.feed(p + 24, 16);
    b.feed(p + 40, s.byteLength - 40);
    expect(b.count).toBe(a.count);
    expect(b.textBytes).toBe(a.textBytes);
    for (let i = 0; i < a.count; i++) expect(b.hashes[i]).toBe(a.hashes[i]);
    expect(b.firstKey()).toBe(a.firstKey());
  });
  it("stops at maxBlocks", () => {
    const h = new BlockHasher(8, 2);
    h.reset(0);
    const s = String.UTF8.encode("aaaaaaaabbbbbbbbccccccccdddddddd");
    h.feed(changetype<usize>(s), s.byteLength);
    expect(h.count).toBe(2);
    expect(h.full).toBe(true);
  });
  it("keys a prompt shorter than a block by its text", () => {
    const h = new BlockHasher(64, 4);
    h.reset(0);
    const s = String.UTF8.encode("hi");
    h.feed(changetype<usize>(s), 2);
    const k1 = h.firstKey();
    h.reset(0);
    const t = String.UTF8.encode("ho");
    h.feed(changetype<usize>(t), 2);
    expect(h.count).toBe(0);
    expect(h.firstKey()).not.toBe(k1);
  });
});

describe("rendezvous", () => {
  it("ranks replicas differently for different keys", () => {
    let differs = false;
    for (let k: u64 = 1; k < 50; k++) {
      if ((rendezvousWeight(k, 11) > rendezvousWeight(k, 22)) != (rendezvousWeight(k + 1000, 11) > rendezvousWeight(k + 1000, 22))) differs = true;
    }
    expect(differs).toBe(true);
  });
});

describe("blockDigest", () => {
  it("digests a 64-byte block (straight-line code) as xxHash64's lanes over its two 32-byte stripes, summed", () => {
    const b = String.UTF8.encode("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/");
    const p = changetype<usize>(b);
    let v1 = xxh64LaneSeed(0, 0), v2 = xxh64LaneSeed(0, 1), v3 = xxh64LaneSeed(0, 2), v4 = xxh64LaneSeed(0, 3);
    for (let q: usize = 0; q < 64; q += 32) {
      v1 = xxh64Round(v1, load<u64>(p + q));
      v2 = xxh64Round(v2, load<u64>(p + q, 8));
      v3 = xxh64Round(v3, load<u64>(p + q, 16));
      v4 = xxh64Round(v4, load<u64>(p + q, 24));
    }
    expect(blockDigest(p, 64)).toBe(laneDigest(v1, v2, v3, v4));
  });
  it("changes with every single-byte change of a 64-byte block", () => {
    const b = String.UTF8.encode("the quick brown fox jumps over the lazy dog, then naps in the sun");
    const p = changetype<usize>(b);
    const base = blockDigest(p, 64);
    for (let i: usize = 0; i < 64; i++) {
      const was = load<u8>(p + i);
      for (let d = 1; d < 256; d += 37) {
        store<u8>(p + i, <u8>(was + d));
        expect(blockDigest(p, 64)).not.toBe(base);
      }
      store<u8>(p + i, was);
    }
    expect(blockDigest(p, 64)).toBe(base);
  });
  it("gives every distinct one of 50,000 text-like blocks its own digest", () => {
    const words: string[] = ["the ", "model ", "cache ", "prefix ", "token ", "router ", "a ", "of ", "system ", "you "];
    const seen = new Set<u64>();
    const texts = new Set<string>();
    const buf = heap.alloc(128);
    let x: u32 = 7;
    for (let n = 0; n < 50000; n++) {
      let s = "";
      while (s.length < 64) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        s += words[x % 10];
      }
      texts.add(s.slice(0, 64));
      const e = String.UTF8.encode(s.slice(0, 64));
      memory.copy(buf, changetype<usize>(e), 64);
      seen.add(blockDigest(buf, 64));
    }
    // Some generated blocks repeat; every distinct one must get its own digest.
    expect(texts.size).toBeGreaterThan(40000);
    expect(seen.size).toBe(texts.size);
    heap.free(buf);
  });
});
