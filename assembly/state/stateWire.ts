// Decoder of the scorer-state wire format (plugin/STATE_FORMAT.md); the
// control plane's encoder is control-plane/stateWire.ts. Every rule is
// checked before anything is used: a bad payload is rejected whole.
import { xxh64 } from "../prefix/hash";
import { ReplicaTable } from "./replicaTable";
import { isValidAddressBytes } from "./address";
import { decodeSection, sectionError } from "./stateSections";
import * as E from "../errors";

export const STATE_MAGIC: u32 = 0x54535250;
export const STATE_HEADER_BYTES: i32 = 36;
export const STATE_MAX_REPLICAS: u32 = 4096;
const RECORD_FIXED_BYTES: i32 = 17;
/** Format 1: no sections; format 2: tagged sections after the replica records. */
const FORMAT_V1: u16 = 1;
const FORMAT_V2: u16 = 2;
/** `[u16 tag][u16 reserved 0][u32 length]` */
const SECTION_HEADER_BYTES: i32 = 8;
const MAX_SECTIONS: i32 = 32;

export let stateError: string = "";

export function fnv1a32(p: usize, len: i32): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i = 0; i < len; i++) {
    h ^= <u32>load<u8>(p + <usize>i);
    h *= 0x01000193;
  }
  return h;
}

/** The largest weight, as the configuration's (config.ts) and the control plane's (WEIGHT_MAX). */
export const STATE_WEIGHT_MAX: f32 = 1e6;

@inline function weightOk(w: f32): bool {
  return w >= 0 && w <= STATE_WEIGHT_MAX; // false for NaN and infinities too
}

@inline function sameBytes(b: ArrayBuffer, p: usize, len: i32): bool {
  return b.byteLength == len && memory.compare(changetype<usize>(b), p, <usize>len) == 0;
}

function reject(msg: string): ReplicaTable | null {
  stateError = msg;
  return null;
}

/**
 * Decodes a state payload; null when it breaks a rule (stateError says which).
 * `routedOn`, the table the VM routes on: a replica at the same place with the
 * same address bytes takes its address, bytes and hash from there (validated
 * and hashed when that state was decoded), which spares most of a version's
 * decoding when the replicas stay (fleet news, scrapes).
 */
export function decodeState(p: usize, len: i32, routedOn: ReplicaTable | null = null): ReplicaTable | null {
  stateError = "";
  if (len < STATE_HEADER_BYTES + 4) return reject(E.STATE_ERR_SHORT);
  if (load<u32>(p) != STATE_MAGIC) return reject(E.STATE_ERR_MAGIC);
  const format = load<u16>(p, 4);
  if (format != FORMAT_V1 && format != FORMAT_V2) return reject(E.STATE_ERR_FORMAT);
  if (load<u16>(p, 6) != 0) return reject(E.STATE_ERR_FLAGS);
  const end = len - 4;
  if (load<u32>(p + <usize>end) != fnv1a32(p, end)) return reject(E.STATE_ERR_CHECKSUM);
  const version = load<u64>(p, 8);
  if (version == 0) return reject(E.STATE_ERR_VERSION);
  const wp = load<f32>(p, 16), wq = load<f32>(p, 20), wk = load<f32>(p, 24), wi = load<f32>(p, 28);
  if (!weightOk(wp) || !weightOk(wq) || !weightOk(wk) || !weightOk(wi) || wp + wq + wk + wi == 0) return reject(E.STATE_ERR_WEIGHTS);
  const n = load<u32>(p, 32);
  if (n > STATE_MAX_REPLICAS) return reject(E.STATE_ERR_COUNT);
  const t = new ReplicaTable();
  t.version = version;
  t.fromControlPlane = true;
  t.weights.prefix = wp;
  t.weights.queue = wq;
  t.weights.kvCache = wk;
  t.weights.inflight = wi;
  let o = STATE_HEADER_BYTES;
  for (let i: u32 = 0; i < n; i++) {
    if (o + 1 > end) return reject(E.STATE_ERR_TRUNCATED);
    const alen = <i32>load<u8>(p + <usize>o);
    o++;
    if (alen < 1 || alen > 63 || o + alen + RECORD_FIXED_BYTES > end) return reject(E.STATE_ERR_TRUNCATED);
    const ap = p + <usize>o;
    let address: string;
    let bytes: ArrayBuffer;
    let h: u64;
    if (routedOn !== null && routedOn.fromControlPlane && <i32>i < routedOn.n && sameBytes(unchecked(routedOn.addressBytes[i]), ap, alen)) {
      address = unchecked(routedOn.addresses[i]);
      bytes = unchecked(routedOn.addressBytes[i]);
      h = unchecked(routedOn.addressHash[i]);
    } else {
      if (!isValidAddressBytes(ap, alen)) return reject(E.STATE_ERR_ADDRESS);
      address = String.UTF8.decodeUnsafe(ap, <usize>alen);
      bytes = new ArrayBuffer(alen);
      memory.copy(changetype<usize>(bytes), ap, <usize>alen);
      h = xxh64(ap, <usize>alen, 0);
    }
    if (t.indexOfHashed(address, h) >= 0) return reject(E.STATE_ERR_DUPLICATE);
    o += alen;
    const q = p + <usize>o;
    const flags = load<u8>(q);
    if ((flags & ~3) != 0) return reject(E.STATE_ERR_REPLICA_FLAGS);
    const kv = load<f32>(q, 5);
    if (!(kv >= 0 && kv <= 1)) return reject(E.STATE_ERR_KV);
    t.addHashed(address, bytes, h, (flags & 1) != 0, (flags & 2) != 0, <f64>load<u16>(q, 1), <f64>load<u16>(q, 3), <f64>kv, load<u32>(q, 9), load<u32>(q, 13));
    o += RECORD_FIXED_BYTES;
  }
  if (format == FORMAT_V1) return o == end ? t : reject(E.STATE_ERR_TRAILING);
  let lastTag: u32 = 0;
  let sections = 0;
  while (o < end) {
    if (o + SECTION_HEADER_BYTES > end) return reject(E.STATE_ERR_SECTION_TRUNCATED);
    const q = p + <usize>o;
    const tag = <u32>load<u16>(q);
    if (tag <= lastTag) return reject(E.STATE_ERR_SECTION_ORDER);
    if (load<u16>(q, 2) != 0) return reject(E.STATE_ERR_SECTION_RESERVED);
    const slen = load<u32>(q, 4);
    o += SECTION_HEADER_BYTES;
    if (slen > <u32>(end - o)) return reject(E.STATE_ERR_SECTION_TRUNCATED);
    if (++sections > MAX_SECTIONS) return reject(E.STATE_ERR_SECTION_COUNT);
    if (!decodeSection(t, tag, p + <usize>o, <i32>slen)) return reject(sectionError);
    lastTag = tag;
    o += <i32>slen;
  }
  return sections > 0 ? t : reject(E.STATE_ERR_SECTION_NONE);
}
