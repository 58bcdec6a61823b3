// What a request says about itself beyond its prompt, for admission and the
// affinity scorers: its session, its priority, the model (or LoRA adapter) it
// names. Read from the one pass over the request headers the stream already
// makes, and from the body's top-level members. Nothing allocates.
import { AdmissionConfig } from "../admission/admissionConfig";
import { xxh64 } from "../prefix/hash";
import { CharCode } from "../charCode";
import { MemberCursor, QUOTE, skipWs } from "./jsonScanner";

/** Seeds of the session and model keys: a session named like a model is still a different key. */
const SESSION_SEED: u64 = 0x73657373696f6e;
const MODEL_SEED: u64 = 0x6d6f64656c;

@final
export class RequestTraits {
  /** An inference request (POST to a completions path): admission may hold or refuse it. */
  inference: bool = false;
  /** Key of the request's session (header, else the body's `user`); valid when hasSession. */
  session: u64 = 0;
  hasSession: bool = false;
  /** From the objective header; 0 without one. */
  priority: i32 = 0;
  /** Key of the body's `model` (a base model or a LoRA adapter); valid when hasModel. */
  model: u64 = 0;
  hasModel: bool = false;

  reset(): void {
    this.inference = false;
    this.hasSession = false;
    this.priority = 0;
    this.hasModel = false;
  }

  copyFrom(o: RequestTraits): void {
    this.inference = o.inference;
    this.session = o.session;
    this.hasSession = o.hasSession;
    this.priority = o.priority;
    this.model = o.model;
    this.hasModel = o.hasModel;
  }
}

/** The header names the traits come from, set at configuration (lower case; empty: not read). */
@final
class TraitHeaders {
  session: string = "";
  admission: AdmissionConfig | null = null;
}

const names = new TraitHeaders();

/** `sessionHeader` empty: sessions are not read from headers; `admission` null: priorities are not read. */
export function configureTraitHeaders(sessionHeader: string, admission: AdmissionConfig | null): void {
  names.session = sessionHeader;
  names.admission = admission;
}

/** Takes the header [k, k+kl) = [v, v+vl) into `t` if it names a trait; true when it did. */
export function offerHeader(t: RequestTraits, k: isize, kl: isize, v: isize, vl: isize): bool {
  if (names.session.length > 0 && vl > 0 && bytesEqualIgnoreCase(k, kl, names.session)) {
    t.session = xxh64(<usize>v, <usize>vl, SESSION_SEED);
    t.hasSession = true;
    return true;
  }
  const a = names.admission;
  if (a !== null && bytesEqualIgnoreCase(k, kl, a.objectiveHeader)) {
    const ns = a.objectiveNames;
    for (let i = 0; i < ns.length; i++) {
      if (bytesEqualExact(v, vl, unchecked(ns[i]))) {
        t.priority = unchecked(a.objectivePriorities[i]);
        break;
      }
    }
    return true;
  }
  return false;
}

const top = new MemberCursor();

/**
 * Reads the body's top-level `model` and (when `wantUser` and the request
 * has no session yet) `user` strings into `t`. A body cut short or not JSON
 * gives what was read before the end.
 */
export function readBodyTraits(t: RequestTraits, body: usize, len: usize, wantUser: bool): void {
  t.hasModel = false;
  if (len == 0) return;
  const start = <isize>body;
  const end = start + <isize>len;
  const p = skipWs(start, end);
  if (p >= end || load<u8>(p) != CharCode.OPEN_BRACE) return;
  let needUser = wantUser && !t.hasSession;
  top.begin(p, end);
  while (top.next()) {
    if (load<u8>(top.valueStart) != QUOTE) continue;
    // The string's bytes between its quotes, escapes left as sent: a key, not text.
    const s = <usize>top.valueStart + 1;
    const n = <usize>(top.valueEnd - top.valueStart - 2);
    if (!t.hasModel && top.keyIs("model")) {
      t.model = xxh64(s, n, MODEL_SEED);
      t.hasModel = true;
    } else if (needUser && n > 0 && top.keyIs("user")) {
      t.session = xxh64(s, n, SESSION_SEED);
      t.hasSession = true;
      needUser = false;
    }
  }
}

/** The key `model` would have for the name `s` (LoRA adapter and base model names from the state). */
export function modelKey(p: usize, len: usize): u64 {
  return xxh64(p, len, MODEL_SEED);
}

/** ASCII case-insensitive comparison with a lower-case ASCII `s`. */
export function bytesEqualIgnoreCase(p: isize, len: isize, s: string): bool {
  if (len != <isize>s.length) return false;
  for (let i: isize = 0; i < len; i++) {
    let c = <i32>load<u8>(p + i);
    if (c >= CharCode.A && c <= CharCode.Z) c += CharCode.a - CharCode.A;
    if (c != s.charCodeAt(<i32>i)) return false;
  }
  return true;
}

/** The `len` bytes at `p` are `b`. */
function bytesEqualExact(p: isize, len: isize, b: ArrayBuffer): bool {
  return <usize>len == <usize>b.byteLength && memory.compare(<usize>p, changetype<usize>(b), <usize>len) == 0;
}
