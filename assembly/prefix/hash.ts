// xxHash64 (Yann Collet's published algorithm) over linear memory, and what
// is built on its parts: the block digest (its four lanes, summed), the chain
// of block hashes (its avalanche), rendezvous weights. 64-bit hashes keep
// collisions negligible at index sizes of millions of blocks; xxHash64 is what
// the inference extension's prefix scorer uses too, so its parts' quality is
// known for this job.

// @ts-ignore: decorator
@inline const P1: u64 = 11400714785074694791;
// @ts-ignore: decorator
@inline const P2: u64 = 14029467366897019727;
// @ts-ignore: decorator
@inline const P3: u64 = 1609587929392839161;
// @ts-ignore: decorator
@inline const P4: u64 = 9650029242287828579;
// @ts-ignore: decorator
@inline const P5: u64 = 2870177450012600261;

// @ts-ignore: decorator
@inline function round(acc: u64, lane: u64): u64 {
  return rotl<u64>(acc + lane * P2, 31) * P1;
}

// @ts-ignore: decorator
@inline function mergeRound(acc: u64, v: u64): u64 {
  return (acc ^ round(0, v)) * P1 + P4;
}

// xxHash64's lane steps, for callers that load the 32-byte stripes themselves
// (the prompt hasher checks the same words for JSON quotes while it hashes
// them): lanes start from xxh64LaneSeed and take xxh64Round per word.

/** Lane k's (0..3) starting value for `seed`. */
// @ts-ignore: decorator
@inline export function xxh64LaneSeed(seed: u64, k: i32): u64 {
  return k == 0 ? seed + P1 + P2 : k == 1 ? seed + P2 : k == 2 ? seed : seed - P1;
}

// @ts-ignore: decorator
@inline export function xxh64Round(acc: u64, lane: u64): u64 {
  return round(acc, lane);
}

/**
 * A block's content digest from its lanes: xxHash64's lane sum, without the
 * merge rounds and avalanche that make a standalone hash, because chainBlock
 * mixes every digest with xxHash64's avalanche anyway (they were 14 of the 30
 * multiplies per 64-byte block: 8 KB of blocks 2.2 -> 1.3 us). Each lane is a
 * bijection of each of its words with the others fixed, so blocks differing
 * in one word, or in one lane's words, never share a digest; other
 * differences collide with probability about 2^-64, as with any 64-bit hash.
 */
// @ts-ignore: decorator
@inline export function laneDigest(v1: u64, v2: u64, v3: u64, v4: u64): u64 {
  return rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
}

/**
 * laneDigest of one 64-byte block (the default size) from its eight words in
 * order, in straight-line code: no stripe loop.
 */
// @ts-ignore: decorator
@inline export function digest64(w0: u64, w1: u64, w2: u64, w3: u64, w4: u64, w5: u64, w6: u64, w7: u64): u64 {
  return laneDigest(
    round(round(xxh64LaneSeed(0, 0), w0), w4),
    round(round(xxh64LaneSeed(0, 1), w1), w5),
    round(round(xxh64LaneSeed(0, 2), w2), w6),
    round(round(xxh64LaneSeed(0, 3), w3), w7),
  );
}

/**
 * The content digest of one full block of `len` bytes: laneDigest over
 * xxHash64's lanes (seed 0) when `len` is a multiple of its 32-byte stripe,
 * else xxHash64 itself (block sizes the one-pass prompt path does not take).
 */
export function blockDigest(ptr: usize, len: usize): u64 {
  if (len == 64) {
    return digest64(load<u64>(ptr), load<u64>(ptr, 8), load<u64>(ptr, 16), load<u64>(ptr, 24),
      load<u64>(ptr, 32), load<u64>(ptr, 40), load<u64>(ptr, 48), load<u64>(ptr, 56));
  }
  if (len < 32 || (len & 31) != 0) return xxh64(ptr, len, 0);
  let v1 = xxh64LaneSeed(0, 0);
  let v2 = xxh64LaneSeed(0, 1);
  let v3 = xxh64LaneSeed(0, 2);
  let v4 = xxh64LaneSeed(0, 3);
  const end = ptr + len;
  for (let p = ptr; p < end; p += 32) {
    v1 = round(v1, load<u64>(p));
    v2 = round(v2, load<u64>(p, 8));
    v3 = round(v3, load<u64>(p, 16));
    v4 = round(v4, load<u64>(p, 24));
  }
  return laneDigest(v1, v2, v3, v4);
}

// @ts-ignore: decorator
@inline function avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/** xxHash64 of `len` bytes at `ptr` with `seed`. */
export function xxh64(ptr: usize, len: usize, seed: u64): u64 {
  const end = ptr + len;
  let p = ptr;
  let h: u64;
  if (len >= 32) {
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    const limit = end - 32;
    do {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= limit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h ^= round(0, load<u64>(p));
    h = rotl<u64>(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= <u64>load<u32>(p) * P1;
    h = rotl<u64>(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= <u64>load<u8>(p) * P5;
    h = rotl<u64>(h, 11) * P1;
    p++;
  }
  return avalanche(h);
}

/** xxHash64 of a string's UTF-8 bytes (configuration-time use only: it allocates). */
export function xxh64String(s: string, seed: u64): u64 {
  const b = String.UTF8.encode(s);
  return xxh64(changetype<usize>(b), <usize>b.byteLength, seed);
}

/** A 64-bit finalizer (xxHash64's avalanche), for mixing two hashes into one. */
// @ts-ignore: decorator
@inline export function mix64(x: u64): u64 {
  return avalanche(x);
}

/**
 * The chained hash of a block: its content digest (blockDigest) folded into
 * the hash of everything before it. For a given `prev` it is a bijection
 * of `content` and for a given `content` one of `prev`, so two different
 * prefixes never meet at the same block. Contents hash independently of the
 * chain, so the CPU overlaps consecutive blocks (chaining through xxh64's
 * seed made each block wait for the last: 8 KB took 2.3 us, now 1.7 us).
 */
// @ts-ignore: decorator
@inline export function chainBlock(prev: u64, content: u64): u64 {
  return mix64((prev * P1) ^ content);
}

/** Rendezvous (highest-random-weight) weight of `replica` for `key`. */
// @ts-ignore: decorator
@inline export function rendezvousWeight(key: u64, replicaHash: u64): u64 {
  return mix64(key ^ (replicaHash * P1));
}
