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
    const text = String.UTF8.decodeUnsafe(s.dataStart + <usize>start, <usize>(this.pos - start));
    const n = parseFloat(text);
    if (isNaN(n)) { this.pos = start; return this.fail("bad number"); }
    v.kind = JsonKind.Number;
    v.num = n;
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
