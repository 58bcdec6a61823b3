// A small JSON document parser for configuration (not the request path: it
// allocates). Iterative depth is bounded, so hostile input cannot overflow the
// stack; every error names its byte offset.
import { CharCode } from "../charCode";

export const enum JsonKind { Null, Bool, Number, String, Array, Object }

const MAX_DEPTH = 32;

@final
export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Array<JsonValue> = [];
  keys: Array<string> = [];
  values: Array<JsonValue> = [];

  get(key: string): JsonValue | null {
    for (let i = this.keys.length - 1; i >= 0; i--) if (this.keys[i] == key) return this.values[i];
    return null;
  }
}

export let jsonError: string = "";

/** 10^(2^k) for k = 0..8: every power of ten below 10^512 is a product of some of them. */
const BINARY_POWERS_OF_TEN: StaticArray<f64> = [1e1, 1e2, 1e4, 1e8, 1e16, 1e32, 1e64, 1e128, 1e256];

/** 10^n for 0 <= n < 512: exact up to 10^22 (every partial product is a representable power of ten), Infinity past 10^308. */
function powerOfTen(n: i32): f64 {
  let p = 1.0;
  for (let k = 0; n != 0; k++, n >>= 1) if (n & 1) p *= unchecked(BINARY_POWERS_OF_TEN[k]);
  return p;
}

/**
 * The value of the number in bytes [start, end) of `s`, which number() has checked
 * against JSON's grammar. Its first 19 significant digits make an integer m (below
 * 2^64), later ones only move the decimal exponent e; the value is m * 10^e. When m
 * is at most 2^53 (any 15 digits) and |e| at most 22, m and 10^e are both exact and
 * the one multiplication or division rounds correctly, as parseFloat does: "0.1",
 * "1e-9", "1500" and every other value a configuration holds. Past that 10^e is a
 * product of rounded powers and the value can be an ulp or two off, which no
 * configuration bound can tell; it still falls to 0 below the subnormals and rises
 * to Infinity past f64's range (readers reject non-finite values), as parseFloat's.
 * Reading the bytes in place keeps parseFloat's general strtod out of the module.
 */
function numberValue(s: Uint8Array, start: i32, end: i32): f64 {
  let i = start;
  const negative = unchecked(s[i]) == CharCode.MINUS;
  if (negative) i++;
  let m: u64 = 0;
  let kept = 0;
  let e = 0;
  let fraction = false;
  for (; i < end; i++) {
    const c = <i32>unchecked(s[i]);
    if (c == CharCode.DOT) { fraction = true; continue; }
    if (c == CharCode.e || c == CharCode.E) break;
    if (kept < 19) {
      m = m * 10 + <u64>(c - CharCode._0);
      if (m != 0) kept++;
      if (fraction) e--;
    } else if (!fraction) e++;
  }
  if (i < end) {
    const sign = unchecked(s[++i]);
    if (sign == CharCode.MINUS || sign == CharCode.PLUS) i++;
    // Any exponent past 10^5 gives 0 or Infinity already; capping it keeps "1e999999999999" from overflowing.
    let x = 0;
    for (; i < end; i++) if (x < 100000) x = x * 10 + <i32>unchecked(s[i]) - CharCode._0;
    e += sign == CharCode.MINUS ? -x : x;
  }
  let r = <f64>m;
  // m is below 10^19: past 10^400 the value is Infinity, below 10^-400 it is 0.
  if (m != 0 && e > 0) r *= powerOfTen(min(e, 400));
  else if (m != 0 && e < 0) {
    e = max(e, -400);
    // 10^-e overflows past 308: divide in two steps so that subnormals keep their value.
    if (e < -256) { r /= 1e256; e += 256; }
    r /= powerOfTen(-e);
  }
  return negative ? -r : r;
}

@final
class Parser {
  pos: i32 = 0;
  constructor(public src: Uint8Array) {}

  ws(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s[this.pos];
      if (c != CharCode.SPACE && c != CharCode.LINE_FEED && c != CharCode.CARRIAGE_RETURN && c != CharCode.TAB) break;
      this.pos++;
    }
  }

  fail(msg: string): JsonValue | null {
    if (jsonError.length == 0) jsonError = msg + " at byte " + this.pos.toString();
    return null;
  }

  value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nested deeper than " + MAX_DEPTH.toString());
    this.ws();
    const s = this.src;
    if (this.pos >= s.length) return this.fail("unexpected end");
    const c = s[this.pos];
    const v = new JsonValue();
    if (c == CharCode.OPEN_BRACE) {
      v.kind = JsonKind.Object;
      this.pos++;
      this.ws();
      if (this.pos < s.length && s[this.pos] == CharCode.CLOSE_BRACE) { this.pos++; return v; }
      while (true) {
        this.ws();
        if (this.pos >= s.length || s[this.pos] != CharCode.QUOTE) return this.fail("expected a member name");
        const k = this.string();
        if (k === null) return null;
        this.ws();
        if (this.pos >= s.length || s[this.pos] != CharCode.COLON) return this.fail("expected ':'");
        this.pos++;
        const m = this.value(depth + 1);
        if (m === null) return null;
        v.keys.push(k);
        v.values.push(m);
        this.ws();
        if (this.pos < s.length && s[this.pos] == CharCode.COMMA) { this.pos++; continue; }
        if (this.pos < s.length && s[this.pos] == CharCode.CLOSE_BRACE) { this.pos++; return v; }
        return this.fail("expected ',' or '}'");
      }
    }
    if (c == CharCode.OPEN_BRACKET) {
      v.kind = JsonKind.Array;
      this.pos++;
      this.ws();
      if (this.pos < s.length && s[this.pos] == CharCode.CLOSE_BRACKET) { this.pos++; return v; }
      while (true) {
        const m = this.value(depth + 1);
        if (m === null) return null;
        v.items.push(m);
        this.ws();
        if (this.pos < s.length && s[this.pos] == CharCode.COMMA) { this.pos++; continue; }
        if (this.pos < s.length && s[this.pos] == CharCode.CLOSE_BRACKET) { this.pos++; return v; }
        return this.fail("expected ',' or ']'");
      }
    }
    if (c == CharCode.QUOTE) {
      const str = this.string();
      if (str === null) return null;
      v.kind = JsonKind.String;
      v.str = str;
      return v;
    }
    if (this.word("true")) { v.kind = JsonKind.Bool; v.bool = true; return v; }
    if (this.word("false")) { v.kind = JsonKind.Bool; return v; }
    if (this.word("null")) return v;
    return this.number(v);
  }

  word(w: string): bool {
    const s = this.src;
    if (this.pos + w.length > s.length) return false;
    for (let i = 0; i < w.length; i++) if (<i32>s[this.pos + i] != w.charCodeAt(i)) return false;
    this.pos += w.length;
    return true;
  }

  /** JSON's number grammar exactly: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
  number(v: JsonValue): JsonValue | null {
    const s = this.src;
    const start = this.pos;
    if (this.pos < s.length && s[this.pos] == CharCode.MINUS) this.pos++;
    const intStart = this.pos;
    const intDigits = this.digits();
    if (intDigits == 0) {
      this.pos = start;
      return this.fail(intStart == start ? "unexpected character" : "bad number");
    }
    // No leading zeros: "069" is not JSON.
    if (intDigits > 1 && s[intStart] == CharCode._0) { this.pos = start; return this.fail("bad number"); }
    if (this.pos < s.length && s[this.pos] == CharCode.DOT) {
      this.pos++;
      if (this.digits() == 0) { this.pos = start; return this.fail("bad number"); }
    }
    if (this.pos < s.length && (s[this.pos] == CharCode.e || s[this.pos] == CharCode.E)) {
      this.pos++;
      if (this.pos < s.length && (s[this.pos] == CharCode.PLUS || s[this.pos] == CharCode.MINUS)) this.pos++;
      if (this.digits() == 0) { this.pos = start; return this.fail("bad number"); }
    }
    v.kind = JsonKind.Number;
    v.num = numberValue(s, start, this.pos);
    return v;
  }

  /** Skips ASCII digits; how many. */
  private digits(): i32 {
    const s = this.src;
    const from = this.pos;
    while (this.pos < s.length && <i32>s[this.pos] >= CharCode._0 && <i32>s[this.pos] <= CharCode._9) this.pos++;
    return this.pos - from;
  }

  string(): string | null {
    const s = this.src;
    this.pos++;
    let out = "";
    let runStart = this.pos;
    while (this.pos < s.length) {
      const c = <i32>s[this.pos];
      if (c == CharCode.QUOTE) {
        out += String.UTF8.decodeUnsafe(s.dataStart + <usize>runStart, <usize>(this.pos - runStart));
        this.pos++;
        return out;
      }
      if (c < CharCode.SPACE) { this.fail("control character in string"); return null; }
      if (c == CharCode.BACKSLASH) {
        out += String.UTF8.decodeUnsafe(s.dataStart + <usize>runStart, <usize>(this.pos - runStart));
        if (this.pos + 1 >= s.length) break;
        const e = s[this.pos + 1];
        this.pos += 2;
        if (e == CharCode.n) out += "\n";
        else if (e == CharCode.t) out += "\t";
        else if (e == CharCode.r) out += "\r";
        else if (e == CharCode.b) out += "\b";
        else if (e == CharCode.f) out += "\f";
        else if (e == CharCode.u) {
          if (this.pos + 4 > s.length) break;
          let cp = 0;
          for (let i = 0; i < 4; i++) {
            const h = <i32>s[this.pos + i];
            let d = -1;
            if (h >= CharCode._0 && h <= CharCode._9) d = h - CharCode._0;
            else if (h >= CharCode.a && h <= CharCode.f) d = h - 0x57;
            else if (h >= CharCode.A && h <= CharCode.F) d = h - 0x37;
            if (d < 0) { this.fail("bad \\u escape"); return null; }
            cp = (cp << 4) | d;
          }
          this.pos += 4;
          out += String.fromCharCode(cp);
        } else if (e == CharCode.QUOTE || e == CharCode.BACKSLASH || e == CharCode.SLASH) out += String.fromCharCode(e);
        else { this.fail("bad escape"); return null; }
        runStart = this.pos;
        continue;
      }
      this.pos++;
    }
    this.fail("unterminated string");
    return null;
  }
}

/** Parses a whole JSON document; null with `jsonError` set when it is not one. */
export function parseJson(bytes: Uint8Array): JsonValue | null {
  jsonError = "";
  const p = new Parser(bytes);
  const v = p.value(0);
  if (v === null) return null;
  p.ws();
  if (p.pos != bytes.length) {
    p.fail("trailing characters");
    return null;
  }
  return v;
}
