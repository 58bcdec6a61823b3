// Numbers and wire formats of the Proxy-Wasm ABI 0.2.x, as proxy-wasm-cpp-host and Envoy use them.

/** Host status codes (proxy_status_t). */
export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  BadExpression: 5,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  ResultMismatch: 9,
  InternalFailure: 10,
  BrokenConnection: 11,
  Unimplemented: 12,
} as const;

export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;
export const MAP_TYPE_MAX = 7;

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  NetworkDownstreamData: 2,
  NetworkUpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
} as const;
export const BUFFER_TYPE_MAX = 8;

export const StreamType = { Request: 0, Response: 1, Downstream: 2, Upstream: 3 } as const;
export const STREAM_TYPE_MAX = 3;

/** Envoy's FilterHeadersStatus values as the module returns them. */
export const HeadersStatus = { Continue: 0, StopIteration: 1, ContinueAndEndStream: 2, StopAllIterationAndBuffer: 3, StopAllIterationAndWatermark: 4 } as const;
/** Envoy's FilterDataStatus values. */
export const DataStatus = { Continue: 0, StopIterationAndBuffer: 1, StopIterationAndWatermark: 2, StopIterationNoBuffer: 3 } as const;

export const MetricType = { Counter: 0, Gauge: 1, Histogram: 2 } as const;
/** cpp-host/Envoy: metric ids carry their type in the low 2 bits and advance by 4. */
export const METRIC_TYPE_MASK = 0x3;
export const METRIC_ID_INCREMENT = 0x4;
/** cpp-host: http call tokens advance by 4 (the low 2 bits name the callout type, 0 = HTTP). */
export const CALLOUT_INCREMENT = 0x4;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_MAX = 5;

/** cpp-host limits (include/proxy-wasm/limits.h). */
export const PAIRS_MAX_BYTES = 1024 * 1024;
export const PAIRS_MAX_COUNT = 1024;
export const WASI_RANDOM_GET_MAX_BYTES = 64 * 1024;

export type HeaderPairs = Array<[string, string]>;
/** Header pairs to read, not to change. */
export type ReadonlyHeaderPairs = ReadonlyArray<readonly [string, string]>;

const latin1 = (s: string) => Buffer.from(s, 'latin1');

/** Serializes pairs as cpp-host does: u32 count, (u32 keylen, u32 vallen) per pair, then key\0value\0 per pair, little-endian. */
export function serializePairs(pairs: HeaderPairs): Uint8Array {
  const keys = pairs.map(([k]) => latin1(k));
  const values = pairs.map(([, v]) => latin1(v));
  let size = 4;
  for (let i = 0; i < pairs.length; i++) size += 8 + keys[i].length + 1 + values[i].length + 1;
  const out = Buffer.alloc(size);
  out.writeUInt32LE(pairs.length, 0);
  let pos = 4;
  for (let i = 0; i < pairs.length; i++) {
    out.writeUInt32LE(keys[i].length, pos);
    out.writeUInt32LE(values[i].length, pos + 4);
    pos += 8;
  }
  for (let i = 0; i < pairs.length; i++) {
    keys[i].copy(out, pos);
    pos += keys[i].length + 1;
    values[i].copy(out, pos);
    pos += values[i].length + 1;
  }
  return out;
}

/**
 * Parses serialized pairs as cpp-host's PairsUtil::toPairs does: any malformation
 * (short buffer, missing NUL, trailing bytes, over the limits) yields no pairs at all.
 */
export function parsePairs(bytes: Uint8Array): HeaderPairs {
  if (bytes.length > PAIRS_MAX_BYTES || bytes.length < 4) return [];
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = b.readUInt32LE(0);
  if (n > PAIRS_MAX_COUNT) return [];
  let pos = 4;
  if (pos + n * 8 > b.length) return [];
  const sizes: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    sizes.push([b.readUInt32LE(pos), b.readUInt32LE(pos + 4)]);
    pos += 8;
  }
  const pairs: HeaderPairs = [];
  for (const [ks, vs] of sizes) {
    if (pos + ks + 1 > b.length) return [];
    const k = b.toString('latin1', pos, pos + ks);
    pos += ks;
    if (b[pos++] !== 0) return [];
    if (pos + vs + 1 > b.length) return [];
    const v = b.toString('latin1', pos, pos + vs);
    pos += vs;
    if (b[pos++] !== 0) return [];
    pairs.push([k, v]);
  }
  return pos === b.length ? pairs : [];
}
