// State section 16 (plugin/STATE_FORMAT.md): each replica's LoRA adapters,
// running and waiting, and its adapter slots. The filter's decoder is
// assembly/state/loraSection.ts. Bounded: what does not fit the limits is
// left out (a replica that does not list an adapter is one the filter does
// not prefer for it), never an error.
import type { LoraInfo } from './loraMetrics.js';
import type { StateSection } from './stateWire.js';

export const LORA_SECTION_TAG = 16;
export const LORA_MAX_ADAPTERS = 1024;
export const LORA_MAX_BASE_MODELS = 64;
/** Adapters listed per replica, running and waiting each. */
export const LORA_MAX_PER_REPLICA = 255;
const MAX_NAME_BYTES = 255;
const FLAG_KNOWN = 1;

const enc = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: names are compared as the bytes the filter sees.
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The section for replicas in state order (null entries: no LoRA series
 * scraped); null when no replica has adapter slots, so a deployment without
 * LoRA keeps sending state format 1.
 */
export function encodeLoraSection(replicas: ReadonlyArray<LoraInfo | null | undefined>): StateSection | null {
  if (!replicas.some((r) => r && r.maxLora > 0)) return null;
  const adapters = new Map<string, number>();
  const names: Uint8Array[] = [];
  const bases = new Map<string, Uint8Array>();
  const index = (name: string): number => {
    let i = adapters.get(name);
    if (i !== undefined) return i;
    const b = enc.encode(name);
    if (b.length < 1 || b.length > MAX_NAME_BYTES || names.length >= LORA_MAX_ADAPTERS) return -1;
    adapters.set(name, (i = names.length));
    names.push(b);
    return i;
  };
  const rows = replicas.map((r) => {
    if (!r) return null;
    if (r.baseModel && !bases.has(r.baseModel) && bases.size < LORA_MAX_BASE_MODELS) {
      const b = enc.encode(r.baseModel);
      if (b.length >= 1 && b.length <= MAX_NAME_BYTES) bases.set(r.baseModel, b);
    }
    const pick = (list: string[]) => list.map(index).filter((i) => i >= 0).slice(0, LORA_MAX_PER_REPLICA);
    return { maxLora: Math.max(0, Math.min(0xffff, Math.round(r.maxLora))), running: pick(r.running), waiting: pick(r.waiting) };
  });
  let size = 4;
  for (const n of names) size += 1 + n.length;
  for (const b of bases.values()) size += 1 + b.length;
  size += 4;
  for (const r of rows) size += 5 + (r ? 2 * (r.running.length + r.waiting.length) : 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, names.length, true);
  dv.setUint16(2, bases.size, true);
  let o = 4;
  for (const n of [...names, ...bases.values()]) { out[o++] = n.length; out.set(n, o); o += n.length; }
  dv.setUint32(o, rows.length, true); o += 4;
  for (const r of rows) {
    if (!r) { o += 5; continue; }
    out[o] = FLAG_KNOWN;
    dv.setUint16(o + 1, r.maxLora, true);
    out[o + 3] = r.running.length;
    out[o + 4] = r.waiting.length;
    o += 5;
    for (const a of [...r.running, ...r.waiting]) { dv.setUint16(o, a, true); o += 2; }
  }
  return { tag: LORA_SECTION_TAG, bytes: out };
}

/** Reads section 16 back (tools and tests); throws on a malformed one. `replicaCount`: the state's. */
export function decodeLoraSection(bytes: Uint8Array, replicaCount: number): { baseModels: string[]; replicas: Array<LoraInfo | null> } {
  const fail = (m: string): never => { throw new Error(`LoRA section (16): ${m}`); };
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) fail('truncated');
  const na = dv.getUint16(0, true), nb = dv.getUint16(2, true);
  if (na > LORA_MAX_ADAPTERS || nb > LORA_MAX_BASE_MODELS) fail('too many adapters or base models');
  let o = 4;
  const name = (): string => {
    if (o + 1 > bytes.length) fail('truncated');
    const n = bytes[o]!;
    if (n < 1 || o + 1 + n > bytes.length) fail('truncated');
    let s = '';
    try { s = dec.decode(bytes.subarray(o + 1, o + 1 + n)); } catch { fail('a name is not UTF-8'); }
    o += 1 + n;
    return s;
  };
  const adapters = Array.from({ length: na }, name);
  if (new Set(adapters).size !== adapters.length) fail('adapter listed twice');
  const baseModels = Array.from({ length: nb }, name);
  if (o + 4 > bytes.length) fail('truncated');
  if (dv.getUint32(o, true) !== replicaCount) fail("replica count differs from the state's");
  o += 4;
  const replicas: Array<LoraInfo | null> = [];
  for (let i = 0; i < replicaCount; i++) {
    if (o + 5 > bytes.length) fail('truncated');
    const flags = bytes[o]!, maxLora = dv.getUint16(o + 1, true), nr = bytes[o + 3]!, nw = bytes[o + 4]!;
    o += 5;
    if (flags & ~FLAG_KNOWN) fail('bad replica flags');
    if (!(flags & FLAG_KNOWN)) {
      if (maxLora || nr || nw) fail('bad replica flags');
      replicas.push(null);
      continue;
    }
    if (o + 2 * (nr + nw) > bytes.length) fail('truncated');
    const list = (n: number) => Array.from({ length: n }, () => {
      const a = dv.getUint16(o, true);
      o += 2;
      if (a >= na) fail('adapter index out of range');
      return adapters[a]!;
    });
    const running = list(nr);
    replicas.push({ maxLora, running, waiting: list(nw) });
  }
  if (o !== bytes.length) fail('trailing bytes');
  return { baseModels, replicas };
}
