// State section 16 (plugin/STATE_FORMAT.md): the LoRA adapters each replica
// runs and queues, and how many it can run at once (vLLM's
// vllm:lora_requests_info). Decoded whole and checked before use; the
// control plane's encoder is control-plane/loraSection.ts.
import { modelKey } from "../request/requestTraits";
import { isWellFormedUtf8 } from "../utf8";
import * as E from "../errors";

export const LORA_SECTION_TAG: u32 = 16;
export const LORA_MAX_ADAPTERS: i32 = 1024;
export const LORA_MAX_BASE_MODELS: i32 = 64;
const FLAG_KNOWN: u8 = 1;
/** LoraAdapters.byKey's value for a base model's name. */
export const BASE_MODEL: i32 = -2;

@final
export class LoraAdapters {
  /**
   * Adapter index by the key of its name (requestTraits modelKey), or BASE_MODEL for
   * the replicas' base model names: a request naming one is not a LoRA request.
   */
  readonly byKey: Map<u64, i32> = new Map<u64, i32>();
  /** Per replica (state order): LoRA info scraped, adapters it can run at once. */
  known: StaticArray<bool> = new StaticArray<bool>(0);
  maxLora: StaticArray<i32> = new StaticArray<i32>(0);
  /** Per replica, its adapters are members[start[i] .. start[i+1]), the first `running[i]` of them running, the rest waiting. */
  start: StaticArray<i32> = new StaticArray<i32>(1);
  running: StaticArray<i32> = new StaticArray<i32>(0);
  members: StaticArray<i32> = new StaticArray<i32>(0);
  /** Some replica can run adapters. */
  anySlots: bool = false;

  /** Replica i runs or queues adapter a. */
  holds(i: i32, a: i32): bool {
    for (let j = unchecked(this.start[i]); j < unchecked(this.start[i + 1]); j++) if (unchecked(this.members[j]) == a) return true;
    return false;
  }

  /** Replica i runs fewer distinct adapters than it has slots for. */
  freeSlot(i: i32): bool {
    return unchecked(this.known[i]) && unchecked(this.running[i]) < unchecked(this.maxLora[i]);
  }
}

export let loraError: string = "";

function reject(msg: string): LoraAdapters | null {
  loraError = msg;
  return null;
}

const NAME_CUT: i32 = -1;
const NAME_NOT_UTF8: i32 = -2;

/** Reads a name list entry at o: returns the offset after it, NAME_CUT or NAME_NOT_UTF8. */
function nameEnd(p: usize, o: i32, len: i32): i32 {
  if (o + 1 > len) return NAME_CUT;
  const n = <i32>load<u8>(p + <usize>o);
  if (n < 1 || o + 1 + n > len) return NAME_CUT;
  if (!isWellFormedUtf8(p + <usize>o + 1, n)) return NAME_NOT_UTF8;
  return o + 1 + n;
}

/** Decodes section 16 of [p, p+len) for a state of `replicas` replicas; null (with loraError) when malformed. */
export function decodeLoraSection(p: usize, len: i32, replicas: i32): LoraAdapters | null {
  loraError = "";
  if (len < 8) return reject(E.LORA_ERR_TRUNCATED);
  const adapters = <i32>load<u16>(p);
  const bases = <i32>load<u16>(p, 2);
  if (adapters > LORA_MAX_ADAPTERS || bases > LORA_MAX_BASE_MODELS) return reject(E.LORA_ERR_COUNT);
  const out = new LoraAdapters();
  let o = 4;
  for (let a = 0; a < adapters; a++) {
    const e = nameEnd(p, o, len);
    if (e < 0) return reject(e == NAME_NOT_UTF8 ? E.LORA_ERR_NAME : E.LORA_ERR_TRUNCATED);
    const key = modelKey(p + <usize>o + 1, <usize>(e - o - 1));
    if (out.byKey.has(key)) return reject(E.LORA_ERR_DUPLICATE);
    out.byKey.set(key, a);
    o = e;
  }
  for (let b = 0; b < bases; b++) {
    const e = nameEnd(p, o, len);
    if (e < 0) return reject(e == NAME_NOT_UTF8 ? E.LORA_ERR_NAME : E.LORA_ERR_TRUNCATED);
    out.byKey.set(modelKey(p + <usize>o + 1, <usize>(e - o - 1)), BASE_MODEL);
    o = e;
  }
  if (o + 4 > len) return reject(E.LORA_ERR_TRUNCATED);
  if (load<u32>(p + <usize>o) != <u32>replicas) return reject(E.LORA_ERR_REPLICAS);
  o += 4;
  out.known = new StaticArray<bool>(replicas);
  out.maxLora = new StaticArray<i32>(replicas);
  out.running = new StaticArray<i32>(replicas);
  out.start = new StaticArray<i32>(replicas + 1);
  const members = new Array<i32>();
  for (let i = 0; i < replicas; i++) {
    if (o + 5 > len) return reject(E.LORA_ERR_TRUNCATED);
    const q = p + <usize>o;
    const flags = load<u8>(q);
    const maxLora = <i32>load<u16>(q, 1);
    const nr = <i32>load<u8>(q, 3);
    const nw = <i32>load<u8>(q, 4);
    o += 5;
    if ((flags & ~FLAG_KNOWN) != 0) return reject(E.LORA_ERR_FLAGS);
    if ((flags & FLAG_KNOWN) == 0 && (maxLora | nr | nw) != 0) return reject(E.LORA_ERR_FLAGS);
    if (o + 2 * (nr + nw) > len) return reject(E.LORA_ERR_TRUNCATED);
    unchecked(out.known[i] = (flags & FLAG_KNOWN) != 0);
    unchecked(out.maxLora[i] = maxLora);
    unchecked(out.running[i] = nr);
    unchecked(out.start[i] = members.length);
    if (maxLora > 0) out.anySlots = true;
    for (let j = 0; j < nr + nw; j++) {
      const a = <i32>load<u16>(p + <usize>o);
      o += 2;
      if (a >= adapters) return reject(E.LORA_ERR_INDEX);
      members.push(a);
    }
  }
  unchecked(out.start[replicas] = members.length);
  if (o != len) return reject(E.LORA_ERR_TRAILING);
  out.members = StaticArray.fromArray<i32>(members);
  return out;
}
