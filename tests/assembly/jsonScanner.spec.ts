import { BACKSLASH, HIGHS, QUOTE, quoteOrBackslashBits, skipPlain } from "../../assembly/request/jsonScanner";

const BUF_LEN = 48;
const buf = heap.alloc(BUF_LEN);

/** Fills the buffer with `filler`, except byte `at` = `special` (at < 0: none). */
function fill(filler: u8, at: i32, special: u8): void {
  memory.fill(buf, filler, BUF_LEN);
  if (at >= 0) store<u8>(buf + <usize>at, special);
}

describe("quoteOrBackslashBits", () => {
  it("flags a word exactly when one of its bytes is a quote or a backslash, for every byte value around it", () => {
    let wrong = 0;
    for (let filler = 0; filler < 256; filler++) {
      const plain = filler != QUOTE && filler != BACKSLASH;
      for (let at = -1; at < 8; at++) {
        for (let k = 0; k < 2; k++) {
          fill(<u8>filler, at, k == 0 ? QUOTE : BACKSLASH);
          const flagged = (quoteOrBackslashBits(load<u64>(buf)) & HIGHS) != 0;
          if (flagged != (at >= 0 || !plain)) wrong++;
        }
      }
    }
    expect(wrong).toBe(0);
  });
  it("puts the lowest flag on the first quote or backslash, whatever follows it", () => {
    let wrong = 0;
    for (let filler = 0; filler < 256; filler++) {
      if (filler == QUOTE || filler == BACKSLASH) continue;
      for (let at = 0; at < 8; at++) {
        fill(<u8>filler, at, QUOTE);
        // Later bytes that are targets too, or high bytes, must not move the first flag.
        if (at + 1 < 8) store<u8>(buf + <usize>at + 1, BACKSLASH);
        if (at + 2 < 8) store<u8>(buf + <usize>at + 2, 0xff);
        const bits = quoteOrBackslashBits(load<u64>(buf)) & HIGHS;
        if (bits == 0 || <i32>(ctz(bits) >> 3) != at) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });
});

describe("skipPlain", () => {
  it("stops at the first quote or backslash at any position, among any other bytes", () => {
    let wrong = 0;
    for (let filler = 0; filler < 256; filler++) {
      if (filler == QUOTE || filler == BACKSLASH) continue;
      for (let at = 0; at < BUF_LEN; at++) {
        fill(<u8>filler, at, at & 1 ? QUOTE : BACKSLASH);
        const p = skipPlain(<isize>buf, <isize>(buf + BUF_LEN));
        // Exact in whole words; in the tail under 8 bytes it stops at the tail's start.
        const tail = <isize>(buf + (BUF_LEN & ~7));
        const want = at < (BUF_LEN & ~7) ? <isize>(buf + at) : tail;
        if (p != want) wrong++;
      }
      fill(<u8>filler, -1, 0);
      if (skipPlain(<isize>buf, <isize>(buf + BUF_LEN)) < <isize>(buf + (BUF_LEN & ~7))) wrong++;
    }
    expect(wrong).toBe(0);
  });
  it("never reads a word past the end it is given", () => {
    fill(0x61, 20, QUOTE);
    // The quote lies beyond `end`: the scan stops where the last whole word before end ends.
    const p = skipPlain(<isize>buf, <isize>(buf + 19));
    expect(p).toBe(<isize>(buf + 16));
  });
});
