// What a request says about itself beyond its prompt, for admission and the
// affinity scorers: its session, its priority, the model (or LoRA adapter) it
// names. Read from the one pass over the request headers the stream already
// makes, and from the body's top-level members the prompt hasher passes.
// Nothing allocates.
import { AdmissionConfig } from "../admission/admissionConfig";
import { xxh64 } from "../prefix/hash";
import { CharCode } from "../charCode";
import { QUOTE } from "./jsonScanner";
import { topLevel } from "./promptHasher";
import { EndpointSubset, SUBSET_HEADER } from "./endpointSubset";

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
  /** The endpoints the proxy restricts it to (the subset header, when read). */
  readonly subset: EndpointSubset = new EndpointSubset();

  reset(): void {
    this.inference = false;
    this.hasSession = false;
    this.priority = 0;
    this.hasModel = false;
    this.subset.reset();
  }

  copyFrom(o: RequestTraits): void {
    this.inference = o.inference;
    this.session = o.session;
    this.hasSession = o.hasSession;
    this.priority = o.priority;
    this.model = o.model;
    this.hasModel = o.hasModel;
    this.subset.copyFrom(o.subset);
  }
}

/** The header names the traits come from, set at configuration (lower case; empty: not read). */
@final
class TraitHeaders {
  session: string = "";
  admission: AdmissionConfig | null = null;
  subset: bool = false;
}

const names = new TraitHeaders();

/**
 * `sessionHeader` empty: sessions are not read from headers; `admission` null:
 * priorities are not read; `subset` false: the subset header is not read.
 */
export function configureTraitHeaders(sessionHeader: string, admission: AdmissionConfig | null, subset: bool): void {
  names.session = sessionHeader;
  names.admission = admission;
  names.subset = subset;
}

/** Takes the header [k, k+kl) = [v, v+vl) into `t` if it names a trait; true when it did. */
export function offerHeader(t: RequestTraits, k: isize, kl: isize, v: isize, vl: isize): bool {
  if (names.session.length > 0 && vl > 0 && bytesEqualIgnoreCase(k, kl, names.session)) {
    t.session = xxh64(<usize>v, <usize>vl, SESSION_SEED);
    t.hasSession = true;
    return true;
  }
  if (names.subset && bytesEqualIgnoreCase(k, kl, SUBSET_HEADER)) {
    t.subset.read(v, vl);
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

/**
 * Takes the body's top-level `model` and (when `wantUser` and the request has
 * no session yet) `user` strings into `t`, as the prompt hasher's pass over
 * the same body found them (promptHasher.ts topLevel): call it right after
 * hashPrompt() on the body. A body cut short or not JSON gives what that pass
 * read before the end.
 */
export function readBodyTraits(t: RequestTraits, wantUser: bool): void {
  t.hasModel = false;
  const v = topLevel;
  if (v.modelStart >= 0 && load<u8>(v.modelStart) == QUOTE) {
    t.model = xxh64(<usize>v.modelStart + 1, <usize>(v.modelEnd - v.modelStart - 2), MODEL_SEED);
    t.hasModel = true;
  }
  if (wantUser && !t.hasSession && v.userStart >= 0 && load<u8>(v.userStart) == QUOTE && v.userEnd - v.userStart > 2) {
    // The string's bytes between its quotes, escapes left as sent: a key, not text.
    t.session = xxh64(<usize>v.userStart + 1, <usize>(v.userEnd - v.userStart - 2), SESSION_SEED);
    t.hasSession = true;
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
