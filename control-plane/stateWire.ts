// Encoder and decoder of the scorer-state wire format (plugin/STATE_FORMAT.md).
// The filter decodes the same bytes in assembly/state/stateWire.ts.

export const STATE_MAGIC = 0x54535250;
/** The format with no sections; what the encoder emits when a state carries none, so older filters keep decoding it. */
export const STATE_FORMAT_V1 = 1;
/** The format with tagged sections after the replica records. */
export const STATE_FORMAT_VERSION = 2;
export const STATE_HEADER_BYTES = 36;
/** `[u16 tag][u16 reserved 0][u32 length]` before each section's bytes. */
export const STATE_SECTION_HEADER_BYTES = 8;
export const STATE_MAX_SECTIONS = 32;
export const STATE_MAX_REPLICAS = 4096;
export const STATE_MAX_ADDRESS_BYTES = 63;
export const METRICS_AGE_UNKNOWN = 0xffffffff;
export const STATE_CONTENT_TYPE = 'application/vnd.prefix-router.state.v1';
export const STATE_VERSION_HEADER = 'x-prefix-router-state-version';

export interface Weights {
  prefix: number;
  queue: number;
  kvCache: number;
  inflight: number;
}

export interface ReplicaState {
  /** `ip:port` or `[v6]:port` */
  address: string;
  ready: boolean;
  /** false when the replica has never been scraped successfully */
  metricsKnown: boolean;
  waiting: number;
  running: number;
  /** 0..1 */
  kvUsage: number;
  /** 0 = unknown */
  kvCapacityTokens: number;
  /** METRICS_AGE_UNKNOWN when never scraped */
  metricsAgeMs: number;
}

/**
 * An optional part of the state, owned by one feature, which encodes and
 * decodes its own bytes. Tags are assigned in plugin/STATE_FORMAT.md; a
 * decoder keeps sections whose tag it does not know (the filter skips them).
 */
export interface StateSection {
  /** 1 ..= 65535, unique in a state */
  tag: number;
  bytes: Uint8Array;
}

export interface RouterState {
  version: bigint;
  weights: Weights;
  replicas: ReplicaState[];
  /** In tag order; absent or empty: a version 1 payload. */
  sections?: StateSection[];
}

const FLAG_READY = 1;
const FLAG_METRICS_KNOWN = 2;

/** FNV-1a (32-bit) of bytes[start, end); `h` carries on a hash of what came before `start`. */
export function fnv1a32(bytes: Uint8Array, end = bytes.length, start = 0, h = 0x811c9dc5): number {
  for (let i = start; i < end; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const ADDRESS_RE = /^(?:(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})|\[([0-9a-fA-F:.]+)\]):(\d{1,5})$/;

/** Returns null when `address` is a valid `ip:port`, else why it is not. */
export function addressError(address: string): string | null {
  const m = ADDRESS_RE.exec(address);
  if (!m) return 'must be ip:port (IPv4 a.b.c.d:port or [IPv6]:port)';
  if (m[1] !== undefined && [m[1], m[2], m[3], m[4]].some((o) => Number(o) > 255)) return 'IPv4 octet above 255';
  // The same rule as the filter's decoder (assembly/state/address.ts): an IPv6 literal has at least two colons.
  if (m[5] !== undefined && (m[5].match(/:/g) ?? []).length < 2) return 'not an IPv6 address';
  const port = Number(m[6]);
  if (port < 1 || port > 65535) return 'port must be 1..65535';
  if (address.length > STATE_MAX_ADDRESS_BYTES) return `longer than ${STATE_MAX_ADDRESS_BYTES} bytes`;
  return null;
}

export const WEIGHT_NAMES = ['prefix', 'queue', 'kvCache', 'inflight'] as const;
/** The largest weight, as the filter's configuration (plugin/config.schema.json) and decoder allow. */
export const WEIGHT_MAX = 1e6;

export interface WeightsProblem {
  /** the weight at fault (prefix, queue, kvCache, inflight), or '(weights)' for the four together */
  field: string;
  error: string;
}

/**
 * The one rule for weights, as the filter holds them: 32-bit floats, each
 * finite and in [0, WEIGHT_MAX], not all 0. A weight too small for a 32-bit
 * float is 0 there: the filter's decoder (assembly/state/stateWire.ts) refuses
 * a state whose weights are all 0 and goes on routing on the last good one.
 */
export function weightsProblem(w: Weights): WeightsProblem | null {
  for (const k of WEIGHT_NAMES) {
    const v: unknown = w[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) return { field: k, error: `weights.${k} must be a finite number` };
    if (v < 0) return { field: k, error: `weights.${k} must be >= 0` };
    if (v > WEIGHT_MAX) return { field: k, error: `weights.${k} must be <= ${WEIGHT_MAX}` };
  }
  if (WEIGHT_NAMES.every((k) => Math.fround(w[k]) === 0)) {
    const lost = WEIGHT_NAMES.find((k) => w[k] !== 0);
    return lost === undefined
      ? { field: '(weights)', error: 'weights must not all be 0' }
      : { field: lost, error: `weights.${lost} (${w[lost]}) is 0 as a 32-bit float, the filter's precision, and the weights must not all be 0` };
  }
  return null;
}

/** weightsProblem's message, or null when the weights are usable. */
export function weightsError(w: Weights): string | null {
  return weightsProblem(w)?.error ?? null;
}

const clampU16 = (n: number) => Math.max(0, Math.min(65535, Math.round(n)));
const clampU32 = (n: number) => Math.max(0, Math.min(0xffffffff, Math.round(n)));

export function encodeState(state: RouterState): Uint8Array {
  return new EncodedStateBase(state).withSections(state.sections ?? []);
}

/**
 * A state's header and replica records, encoded once, to which each poller's
 * own sections are appended: the checksum runs on from where the records end,
 * so a payload costs its sections' bytes, not the whole state again.
 * `state.sections` is ignored here.
 */
export class EncodedStateBase {
  /** The format-1 payload (no sections). */
  readonly v1: Uint8Array;
  private readonly recordsEnd: number;
  /** FNV-1a of the records as a format-2 header would start them. */
  private readonly hashV2: number;

  constructor(readonly state: RouterState) {
    if (state.version <= 0n) throw new Error('state.version must be > 0');
    // Never publish a state the filter would refuse: it would keep routing on the last one.
    const werr = weightsError(state.weights);
    if (werr) throw new Error(`state not encoded: ${werr}`);
    if (state.replicas.length > STATE_MAX_REPLICAS) throw new Error(`at most ${STATE_MAX_REPLICAS} replicas`);
    const seen = new Set<string>();
    let size = STATE_HEADER_BYTES;
    for (const r of state.replicas) {
      const err = addressError(r.address);
      if (err) throw new Error(`replica ${JSON.stringify(r.address)}: ${err}`);
      if (seen.has(r.address)) throw new Error(`replica ${r.address} listed twice`);
      seen.add(r.address);
      size += 1 + r.address.length + 17;
    }
    const buf = new Uint8Array(size + 4);
    const dv = new DataView(buf.buffer);
    dv.setUint32(0, STATE_MAGIC, true);
    dv.setUint16(4, STATE_FORMAT_V1, true);
    dv.setUint16(6, 0, true);
    dv.setBigUint64(8, state.version, true);
    dv.setFloat32(16, state.weights.prefix, true);
    dv.setFloat32(20, state.weights.queue, true);
    dv.setFloat32(24, state.weights.kvCache, true);
    dv.setFloat32(28, state.weights.inflight, true);
    dv.setUint32(32, state.replicas.length, true);
    let o = STATE_HEADER_BYTES;
    for (const r of state.replicas) {
      buf[o++] = r.address.length;
      for (let i = 0; i < r.address.length; i++) buf[o++] = r.address.charCodeAt(i);
      buf[o++] = (r.ready ? FLAG_READY : 0) | (r.metricsKnown ? FLAG_METRICS_KNOWN : 0);
      dv.setUint16(o, clampU16(r.waiting), true); o += 2;
      dv.setUint16(o, clampU16(r.running), true); o += 2;
      const kv = Number.isFinite(r.kvUsage) ? Math.max(0, Math.min(1, r.kvUsage)) : 0;
      dv.setFloat32(o, kv, true); o += 4;
      dv.setUint32(o, clampU32(r.kvCapacityTokens), true); o += 4;
      dv.setUint32(o, clampU32(r.metricsAgeMs), true); o += 4;
    }
    this.recordsEnd = o;
    dv.setUint32(o, fnv1a32(buf, o), true);
    this.v1 = buf;
    dv.setUint16(4, STATE_FORMAT_VERSION, true);
    this.hashV2 = fnv1a32(buf, o);
    dv.setUint16(4, STATE_FORMAT_V1, true);
  }

  /** The payload with these sections (in tag order); format 1 when there are none. */
  withSections(sections: readonly StateSection[]): Uint8Array {
    if (sections.length === 0) return this.v1;
    if (sections.length > STATE_MAX_SECTIONS) throw new Error(`at most ${STATE_MAX_SECTIONS} sections`);
    let size = this.recordsEnd + 4;
    let lastTag = 0;
    for (const sec of sections) {
      if (!Number.isInteger(sec.tag) || sec.tag < 1 || sec.tag > 0xffff) throw new Error(`section tag ${sec.tag} must be 1..65535`);
      if (sec.tag <= lastTag) throw new Error(`sections must be in increasing tag order, each tag once (tag ${sec.tag})`);
      lastTag = sec.tag;
      size += STATE_SECTION_HEADER_BYTES + sec.bytes.length;
    }
    const buf = new Uint8Array(size);
    buf.set(this.v1.subarray(0, this.recordsEnd));
    const dv = new DataView(buf.buffer);
    dv.setUint16(4, STATE_FORMAT_VERSION, true);
    let o = this.recordsEnd;
    for (const sec of sections) {
      dv.setUint16(o, sec.tag, true);
      dv.setUint16(o + 2, 0, true);
      dv.setUint32(o + 4, sec.bytes.length, true);
      buf.set(sec.bytes, o + STATE_SECTION_HEADER_BYTES);
      o += STATE_SECTION_HEADER_BYTES + sec.bytes.length;
    }
    dv.setUint32(o, fnv1a32(buf, o, this.recordsEnd, this.hashV2), true);
    return buf;
  }
}

export class StateDecodeError extends Error {}

export function decodeState(bytes: Uint8Array): RouterState {
  const fail = (m: string): never => { throw new StateDecodeError(m); };
  if (bytes.length < STATE_HEADER_BYTES + 4) fail('payload shorter than the header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== STATE_MAGIC) fail('bad magic');
  const format = dv.getUint16(4, true);
  if (format !== STATE_FORMAT_V1 && format !== STATE_FORMAT_VERSION) fail('unsupported format version');
  if (dv.getUint16(6, true) !== 0) fail('reserved flags set');
  const end = bytes.length - 4;
  if (dv.getUint32(end, true) !== fnv1a32(bytes, end)) fail('checksum mismatch');
  const version = dv.getBigUint64(8, true);
  if (version === 0n) fail('version 0');
  const weights: Weights = {
    prefix: dv.getFloat32(16, true),
    queue: dv.getFloat32(20, true),
    kvCache: dv.getFloat32(24, true),
    inflight: dv.getFloat32(28, true),
  };
  const werr = weightsError(weights);
  if (werr) fail(werr);
  const n = dv.getUint32(32, true);
  if (n > STATE_MAX_REPLICAS) fail('too many replicas');
  const replicas: ReplicaState[] = [];
  const seen = new Set<string>();
  let o = STATE_HEADER_BYTES;
  for (let i = 0; i < n; i++) {
    if (o + 1 > end) fail('truncated replica record');
    const len = bytes[o++];
    if (len < 1 || len > STATE_MAX_ADDRESS_BYTES || o + len + 17 > end) fail('bad address length');
    const address = String.fromCharCode(...bytes.subarray(o, o + len)); o += len;
    const aerr = addressError(address);
    if (aerr) fail(`replica ${i}: ${aerr}`);
    if (seen.has(address)) fail(`replica ${address} listed twice`);
    seen.add(address);
    const flags = bytes[o++];
    if (flags & ~3) fail('unknown replica flags');
    const waiting = dv.getUint16(o, true); o += 2;
    const running = dv.getUint16(o, true); o += 2;
    const kvUsage = dv.getFloat32(o, true); o += 4;
    if (!(kvUsage >= 0 && kvUsage <= 1)) fail('kvUsage outside 0..1');
    const kvCapacityTokens = dv.getUint32(o, true); o += 4;
    const metricsAgeMs = dv.getUint32(o, true); o += 4;
    replicas.push({
      address, ready: (flags & FLAG_READY) !== 0, metricsKnown: (flags & FLAG_METRICS_KNOWN) !== 0,
      waiting, running, kvUsage, kvCapacityTokens, metricsAgeMs,
    });
  }
  if (format === STATE_FORMAT_V1) {
    if (o !== end) fail('trailing bytes after the last replica');
    return { version, weights, replicas };
  }
  const sections: StateSection[] = [];
  while (o < end) {
    if (o + STATE_SECTION_HEADER_BYTES > end) fail('truncated section header');
    const tag = dv.getUint16(o, true);
    if (tag === 0 || (sections.length > 0 && tag <= sections[sections.length - 1].tag)) fail('section tags must increase');
    if (dv.getUint16(o + 2, true) !== 0) fail('reserved section bits set');
    const len = dv.getUint32(o + 4, true);
    o += STATE_SECTION_HEADER_BYTES;
    if (len > end - o) fail('section longer than the payload');
    if (sections.length === STATE_MAX_SECTIONS) fail('too many sections');
    sections.push({ tag, bytes: bytes.slice(o, o + len) });
    o += len;
  }
  if (sections.length === 0) fail('format 2 without sections');
  return { version, weights, replicas, sections };
}
