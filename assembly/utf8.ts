// Well-formed UTF-8 (Unicode 15, table 3-7): no overlong forms, no
// surrogates, nothing past U+10FFFF, no cut sequence. The same bytes a
// strict decoder (WHATWG's, `fatal: true`) takes without an error.

/** The bytes [p, p+len) are well-formed UTF-8. */
export function isWellFormedUtf8(p: usize, len: i32): bool {
  let i = 0;
  while (i < len) {
    const b0 = <u32>load<u8>(p + <usize>i);
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let n: i32;
    // The second byte's range depends on the first; later ones are 80..BF.
    let lo: u32 = 0x80, hi: u32 = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef) {
      n = 3;
      if (b0 == 0xe0) lo = 0xa0;
      else if (b0 == 0xed) hi = 0x9f;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      n = 4;
      if (b0 == 0xf0) lo = 0x90;
      else if (b0 == 0xf4) hi = 0x8f;
    } else return false;
    if (i + n > len) return false;
    const b1 = <u32>load<u8>(p + <usize>(i + 1));
    if (b1 < lo || b1 > hi) return false;
    for (let k = 2; k < n; k++) {
      const b = <u32>load<u8>(p + <usize>(i + k));
      if (b < 0x80 || b > 0xbf) return false;
    }
    i += n;
  }
  return true;
}
