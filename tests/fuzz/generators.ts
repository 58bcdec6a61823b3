// Generated and mutated inputs for the filter: requests (headers, bodies, chunking,
// trailers), scorer-state payloads and plugin configurations. Everything is drawn from
// a seeded Rng, so a failing case is reproduced by its seed and index.
import type { HeaderPairs } from '../../host/index.js';
import { encodeState, fnv1a32, type ReplicaState, type RouterState, type StateSection } from '../../control-plane/stateWire.js';
import {
  encodeFleetPosition, encodeOtherContentSection, encodeOtherWorkSection, encodePlacementsSection, encodeReport, SECTION_FLEET_POSITION,
  SECTION_OTHER_CONTENT, SECTION_OTHER_WORK, SECTION_PLACEMENTS,
} from '../../control-plane/fleetWire.js';
import { encodeLoraSection } from '../../control-plane/loraSection.js';
import { encodeContextSection } from '../../control-plane/contextSection.js';
import { encodeObservability } from '../../control-plane/observabilitySection.js';
import { Rng } from './rng.js';

const enc = new TextEncoder();

/** Headers through which a client might try to steer the upstream. */
export const HOSTILE_DESTINATIONS = ['6.6.6.6:22', '169.254.169.254:80', '127.0.0.1:9090', '[::1]:22', '6.6.6.6:22,7.7.7.7:22', ' 6.6.6.6:22', 'evil.example:80', ''];
const DESTINATION_NAMES = ['x-gateway-destination-endpoint', 'X-Gateway-Destination-Endpoint', 'X-GATEWAY-DESTINATION-ENDPOINT', 'x-prefix-router-fallback-endpoint', 'X-Prefix-Router-Fallback-Endpoint'];

const WORDS = ['the', 'system', 'prompt', 'you', 'are', 'a', 'helpful', 'assistant', 'answer', 'briefly', 'cache', 'prefix', 'router', 'token', 'kv', 'block', 'envoy', 'wasm'];
const UNICODE = ['é', 'ß', 'Ω', 'ж', '中文', '日本語', '한국어', 'עברית', 'العربية', '😀', '👩‍👩‍👧‍👦', '\u0301', '\u200b', '\u202e', '\ufeff', '\ud83d\ude00', '𝔘𝔫𝔦', '\u0000', '\t', '\n'];
/** JSON escapes, including lone and reversed surrogates and truncated ones. */
const ESCAPES = ['\\n', '\\"', '\\\\', '\\/', '\\u0041', '\\u00e9', '\\ud83d\\ude00', '\\ud800', '\\udc00', '\\udc00\\ud800', '\\u12', '\\x41', '\\', '\\u0000', '\\uffff', '\\b\\f\\r\\t'];
const MODELS = ['qwen', 'Qwen/Qwen2.5-3B-Instruct', '', 'm'.repeat(300), '中文模型', '\\u0000'];

export function words(rng: Rng, n: number): string {
  let s = '';
  while (s.length < n) s += rng.pick(WORDS) + ' ';
  return s.slice(0, n);
}

/** Prompt text as raw JSON string content (escapes already in JSON form). */
function promptJson(rng: Rng, maxLen: number): string {
  const len = rng.weighted([[6, rng.int(200)], [3, rng.int(4000)], [1, rng.int(maxLen)]]);
  let s = '';
  while (s.length < len) {
    const k = rng.int(10);
    if (k < 6) s += words(rng, 1 + rng.int(80));
    else if (k < 8) s += JSON.stringify(rng.pick(UNICODE)).slice(1, -1);
    else if (k < 9) s += rng.pick(UNICODE); // raw UTF-8, unescaped control characters included
    else s += rng.pick(ESCAPES);
  }
  return s;
}

function jsonString(rng: Rng, maxLen: number): string {
  return '"' + promptJson(rng, maxLen) + '"';
}

function nested(rng: Rng, depth: number): string {
  const open = rng.chance(0.5) ? '[' : '{"a":';
  const close = open === '[' ? ']' : '}';
  const inner = rng.chance(0.5) ? jsonString(rng, 50) : String(rng.int(1000));
  const closed = rng.chance(0.7);
  return open.repeat(depth) + inner + (closed ? close.repeat(depth) : '');
}

function chatContent(rng: Rng, maxLen: number): string {
  switch (rng.int(7)) {
    case 0: return 'null';
    case 1: return `[{"type":"text","text":${jsonString(rng, maxLen)}},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]`;
    case 2: return `[${jsonString(rng, 40)}, 5, null, {"type":"text"}]`;
    case 3: return nested(rng, 1 + rng.int(3000));
    case 4: return String(rng.int(1e9));
    default: return jsonString(rng, maxLen);
  }
}

/** A structurally plausible OpenAI request body (completions or chat), sometimes with odd parts. */
export function plausibleBody(rng: Rng, chat: boolean, maxLen: number): string {
  const model = rng.chance(0.9) ? JSON.stringify(rng.pick(MODELS)) : rng.pick(['5', 'null', '{"x":1}', '["a"]']);
  const extra = rng.chance(0.3) ? `,"stream":${rng.pick(['true', 'false', '"yes"'])},"max_tokens":${rng.pick(['16', '-1', '1e999', '"x"', '99999999999999999999'])}` : '';
  const dup = rng.chance(0.05) ? (chat ? ',"messages":[]' : ',"prompt":""') : '';
  if (!chat) {
    const prompt = rng.weighted([
      [8, () => jsonString(rng, maxLen)],
      [1, () => `[${Array.from({ length: 1 + rng.int(8) }, () => jsonString(rng, maxLen / 8)).join(',')}]`],
      [1, () => `[${Array.from({ length: 1 + rng.int(300) }, () => rng.int(150000)).join(',')}]`],
      [1, () => nested(rng, 1 + rng.int(5000))],
      [1, () => rng.pick(['null', '5', '{}', '[]', '""', 'true'])],
    ] as const)();
    const parts = [`"model":${model}`, `"prompt":${prompt}`];
    if (rng.chance(0.3)) parts.reverse();
    return `{${parts.join(',')}${extra}${dup}}`;
  }
  const n = rng.weighted([[8, 1 + rng.int(4)], [2, rng.int(200)]]);
  const msgs: string[] = [];
  for (let i = 0; i < n; i++) {
    const role = rng.chance(0.9) ? JSON.stringify(rng.pick(['system', 'user', 'assistant', 'tool', '', 'ROLE😀'])) : rng.pick(['null', '1', '[]']);
    const content = chatContent(rng, maxLen / Math.max(1, n));
    const m = rng.int(10);
    if (m === 0) msgs.push(`{"content":${content}}`);
    else if (m === 1) msgs.push(`{"content":${content},"role":${role},"name":"x"}`);
    else if (m === 2) msgs.push(rng.pick(['null', '"str"', '7', '[]']));
    else msgs.push(`{"role":${role},"content":${content}}`);
  }
  const messages = rng.chance(0.95) ? `[${msgs.join(',')}]` : rng.pick(['"not an array"', 'null', '{}']);
  return `{"model":${model},"messages":${messages}${extra}${dup}}`;
}

const JSON_TOKENS = ['{', '}', '[', ']', '"', ':', ',', '\\', '\\u', 'null', 'true', '-', '1e999', '0x10', '\x00', '\xff', '"prompt":', '"messages":', '"content":'];

/** Byte-level mutations: flips, cuts, insertions, duplicated and deleted runs. */
export function mutateBytes(rng: Rng, input: Uint8Array, edits: number): Uint8Array {
  let b = input;
  for (let e = 0; e < edits; e++) {
    const at = rng.int(b.length + 1);
    switch (rng.int(7)) {
      case 0: { // flip bits of a byte
        if (b.length === 0) break;
        const c = Uint8Array.from(b);
        c[Math.min(at, c.length - 1)] ^= 1 << rng.int(8);
        b = c;
        break;
      }
      case 1: // truncate
        b = b.subarray(0, at);
        break;
      case 2: { // delete a run
        const n = 1 + rng.int(32);
        b = concatBytes(b.subarray(0, at), b.subarray(Math.min(b.length, at + n)));
        break;
      }
      case 3: // insert a JSON token
        b = concatBytes(b.subarray(0, at), enc.encode(rng.pick(JSON_TOKENS)), b.subarray(at));
        break;
      case 4: // insert random bytes (often invalid UTF-8)
        b = concatBytes(b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at));
        break;
      case 5: { // duplicate a run
        const n = 1 + rng.int(64);
        b = concatBytes(b.subarray(0, at), b.subarray(at, at + n), b.subarray(at));
        break;
      }
      default: { // set a byte to an interesting value
        if (b.length === 0) break;
        const c = Uint8Array.from(b);
        c[Math.min(at, c.length - 1)] = rng.pick([0x00, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x80, 0xc0, 0xed, 0xf4, 0xff]);
        b = c;
      }
    }
  }
  return b;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Invalid UTF-8 sequences of every kind, inside an otherwise valid prompt string. */
function nonUtf8Body(rng: Rng): Uint8Array {
  const bad = [[0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xe2, 0x82], [0x80], [0xf0, 0x9f, 0x98]];
  const parts: Uint8Array[] = [enc.encode('{"model":"m","prompt":"')];
  for (let i = 0, n = 1 + rng.int(20); i < n; i++) {
    parts.push(enc.encode(words(rng, rng.int(40))));
    parts.push(Uint8Array.from(rng.pick(bad)));
  }
  parts.push(enc.encode('"}'));
  return concatBytes(...parts);
}

/** Binary encodings of JSON-like data (CBOR, BSON-shaped, UTF-16) that are not JSON. */
function binaryJsonBody(rng: Rng): Uint8Array {
  switch (rng.int(4)) {
    case 0: { // CBOR map {"prompt": "..."}
      const t = enc.encode(words(rng, rng.int(200)));
      return concatBytes(Uint8Array.from([0xa1, 0x66]), enc.encode('prompt'), Uint8Array.from([0x79, t.length >> 8, t.length & 0xff]), t);
    }
    case 1: { // BSON-shaped document
      const t = enc.encode(words(rng, rng.int(200)) + '\0');
      const doc = concatBytes(Uint8Array.from([0, 0, 0, 0, 0x02]), enc.encode('prompt\0'), Uint8Array.from([t.length & 0xff, t.length >> 8, 0, 0]), t, Uint8Array.from([0]));
      new DataView(doc.buffer).setInt32(0, doc.length, true);
      return doc;
    }
    case 2: { // UTF-16LE JSON with a BOM
      const s = plausibleBody(rng, rng.chance(0.5), 300);
      const out = new Uint8Array(2 + s.length * 2);
      out[0] = 0xff; out[1] = 0xfe;
      for (let i = 0; i < s.length; i++) { out[2 + 2 * i] = s.charCodeAt(i) & 0xff; out[3 + 2 * i] = s.charCodeAt(i) >> 8; }
      return out;
    }
    default:
      return rng.bytes(rng.int(4096));
  }
}

export type BodyKind = 'plausible' | 'mutated' | 'nested' | 'huge' | 'nonUtf8' | 'binary' | 'empty';

export function generateBody(rng: Rng, chat: boolean, hugeAllowed: boolean): { body: Uint8Array; kind: BodyKind } {
  const kind = rng.weighted<BodyKind>([
    [40, 'plausible'], [35, 'mutated'], [5, 'nested'], [hugeAllowed ? 0.3 : 0, 'huge'], [7, 'nonUtf8'], [6, 'binary'], [4, 'empty'],
  ]);
  switch (kind) {
    case 'plausible': return { body: enc.encode(plausibleBody(rng, chat, 20000)), kind };
    case 'mutated': return { body: mutateBytes(rng, enc.encode(plausibleBody(rng, chat, 8000)), 1 + rng.int(12)), kind };
    case 'nested': {
      const depth = rng.pick([100, 1000, 10000, 100000, 400000]);
      const inner = chat ? `{"messages":[{"role":"user","content":${nested(rng, depth)}}]}` : `{"prompt":${nested(rng, depth)}}`;
      return { body: enc.encode(inner), kind };
    }
    case 'huge': {
      // Around and past maxBodyBytes (1 MiB) and Envoy's 1 MiB buffer limit.
      const size = rng.pick([1024 * 1024 - 64, 1024 * 1024 + 1, 1536 * 1024, 3 * 1024 * 1024]);
      const text = words(rng, 4096).repeat(Math.ceil(size / 4096)).slice(0, size);
      return { body: enc.encode(chat ? `{"messages":[{"role":"system","content":"${text}"}]}` : `{"model":"m","prompt":"${text}"}`), kind };
    }
    case 'nonUtf8': return { body: nonUtf8Body(rng), kind };
    case 'binary': return { body: binaryJsonBody(rng), kind };
    default: return { body: new Uint8Array(0), kind };
  }
}

export interface FuzzRequest {
  headers: HeaderPairs;
  /** Body chunks as they arrive; the last one carries end of stream unless trailers follow. */
  chunks: Uint8Array[];
  trailers: HeaderPairs | null;
  /** True when the client tried to name a destination (header or trailer). */
  hostile: boolean;
  bodyKind: BodyKind | 'none';
}

const PATHS = [
  '/v1/completions', '/v1/chat/completions', '/v1/completions?stream=true', '/v1/chat/completions?a=1&b=%00', '/v1/completions/',
  '/V1/COMPLETIONS', '/v1/models', '/', '', '*', '/v1/embeddings', '/v1/chat/completions#frag', '/v1/%63ompletions', '/v1/完成',
];
const METHODS = ['GET', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH', 'post', 'FOO', ''];

function splitChunks(rng: Rng, body: Uint8Array): Uint8Array[] {
  if (body.length === 0) return [];
  const mode = rng.int(4);
  // Bound the calls into the VM per request (each chunk is one call, and the host copies
  // the buffered body on each): usually 64, now and then 1024.
  const minChunk = Math.max(1, Math.ceil(body.length / (rng.chance(0.05) ? 1024 : 64)));
  const chunks: Uint8Array[] = [];
  let o = 0;
  const fixed = Math.max(minChunk, rng.pick([1, 7, 64, 1000, 16384, 65536]));
  while (o < body.length) {
    const n = mode === 0 ? body.length : mode === 1 ? fixed : Math.max(minChunk, 1 + rng.int(mode === 2 ? 100 : 20000));
    chunks.push(body.subarray(o, Math.min(body.length, o + n)));
    o += n;
  }
  // an empty chunk before the end now and then (a data frame with no bytes)
  if (rng.chance(0.05)) chunks.splice(rng.int(chunks.length), 0, new Uint8Array(0));
  return chunks;
}

export function generateRequest(rng: Rng, hugeAllowed = true): FuzzRequest {
  const inference = rng.chance(0.85);
  const chat = rng.chance(0.5);
  const method = inference ? 'POST' : rng.chance(0.5) ? 'POST' : rng.pick(METHODS);
  const path = inference ? (chat ? '/v1/chat/completions' : '/v1/completions') + (rng.chance(0.05) ? '?x=1' : '') : rng.pick(PATHS);
  const { body, kind } = method === 'GET' && rng.chance(0.8) ? { body: new Uint8Array(0), kind: 'empty' as BodyKind } : generateBody(rng, chat, hugeAllowed);
  const headers: HeaderPairs = [[':method', method], [':path', path], [':authority', rng.chance(0.95) ? 'gateway' : rng.pick(['', 'a'.repeat(5000), '中文', '6.6.6.6:22'])], [':scheme', 'http']];
  if (rng.chance(0.8)) headers.push(['content-type', rng.pick(['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/cbor', ''])]);
  // content-length: right, absent (chunked), wrong, garbage
  const cl = rng.weighted<string | null>([
    [6, String(body.length)], [2, null], [1, String(body.length + 1 + rng.int(10))], [0.5, String(Math.max(0, body.length - 1 - rng.int(10)))],
    [0.5, rng.pick(['-1', 'abc', '99999999999999999999999', '1e3', ' 10', '0x10', ''])], [0.3, String(4 * 1024 * 1024)],
  ]);
  if (cl !== null) headers.push(['content-length', cl]);
  if (rng.chance(0.02)) headers.push(['content-length', String(rng.int(100))]); // duplicated
  let hostile = false;
  if (rng.chance(0.3)) {
    hostile = true;
    for (let i = 0, n = 1 + rng.int(3); i < n; i++) headers.splice(rng.range(4, headers.length), 0, [rng.pick(DESTINATION_NAMES), rng.pick(HOSTILE_DESTINATIONS)]);
  }
  for (let i = 0, n = rng.weighted([[9, rng.int(4)], [1, rng.int(120)]]); i < n; i++) {
    const name = rng.chance(0.9) ? `x-h-${rng.int(50)}` : rng.pick(['x-request-id', 'authorization', 'x-prefix-router-endpoint', 'cookie', 'x-中文']);
    const value = rng.weighted([[8, () => words(rng, rng.int(60))], [1, () => rng.pick(UNICODE).repeat(1 + rng.int(10))], [0.2, () => 'v'.repeat(65536)]] as const)();
    headers.push([name, value]);
  }
  let trailers: HeaderPairs | null = null;
  if (body.length > 0 && rng.chance(0.1)) {
    trailers = [['x-trailer', 'yes']];
    if (rng.chance(0.5)) {
      hostile = true;
      trailers.push([rng.pick(DESTINATION_NAMES), rng.pick(HOSTILE_DESTINATIONS)]);
    }
  }
  return { headers, chunks: splitChunks(rng, body), trailers, hostile, bodyKind: body.length ? kind : 'none' };
}

// ---- scorer-state payloads ----

export function randomAddress(rng: Rng, i: number): string {
  if (rng.chance(0.1)) return `[fd00::${(i + 1).toString(16)}]:${8000 + rng.int(10)}`;
  return `10.${rng.int(4)}.${(i >> 8) & 255}.${i & 255}:${8000 + rng.int(3)}`;
}

export function randomState(rng: Rng, version: bigint): RouterState {
  const n = rng.weighted([[1, 0], [6, 1 + rng.int(8)], [2, rng.int(64)], [0.2, rng.int(600)]]);
  const seen = new Set<string>();
  const replicas: ReplicaState[] = [];
  for (let i = 0; i < n; i++) {
    const address = randomAddress(rng, i);
    if (seen.has(address)) continue;
    seen.add(address);
    const known = rng.chance(0.9);
    replicas.push({
      address, ready: rng.chance(0.85), metricsKnown: known,
      waiting: rng.weighted([[5, rng.int(20)], [1, rng.int(70000)]]), running: rng.int(300),
      kvUsage: rng.float(), kvCapacityTokens: rng.weighted([[3, 150000], [1, 0], [1, rng.u32()]]),
      metricsAgeMs: known ? rng.weighted([[8, rng.int(500)], [1, rng.int(10000)], [1, 0xffffffff]]) : 0xffffffff,
    });
  }
  const w = () => rng.weighted([[6, rng.int(6)], [1, rng.float() * 1e6], [1, 0]]);
  const weights = { prefix: w(), queue: w(), kvCache: w(), inflight: w() };
  if (weights.prefix + weights.queue + weights.kvCache + weights.inflight === 0) weights.prefix = 1;
  const sections = replicas.length > 0 && rng.chance(0.4) ? fleetSections(rng, replicas.length) : [];
  if (rng.chance(0.15)) {
    const lora = loraSection(rng, replicas.length);
    if (lora) sections.push(lora);
  }
  // Drawn from its own generator (seeded by the version, already drawn), so the payloads the other draws make stay those of the fixed seeds.
  const own = new Rng(Number(version & 0xffffffffn) ^ 0x17);
  if (own.chance(0.15)) {
    const context = encodeContextSection(Array.from({ length: replicas.length }, () => own.weighted([[3, 4096 * (1 + own.int(32))], [1, null], [1, 1 + own.int(100)], [1, own.u32()]])));
    if (context) sections.push(context);
  }
  if (rng.chance(0.1)) {
    const observability = encodeObservability({ decisionLogEvery: rng.weighted([[3, 1 + rng.int(100)], [1, 1_000_000]]) });
    if (observability) sections.push(observability);
  }
  return { version, weights, replicas, sections: sections.length > 0 ? sections : undefined };
}

/** Adapter and base model names: plain, unicode, a leading byte-order mark, too long for the wire (left out by the encoder). */
const LORA_NAMES = ['sql', 'SQL', 'sql-lora', 'chat', 'ünïcode', '中文', '\ufeffsql', 'a', 'x'.repeat(255), 'y'.repeat(300), 'm/with/slashes'];

/** Section 16 for `replicas` replicas (null entries: LoRA not scraped); null when no replica has adapter slots. */
function loraSection(rng: Rng, replicas: number): StateSection | null {
  const names = () => Array.from({ length: rng.weighted([[4, rng.int(4)], [1, rng.int(20)]]) }, () => rng.chance(0.8) ? rng.pick(LORA_NAMES) : `adapter-${rng.int(2000)}`);
  return encodeLoraSection(Array.from({ length: replicas }, () => (rng.chance(0.2) ? null : {
    maxLora: rng.weighted([[4, rng.int(9)], [1, rng.int(70000)]]), running: names(), waiting: names(),
    baseModel: rng.chance(0.7) ? rng.pick(['base', 'meta-llama/Llama-3-8B', ...LORA_NAMES]) : undefined,
  })));
}

/** The gateway fleet's sections (tag 1 placements, tag 2 other gateways' work, tag 3 this gateway's position, tag 4 their content), any of them. */
function fleetSections(rng: Rng, replicas: number): StateSection[] {
  const out: StateSection[] = [];
  if (rng.chance(0.7)) {
    const placements = Array.from({ length: rng.weighted([[3, rng.int(8)], [1, rng.int(2000)]]) }, () => ({
      hash: (BigInt(rng.u32()) << 32n) | BigInt(rng.u32()), replica: rng.int(replicas), depth: rng.chance(0.5) ? 1 + rng.int(16) : 16 * (1 + rng.int(1024)),
    }));
    out.push({ tag: SECTION_PLACEMENTS, bytes: encodePlacementsSection({ through: BigInt(rng.u32()), placements }, replicas) });
  }
  if (rng.chance(0.7)) {
    const work = Array.from({ length: rng.int(replicas + 1) }, (_, replica) => ({ replica, queuedTokens: rng.u32(), decodeWork: rng.int(100000) }));
    out.push({ tag: SECTION_OTHER_WORK, bytes: encodeOtherWorkSection(work, replicas) });
  }
  if (rng.chance(0.5)) {
    const count = rng.weighted([[4, 1 + rng.int(8)], [1, 1 + rng.int(65535)]]);
    out.push({ tag: SECTION_FLEET_POSITION, bytes: encodeFleetPosition({ index: rng.int(count), count }) });
  }
  if (rng.chance(0.5)) {
    const content = Array.from({ length: rng.int(replicas + 1) }, (_, replica) => ({ replica, writtenUnits: rng.weighted([[3, rng.int(100000)], [1, rng.u32()]]) }));
    out.push({ tag: SECTION_OTHER_CONTENT, bytes: encodeOtherContentSection(content, replicas) });
  }
  return out;
}

/** A gateway's fleet report (format 1 or 2), valid or mutated; a mutated one gets its checksum fixed half the time. */
export function reportPayload(rng: Rng): Uint8Array {
  const u64 = () => (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
  const replicas = Array.from({ length: rng.weighted([[4, rng.int(8)], [1, rng.int(300)]]) }, () => u64());
  const valid = encodeReport({
    gatewayId: u64() | 1n, placementsSeen: rng.chance(0.3) ? 0n : u64(),
    work: replicas.filter(() => rng.chance(0.6)).map((replica) => ({ replica, queuedTokens: rng.u32(), decodeWork: rng.int(100000) })),
    content: replicas.filter(() => rng.chance(0.8)).map((replica) => ({ replica, writtenUnits: rng.u32() })),
    placements: Array.from({ length: rng.weighted([[3, rng.int(8)], [1, rng.int(1000)]]) }, () => ({
      hash: u64(), replica: rng.pick(replicas.length > 0 ? replicas : [1n]), depth: rng.chance(0.5) ? 1 + rng.int(16) : 16 * (1 + rng.int(1024)),
    })),
  }, rng.chance(0.2) ? 1 : 2);
  if (rng.chance(0.3)) return valid;
  const p = rng.chance(0.2) ? valid.slice(0, rng.int(valid.length + 1)) : mutateBytes(rng, valid, 1 + rng.int(6));
  if (p.length >= 4 && rng.chance(0.5)) fixChecksum(p);
  return p;
}

/** A state payload: a valid encoding, mutated or not; a mutated one gets its checksum fixed half the time so it reaches the deeper rules. */
export function statePayload(rng: Rng, version: bigint): { payload: Uint8Array; mutated: boolean } {
  const valid = encodeState(randomState(rng, version));
  if (rng.chance(0.35)) return { payload: valid, mutated: false };
  let p: Uint8Array;
  if (rng.chance(0.6)) {
    // targeted: overwrite a field with an edge value
    p = Uint8Array.from(valid);
    const dv = new DataView(p.buffer);
    const fields: Array<() => void> = [
      () => dv.setUint32(32, rng.pick([0, 1, 4096, 4097, 0xffffffff, rng.u32()]), true),
      () => dv.setFloat32(16 + 4 * rng.int(4), rng.pick([NaN, Infinity, -Infinity, -1, -0, 3.4e38, 1e-45]), true),
      () => dv.setBigUint64(8, rng.pick([0n, 1n, 0xffffffffffffffffn, BigInt(rng.u32())]), true),
      () => dv.setUint16(4, rng.pick([0, 2, 0xffff]), true),
      () => dv.setUint16(6, 1 << rng.int(16), true),
      () => { if (p.length > 37) p[36] = rng.pick([0, 64, 255, 1]); },
      () => { if (p.length > 40) p[37 + rng.int(Math.min(20, p.length - 41))] = rng.pick([0x3a, 0x5b, 0x5d, 0x2e, 0x00, 0x80, 0x41, 0x30, 0x39, 0x20]); },
      () => { const at = 36 + 1 + p[36] + 5; if (at + 4 <= p.length) dv.setFloat32(at, rng.pick([NaN, -0.5, 1.5, Infinity, 1, 0]), true); },
      () => { const at = 36 + 1 + p[36]; if (p.length > 40 && at < p.length) p[at] = rng.pick([4, 8, 0xff, 3, 0x80]); },
      // the sections, when there are any: counts, lengths, replica indexes and depths live near the end
      () => { if (p.length > 80) p[p.length - 5 - rng.int(Math.min(64, p.length - 41))] = rng.pick([0, 1, 0x10, 0x11, 0x40, 0x7f, 0x80, 0xff]); },
    ];
    for (let i = 0, n = 1 + rng.int(3); i < n; i++) rng.pick(fields)();
  } else {
    p = mutateBytes(rng, valid, 1 + rng.int(6));
  }
  if (rng.chance(0.5) && p.length >= 4) fixChecksum(p);
  return { payload: p, mutated: true };
}

export function fixChecksum(p: Uint8Array): void {
  const end = p.length - 4;
  new DataView(p.buffer, p.byteOffset, p.byteLength).setUint32(end, fnv1a32(p, end), true);
}

// ---- plugin configurations ----

export function baseConfig(rng: Rng): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (rng.chance(0.8)) c.replicas = Array.from({ length: 1 + rng.int(5) }, (_, i) => (rng.chance(0.7) ? `10.9.0.${i + 1}:8000` : { address: `10.9.0.${i + 1}:8000`, kvCapacityTokens: 1000 + rng.int(500000) }));
  if (rng.chance(0.4)) c.controlPlane = { cluster: 'prefix_router_control_plane', longPollMs: 1000, retryMs: 100 };
  if (rng.chance(0.4)) c.weights = { prefix: rng.int(5), queue: 1, kvCache: rng.int(3), inflight: 1 };
  if (rng.chance(0.5)) c.prefix = { blockChars: rng.pick([8, 64, 4096]), maxBlocks: rng.pick([1, 256, 4096]), indexEntries: rng.pick([1024, 65536]), defaultCapacityTokens: 1 + rng.int(1e6) };
  if (rng.chance(0.3)) c.loadBoundEpsilon = rng.float() * 10;
  if (rng.chance(0.3)) c.work = { prefillTimePerTokenMs: rng.float(), chunkTokens: 1 + rng.int(8192), evictionReuse: rng.float() * 120 - 10 };
  if (rng.chance(0.3)) c.stalenessMs = rng.range(100, 600000);
  if (rng.chance(0.3)) c.maxBodyBytes = rng.range(1024, 2 * 1024 * 1024);
  if (rng.chance(0.3)) c.debugHeaders = rng.chance(0.5);
  if (rng.chance(0.2)) c.sharedState = rng.chance(0.5);
  return c;
}

const CONFIG_VALUES: unknown[] = [null, true, false, 0, -1, 1.5, 1e308, -1e308, 4294967296, 1e-320, '', 'x', '10.0.0.1:8000', '10.0.0.1', '[::1]:8000', '999.1.1.1:80', '10.0.0.1:0', '10.0.0.1:65536', [], {}, [1, 2], { address: '10.0.0.1:8000' }, 'é'.repeat(300), '\u0000'];
const CONFIG_KEYS = ['controlPlane', 'replicas', 'weights', 'prefix', 'loadBoundEpsilon', 'stalenessMs', 'maxBodyBytes', 'debugHeaders', 'sharedState', 'cluster', 'address', 'kvCapacityTokens', 'blockChars', 'maxBlocks', 'indexEntries', 'longPollMs', 'retryMs', 'path', 'authority', 'unknownField', '__proto__'];

function mutateValue(rng: Rng, v: unknown, depth: number): unknown {
  if (depth > 4 || rng.chance(0.3)) return rng.chance(0.5) ? rng.pick(CONFIG_VALUES) : v;
  if (Array.isArray(v)) {
    const a = v.map((x) => (rng.chance(0.3) ? mutateValue(rng, x, depth + 1) : x));
    if (rng.chance(0.2)) a.push(rng.pick(CONFIG_VALUES));
    if (rng.chance(0.1) && a.length) a.push(a[0]); // duplicate entry
    return a;
  }
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    for (const k of Object.keys(o)) if (rng.chance(0.3)) o[k] = mutateValue(rng, o[k], depth + 1);
    if (rng.chance(0.15)) o[rng.pick(CONFIG_KEYS)] = rng.pick(CONFIG_VALUES);
    if (rng.chance(0.1)) delete o[rng.pick(Object.keys(o).concat(['x']))];
    return o;
  }
  return rng.pick(CONFIG_VALUES);
}

/** A plugin configuration as text: a valid one, a value-level mutation, or a byte-level one. */
export function generateConfig(rng: Rng): string {
  const base = baseConfig(rng);
  const mode = rng.weighted([[2, 'valid'], [5, 'value'], [3, 'bytes'], [0.5, 'weird']] as const);
  if (mode === 'valid') return JSON.stringify(base);
  if (mode === 'value') return JSON.stringify(mutateValue(rng, base, 0));
  if (mode === 'bytes') return new TextDecoder().decode(mutateBytes(rng, enc.encode(JSON.stringify(base)), 1 + rng.int(6)));
  return rng.pick(['', ' ', 'null', '[]', '"str"', '{', '{"replicas":' + '['.repeat(100000), '{"replicas":["10.0.0.1:8000"],"replicas":[]}', '\ufeff{"replicas":["10.0.0.1:8000"]}', '{"replicas":["10.0.0.1:8000"]} trailing', JSON.stringify({ replicas: Array.from({ length: 5000 }, (_, i) => `10.1.${i >> 8}.${i & 255}:80`) })]);
}
