// Byte-level JSON scanning over linear memory for the request path: no
// allocation, no recursion (nesting is tracked with a counter, so a deeply
// nested body cannot exhaust the stack), every read bounds-checked against
// `end`. Positions are absolute addresses; -1 means malformed or truncated.
import { CharCode } from "../charCode";

// @ts-ignore: decorator
@inline export const QUOTE: u8 = 0x22;
// @ts-ignore: decorator
@inline export const BACKSLASH: u8 = 0x5c;

// @ts-ignore: decorator
@inline const ONES: u64 = 0x0101010101010101;
// @ts-ignore: decorator
@inline export const HIGHS: u64 = 0x8080808080808080;

export function skipWs(p: isize, end: isize): isize {
  while (p < end) {
    const c = load<u8>(p);
    if (c != CharCode.SPACE && c != CharCode.LINE_FEED && c != CharCode.CARRIAGE_RETURN && c != CharCode.TAB) break;
    p++;
  }
  return p;
}

/** Whether the string the last skipString() went over had an escape in it. */
export let stringEscaped: bool = false;

/**
 * SWAR: the high bit of each byte of the result is set where `w` has a quote
 * or a backslash (bytes above such a byte may be set too). Results of several
 * words can be OR-ed and tested once with `& HIGHS`.
 *
 * A byte of w ^ c is 0 where w's byte is c, and subtracting 1 sets its high
 * bit (and borrows, but only upwards from such a byte). Any other ASCII byte
 * stays below 0x80 after the subtraction; bytes of 0x80 and up may set it
 * too, and `& ~w` clears theirs: both targets are ASCII. One mask for both
 * targets, not one each: 8 operations a word instead of 10.
 */
// @ts-ignore: decorator
@inline export function quoteOrBackslashBits(w: u64): u64 {
  return (((w ^ (ONES * QUOTE)) - ONES) | ((w ^ (ONES * BACKSLASH)) - ONES)) & ~w;
}

/**
 * The first quote or backslash in [p, end), or, when there is none in its
 * whole eight-byte words, where the tail under eight bytes starts (left to
 * the caller's byte test), or a position >= end. 32 bytes per step, four SWAR
 * words tested with one branch, then the first flagged byte of the word that
 * has one (the lowest flag is exact); no SIMD, so the module also loads on
 * engines without it.
 */
export function skipPlain(p: isize, end: isize): isize {
  while (p + 32 <= end) {
    const bits = quoteOrBackslashBits(load<u64>(p)) | quoteOrBackslashBits(load<u64>(p, 8)) |
      quoteOrBackslashBits(load<u64>(p, 16)) | quoteOrBackslashBits(load<u64>(p, 24));
    if ((bits & HIGHS) != 0) break;
    p += 32;
  }
  while (p + 8 <= end) {
    const bits = quoteOrBackslashBits(load<u64>(p)) & HIGHS;
    if (bits != 0) return p + <isize>(ctz(bits) >> 3);
    p += 8;
  }
  return p;
}

/** `p` at a string's opening quote; returns the position after its closing quote. */
export function skipString(p: isize, end: isize): isize {
  stringEscaped = false;
  return stringEnd(p + 1, end);
}

/**
 * `p` inside a string: the position after its closing quote, or -1 when there
 * is none before `end`. Sets stringEscaped when it passes an escape.
 */
export function stringEnd(p: isize, end: isize): isize {
  while (true) {
    p = skipPlain(p, end);
    if (p >= end) return -1;
    const c = load<u8>(p);
    if (c == QUOTE) return p + 1;
    if (c == BACKSLASH) {
      stringEscaped = true;
      p += 2;
    } else p++;
  }
  return -1;
}

/** `p` at the first byte of a value; returns the position after it. */
export function skipValue(p: isize, end: isize): isize {
  if (p >= end) return -1;
  let c = load<u8>(p);
  if (c == QUOTE) return skipString(p, end);
  if (c == CharCode.OPEN_BRACE || c == CharCode.OPEN_BRACKET) {
    let depth = 0;
    while (p < end) {
      c = load<u8>(p);
      if (c == QUOTE) {
        p = skipString(p, end);
        if (p < 0) return -1;
        continue;
      }
      if (c == CharCode.OPEN_BRACE || c == CharCode.OPEN_BRACKET) depth++;
      else if (c == CharCode.CLOSE_BRACE || c == CharCode.CLOSE_BRACKET) {
        if (--depth == 0) return p + 1;
      }
      p++;
    }
    return -1;
  }
  const start = p;
  while (p < end) {
    c = load<u8>(p);
    if (c == CharCode.COMMA || c == CharCode.CLOSE_BRACE || c == CharCode.CLOSE_BRACKET || c == CharCode.SPACE || c == CharCode.LINE_FEED || c == CharCode.CARRIAGE_RETURN || c == CharCode.TAB) break;
    p++;
  }
  return p > start ? p : -1;
}

/** True when the `len` bytes at `p` spell the ASCII string `s`. */
export function bytesEqual(p: isize, len: isize, s: string): bool {
  if (len != <isize>s.length) return false;
  for (let i: isize = 0; i < len; i++) {
    if (<u32>load<u8>(p + i) != <u32>s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** What both cursors share: the current value's span, and the malformed flag. */
@unmanaged
class ValueCursor {
  valueStart: isize = 0;
  valueEnd: isize = 0;
  /** The value is a string without escapes: its bytes between the quotes are its text. */
  valuePlain: bool = false;
  protected pos: isize = 0;
  protected end: isize = 0;
  malformed: bool = false;

  /** The caller scanned (and decoded) the current value itself: it ends at `after` (-1: it was malformed). */
  consumedTo(after: isize): bool {
    if (after < 0) return this.fail();
    this.valueEnd = after;
    this.valuePlain = false;
    this.pos = after;
    return true;
  }

  /** Takes the value starting at `p` as the current one; false when there is none. */
  protected take(p: isize): bool {
    const v = skipValue(p, this.end);
    if (v < 0) return this.fail();
    this.valueStart = p;
    this.valueEnd = v;
    this.valuePlain = load<u8>(p) == QUOTE && !stringEscaped;
    this.pos = v;
    return true;
  }

  protected fail(): bool {
    this.malformed = true;
    return false;
  }
}

/**
 * Iterates an object's members. Usage:
 *   let it = objectFirst(p, end); while (it > 0) { ...keyStart/keyEnd/valueStart/valueEnd...; it = objectNext(...) }
 * Kept as explicit state in a reusable cursor to avoid allocation.
 */
@unmanaged
@final
export class MemberCursor extends ValueCursor {
  keyStart: isize = 0;
  keyEnd: isize = 0;
  /** Position after the object's closing brace once `next` returned false. */
  after: isize = 0;

  /** `p` at the object's opening brace. */
  begin(p: isize, end: isize): void {
    this.pos = p + 1;
    this.end = end;
    this.malformed = false;
    this.after = -1;
  }

  next(): bool {
    return this.nextKey() && this.takeValue();
  }

  /**
   * Reads the next member's key and colon and stops at its value
   * (`valueStart`), which the caller then consumes with `takeValue()` or,
   * having scanned it itself, `consumedTo()`.
   */
  nextKey(): bool {
    const end = this.end;
    let p = skipWs(this.pos, end);
    if (p >= end) return this.fail();
    let c = load<u8>(p);
    if (c == CharCode.COMMA) {
      p = skipWs(p + 1, end);
      if (p >= end) return this.fail();
      c = load<u8>(p);
    } else if (c == CharCode.CLOSE_BRACE) {
      this.after = p + 1;
      return false;
    }
    if (c != QUOTE) return this.fail();
    const keyAfter = skipString(p, end);
    if (keyAfter < 0) return this.fail();
    this.keyStart = p + 1;
    this.keyEnd = keyAfter - 1;
    p = skipWs(keyAfter, end);
    if (p >= end || load<u8>(p) != CharCode.COLON) return this.fail();
    this.valueStart = skipWs(p + 1, end);
    return true;
  }

  @inline takeValue(): bool {
    return this.take(this.valueStart);
  }

  @inline keyIs(s: string): bool {
    return bytesEqual(this.keyStart, this.keyEnd - this.keyStart, s);
  }
}

/** Iterates an array's elements; same shape as MemberCursor. */
@unmanaged
@final
export class ElementCursor extends ValueCursor {
  private first: bool = true;
  /** Position after the array's closing bracket once `next` returned false. */
  after: isize = 0;

  /** `p` at the array's opening bracket. */
  begin(p: isize, end: isize): void {
    this.pos = p + 1;
    this.end = end;
    this.first = true;
    this.malformed = false;
    this.after = -1;
  }

  next(): bool {
    return this.nextStart() && this.take(this.valueStart);
  }

  /**
   * Reads the separator before the next element and stops at its start
   * (`valueStart`), which the caller then scans itself and ends with `consumedTo()`.
   */
  nextStart(): bool {
    const end = this.end;
    let p = skipWs(this.pos, end);
    if (p >= end) return this.fail();
    let c = load<u8>(p);
    if (c == CharCode.CLOSE_BRACKET) {
      this.after = p + 1;
      return false;
    }
    if (!this.first) {
      if (c != CharCode.COMMA) return this.fail();
      p = skipWs(p + 1, end);
    }
    this.first = false;
    this.valueStart = p;
    return true;
  }
}
