// The gateway fleet's exchange on the wire (plugin/STATE_FORMAT.md, "Gateway
// fleet"): the report a gateway sends with its long poll (POST /v1/state
// body) and the state sections the control plane answers with, tag 1
// (placements other gateways made), tag 2 (the other gateways' work per
// replica), tag 3 (the poller's position among the live gateways) and tag 4
// (the content the other gateways wrote per replica). The filter encodes the
// report in assembly/state/fleetReport.ts
// and decodes the sections in assembly/state/fleetSections.ts; tests encode
// with one side and decode with the other.
import { fnv1a32, type RouterState } from './stateWire.js';

/** The bytes `P R F R`, little-endian. */
export const REPORT_MAGIC = 0x52465250;
/** Format 2 adds the content records; format 1 (filters before them) is still taken. */
export const REPORT_FORMAT = 2;
export const REPORT_FORMAT_WITHOUT_CONTENT = 1;
/** Format 1's header; format 2's adds [u32 contentCount][u32 reserved 0]. */
export const REPORT_HEADER_BYTES = 32;
export const REPORT_CONTENT_HEADER_BYTES = 8;
export const REPORT_WORK_BYTES = 16;
export const REPORT_CONTENT_BYTES = 12;
export const REPORT_PLACEMENT_BYTES = 20;
export const MAX_REPORT_WORK = 4096;
export const MAX_REPORT_CONTENT = 4096;
export const MAX_REPORT_PLACEMENTS = 8192;
export const MAX_REPORT_BYTES = REPORT_HEADER_BYTES + REPORT_CONTENT_HEADER_BYTES + MAX_REPORT_WORK * REPORT_WORK_BYTES
  + MAX_REPORT_CONTENT * REPORT_CONTENT_BYTES + MAX_REPORT_PLACEMENTS * REPORT_PLACEMENT_BYTES + 4;
/** Tokens per unit of a content count on the wire (as in the gateway blob's rows). */
export const CONTENT_UNIT_TOKENS = 64;
export const REPORT_CONTENT_TYPE = 'application/vnd.prefix-router.fleet-report.v1';

export const SECTION_PLACEMENTS = 1;
export const SECTION_OTHER_WORK = 2;
export const PLACEMENTS_HEADER_BYTES = 12;
export const PLACEMENT_RECORD_BYTES = 16;
export const MAX_SECTION_PLACEMENTS = 16384;
export const SECTION_FLEET_POSITION = 3;
export const FLEET_POSITION_BYTES = 4;
/** Sections 2 and 4: [u32 count], then records that start [u16 replica][u16 reserved 0]. */
export const REPLICA_RECORDS_HEADER_BYTES = 4;
const RECORD_REPLICA_BYTES = 4;
export const OTHER_WORK_RECORD_BYTES = 12;
export const SECTION_OTHER_CONTENT = 4;
export const OTHER_CONTENT_RECORD_BYTES = 8;
/** Blocks of the deepest checkpoint: the filter's 1 MiB body limit in 64-byte blocks. */
export const MAX_CHECKPOINT_DEPTH = 16384;

/** Checkpoint depths (plugin/STATE_FORMAT.md): every depth up to 16 blocks, then every 16th, up to MAX_CHECKPOINT_DEPTH. */
export function isCheckpointDepth(d: number): boolean {
  return Number.isInteger(d) && d >= 1 && d <= MAX_CHECKPOINT_DEPTH && (d <= 16 || d % 16 === 0);
}

/** A replica's queued prefill tokens and decode work (prefill-token equivalents), as one gateway counts them. */
export interface ReplicaWork { queuedTokens: number; decodeWork: number }

export interface ReportedPlacement {
  /** chained hash of the prompt's blocks up to the checkpoint */
  hash: bigint;
  /** xxHash64 (seed 0) of the replica's address */
  replica: bigint;
  /** blocks */
  depth: number;
}

/** Tokens a gateway's worker VMs have written into a replica's cache since they started, in CONTENT_UNIT_TOKENS. */
export interface ReplicaContent { writtenUnits: number }

export interface PollReport {
  /** random, made once per gateway (Envoy), never 0 */
  gatewayId: bigint;
  /** `through` of the last placements section the gateway received; 0 for none */
  placementsSeen: bigint;
  work: Array<ReplicaWork & { replica: bigint }>;
  /** empty in a format-1 report */
  content: Array<ReplicaContent & { replica: bigint }>;
  placements: ReportedPlacement[];
}

export interface PlacementsSection {
  /** the exchange's newest placement sequence number this section accounts for */
  through: bigint;
  /** `replica`: index into the state's replica records */
  placements: Array<{ hash: bigint; replica: number; depth: number }>;
}

/** `replica`: index into the state's replica records, each at most once. */
export type OtherWorkSection = Array<ReplicaWork & { replica: number }>;

/** `replica`: index into the state's replica records, each at most once. */
export type OtherContentSection = Array<ReplicaContent & { replica: number }>;

/**
 * Where the poller stands among the live gateways, sorted by gatewayId:
 * `index` < `count`. Gateways that see the same replicas as idle at once
 * each prefer their own share of them (plugin/STATE_FORMAT.md, section 3).
 */
export interface FleetPosition { index: number; count: number }

export class FleetWireError extends Error {}

const fail = (m: string): never => { throw new FleetWireError(m); };
const clampU32 = (n: number) => (Number.isFinite(n) ? Math.max(0, Math.min(0xffffffff, Math.round(n))) : 0);

/** `format` 1 leaves the content out (a filter from before it). */
export function encodeReport(r: PollReport, format: number = REPORT_FORMAT): Uint8Array {
  if (format !== REPORT_FORMAT && format !== REPORT_FORMAT_WITHOUT_CONTENT) fail(`report format ${format} unknown`);
  if (r.gatewayId <= 0n || r.gatewayId > 0xffffffffffffffffn) fail('gatewayId must be a non-zero u64');
  if (r.work.length > MAX_REPORT_WORK) fail(`at most ${MAX_REPORT_WORK} work records`);
  if (r.placements.length > MAX_REPORT_PLACEMENTS) fail(`at most ${MAX_REPORT_PLACEMENTS} placements`);
  const content = format === REPORT_FORMAT ? r.content : [];
  if (content.length > MAX_REPORT_CONTENT) fail(`at most ${MAX_REPORT_CONTENT} content records`);
  const header = headerBytes(format);
  const size = header + r.work.length * REPORT_WORK_BYTES + content.length * REPORT_CONTENT_BYTES + r.placements.length * REPORT_PLACEMENT_BYTES + 4;
  const buf = new Uint8Array(size);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, REPORT_MAGIC, true);
  dv.setUint16(4, format, true);
  dv.setUint16(6, 0, true);
  dv.setBigUint64(8, r.gatewayId, true);
  dv.setBigUint64(16, r.placementsSeen, true);
  dv.setUint32(24, r.work.length, true);
  dv.setUint32(28, r.placements.length, true);
  if (format === REPORT_FORMAT) dv.setUint32(32, content.length, true);
  let o = header;
  for (const w of r.work) {
    dv.setBigUint64(o, w.replica, true);
    dv.setUint32(o + 8, clampU32(w.queuedTokens), true);
    dv.setUint32(o + 12, clampU32(w.decodeWork), true);
    o += REPORT_WORK_BYTES;
  }
  for (const c of content) {
    dv.setBigUint64(o, c.replica, true);
    dv.setUint32(o + 8, clampU32(c.writtenUnits), true);
    o += REPORT_CONTENT_BYTES;
  }
  for (const p of r.placements) {
    if (!isCheckpointDepth(p.depth)) fail(`depth ${p.depth} is not a checkpoint depth`);
    dv.setBigUint64(o, p.hash, true);
    dv.setBigUint64(o + 8, p.replica, true);
    dv.setUint32(o + 16, p.depth, true);
    o += REPORT_PLACEMENT_BYTES;
  }
  dv.setUint32(o, fnv1a32(buf, o), true);
  return buf;
}

const headerBytes = (format: number) => REPORT_HEADER_BYTES + (format === REPORT_FORMAT ? REPORT_CONTENT_HEADER_BYTES : 0);

export function decodeReport(bytes: Uint8Array): PollReport {
  if (bytes.length < REPORT_HEADER_BYTES + 4) fail('report shorter than its header');
  if (bytes.length > MAX_REPORT_BYTES) fail(`report longer than ${MAX_REPORT_BYTES} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== REPORT_MAGIC) fail('bad report magic');
  const format = dv.getUint16(4, true);
  if (format !== REPORT_FORMAT && format !== REPORT_FORMAT_WITHOUT_CONTENT) fail('unsupported report format');
  if (dv.getUint16(6, true) !== 0) fail('reserved report flags set');
  const header = headerBytes(format);
  if (bytes.length < header + 4) fail('report shorter than its header');
  const end = bytes.length - 4;
  if (dv.getUint32(end, true) !== fnv1a32(bytes, end)) fail('report checksum mismatch');
  const gatewayId = dv.getBigUint64(8, true);
  if (gatewayId === 0n) fail('gatewayId 0');
  const nw = dv.getUint32(24, true);
  const np = dv.getUint32(28, true);
  const nc = format === REPORT_FORMAT ? dv.getUint32(32, true) : 0;
  if (format === REPORT_FORMAT && dv.getUint32(36, true) !== 0) fail('reserved report bytes set');
  if (nw > MAX_REPORT_WORK) fail('too many work records');
  if (nc > MAX_REPORT_CONTENT) fail('too many content records');
  if (np > MAX_REPORT_PLACEMENTS) fail('too many placements');
  if (header + nw * REPORT_WORK_BYTES + nc * REPORT_CONTENT_BYTES + np * REPORT_PLACEMENT_BYTES !== end) fail('report length does not match its counts');
  const work: PollReport['work'] = [];
  const seen = new Set<bigint>();
  let o = header;
  for (let i = 0; i < nw; i++, o += REPORT_WORK_BYTES) {
    const replica = dv.getBigUint64(o, true);
    if (seen.has(replica)) fail('a replica has two work records');
    seen.add(replica);
    work.push({ replica, queuedTokens: dv.getUint32(o + 8, true), decodeWork: dv.getUint32(o + 12, true) });
  }
  const content: PollReport['content'] = [];
  seen.clear();
  for (let i = 0; i < nc; i++, o += REPORT_CONTENT_BYTES) {
    const replica = dv.getBigUint64(o, true);
    if (seen.has(replica)) fail('a replica has two content records');
    seen.add(replica);
    content.push({ replica, writtenUnits: dv.getUint32(o + 8, true) });
  }
  const placements: ReportedPlacement[] = [];
  for (let i = 0; i < np; i++, o += REPORT_PLACEMENT_BYTES) {
    const depth = dv.getUint32(o + 16, true);
    if (!isCheckpointDepth(depth)) fail(`placement ${i}: depth ${depth} is not a checkpoint depth`);
    placements.push({ hash: dv.getBigUint64(o, true), replica: dv.getBigUint64(o + 8, true), depth });
  }
  return { gatewayId, placementsSeen: dv.getBigUint64(16, true), work, content, placements };
}

export function encodePlacementsSection(s: PlacementsSection, replicaCount: number): Uint8Array {
  if (s.placements.length > MAX_SECTION_PLACEMENTS) fail(`at most ${MAX_SECTION_PLACEMENTS} placements in a section`);
  const buf = new Uint8Array(PLACEMENTS_HEADER_BYTES + s.placements.length * PLACEMENT_RECORD_BYTES);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, s.through, true);
  dv.setUint32(8, s.placements.length, true);
  let o = PLACEMENTS_HEADER_BYTES;
  for (const p of s.placements) {
    if (!Number.isInteger(p.replica) || p.replica < 0 || p.replica >= replicaCount) fail(`replica index ${p.replica} outside the state's ${replicaCount}`);
    if (!isCheckpointDepth(p.depth)) fail(`depth ${p.depth} is not a checkpoint depth`);
    dv.setBigUint64(o, p.hash, true);
    dv.setUint16(o + 8, p.replica, true);
    dv.setUint16(o + 10, 0, true);
    dv.setUint32(o + 12, p.depth, true);
    o += PLACEMENT_RECORD_BYTES;
  }
  return buf;
}

export function decodePlacementsSection(bytes: Uint8Array, replicaCount: number): PlacementsSection {
  if (bytes.length < PLACEMENTS_HEADER_BYTES) fail('placements section shorter than its header');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(8, true);
  if (n > MAX_SECTION_PLACEMENTS) fail('too many placements');
  if (bytes.length !== PLACEMENTS_HEADER_BYTES + n * PLACEMENT_RECORD_BYTES) fail('placements section length does not match its count');
  const placements: PlacementsSection['placements'] = [];
  for (let i = 0, o = PLACEMENTS_HEADER_BYTES; i < n; i++, o += PLACEMENT_RECORD_BYTES) {
    const replica = dv.getUint16(o + 8, true);
    if (replica >= replicaCount) fail(`placement ${i}: replica index ${replica} outside the state`);
    if (dv.getUint16(o + 10, true) !== 0) fail(`placement ${i}: reserved bits set`);
    const depth = dv.getUint32(o + 12, true);
    if (!isCheckpointDepth(depth)) fail(`placement ${i}: depth ${depth} is not a checkpoint depth`);
    placements.push({ hash: dv.getBigUint64(o, true), replica, depth });
  }
  return { through: dv.getBigUint64(0, true), placements };
}

/**
 * A section of per-replica records (tags 2 and 4): [u32 count], then per record [u16 replica][u16 reserved 0]
 * and the record's own fields, which `write` and `read` handle; each replica at most once. `what` names them in errors.
 */
interface ReplicaRecords<T> { what: string; fieldBytes: number; write(dv: DataView, o: number, r: T): void; read(dv: DataView, o: number): Omit<T, 'replica'> }

function encodeReplicaRecords<T extends { replica: number }>(f: ReplicaRecords<T>, records: readonly T[], replicaCount: number): Uint8Array {
  if (records.length > replicaCount) fail(`more ${f.what} records than replicas`);
  const recordBytes = RECORD_REPLICA_BYTES + f.fieldBytes;
  const buf = new Uint8Array(REPLICA_RECORDS_HEADER_BYTES + records.length * recordBytes);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, records.length, true);
  const seen = new Set<number>();
  let o = REPLICA_RECORDS_HEADER_BYTES;
  for (const r of records) {
    if (!Number.isInteger(r.replica) || r.replica < 0 || r.replica >= replicaCount) fail(`replica index ${r.replica} outside the state's ${replicaCount}`);
    if (seen.has(r.replica)) fail(`replica index ${r.replica} listed twice`);
    seen.add(r.replica);
    dv.setUint16(o, r.replica, true);
    dv.setUint16(o + 2, 0, true);
    f.write(dv, o + RECORD_REPLICA_BYTES, r);
    o += recordBytes;
  }
  return buf;
}

function decodeReplicaRecords<T extends { replica: number }>(f: ReplicaRecords<T>, bytes: Uint8Array, replicaCount: number): T[] {
  if (bytes.length < REPLICA_RECORDS_HEADER_BYTES) fail(`${f.what} section shorter than its header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true);
  const recordBytes = RECORD_REPLICA_BYTES + f.fieldBytes;
  if (n > replicaCount) fail(`more ${f.what} records than replicas`);
  if (bytes.length !== REPLICA_RECORDS_HEADER_BYTES + n * recordBytes) fail(`${f.what} section length does not match its count`);
  const out: T[] = [];
  const seen = new Set<number>();
  for (let i = 0, o = REPLICA_RECORDS_HEADER_BYTES; i < n; i++, o += recordBytes) {
    const replica = dv.getUint16(o, true);
    if (replica >= replicaCount) fail(`${f.what} record ${i}: replica index ${replica} outside the state`);
    if (seen.has(replica)) fail(`${f.what} record ${i}: replica ${replica} listed twice`);
    seen.add(replica);
    if (dv.getUint16(o + 2, true) !== 0) fail(`${f.what} record ${i}: reserved bits set`);
    out.push({ replica, ...f.read(dv, o + RECORD_REPLICA_BYTES) } as T);
  }
  return out;
}

const WORK_RECORDS: ReplicaRecords<OtherWorkSection[number]> = {
  what: 'work', fieldBytes: OTHER_WORK_RECORD_BYTES - RECORD_REPLICA_BYTES,
  write: (dv, o, w) => { dv.setUint32(o, clampU32(w.queuedTokens), true); dv.setUint32(o + 4, clampU32(w.decodeWork), true); },
  read: (dv, o) => ({ queuedTokens: dv.getUint32(o, true), decodeWork: dv.getUint32(o + 4, true) }),
};

const CONTENT_RECORDS: ReplicaRecords<OtherContentSection[number]> = {
  what: 'content', fieldBytes: OTHER_CONTENT_RECORD_BYTES - RECORD_REPLICA_BYTES,
  write: (dv, o, c) => { dv.setUint32(o, clampU32(c.writtenUnits), true); },
  read: (dv, o) => ({ writtenUnits: dv.getUint32(o, true) }),
};

export const encodeOtherWorkSection = (work: OtherWorkSection, replicaCount: number): Uint8Array => encodeReplicaRecords(WORK_RECORDS, work, replicaCount);
export const decodeOtherWorkSection = (bytes: Uint8Array, replicaCount: number): OtherWorkSection => decodeReplicaRecords(WORK_RECORDS, bytes, replicaCount);
export const encodeOtherContentSection = (content: OtherContentSection, replicaCount: number): Uint8Array => encodeReplicaRecords(CONTENT_RECORDS, content, replicaCount);
export const decodeOtherContentSection = (bytes: Uint8Array, replicaCount: number): OtherContentSection => decodeReplicaRecords(CONTENT_RECORDS, bytes, replicaCount);

export function encodeFleetPosition(p: FleetPosition): Uint8Array {
  if (!Number.isInteger(p.count) || p.count < 1 || p.count > 0xffff) fail(`gateway count ${p.count} outside 1..65535`);
  if (!Number.isInteger(p.index) || p.index < 0 || p.index >= p.count) fail(`gateway index ${p.index} outside 0..${p.count - 1}`);
  const buf = new Uint8Array(FLEET_POSITION_BYTES);
  const dv = new DataView(buf.buffer);
  dv.setUint16(0, p.index, true);
  dv.setUint16(2, p.count, true);
  return buf;
}

export function decodeFleetPosition(bytes: Uint8Array): FleetPosition {
  if (bytes.length !== FLEET_POSITION_BYTES) fail(`fleet position section must be ${FLEET_POSITION_BYTES} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = dv.getUint16(0, true);
  const count = dv.getUint16(2, true);
  if (count < 1 || index >= count) fail(`fleet position ${index} of ${count}: the index must be below a count of at least 1`);
  return { index, count };
}

/** Decodes the fleet's sections of a decoded state (throws FleetWireError where the filter would refuse the state). */
export function fleetSectionsOf(state: RouterState): {
  placements: PlacementsSection | null; otherWork: OtherWorkSection | null; position: FleetPosition | null; otherContent: OtherContentSection | null;
} {
  const find = (tag: number) => state.sections?.find((s) => s.tag === tag)?.bytes;
  const p = find(SECTION_PLACEMENTS);
  const w = find(SECTION_OTHER_WORK);
  const g = find(SECTION_FLEET_POSITION);
  const c = find(SECTION_OTHER_CONTENT);
  return {
    placements: p ? decodePlacementsSection(p, state.replicas.length) : null,
    otherWork: w ? decodeOtherWorkSection(w, state.replicas.length) : null,
    position: g ? decodeFleetPosition(g) : null,
    otherContent: c ? decodeOtherContentSection(c, state.replicas.length) : null,
  };
}
