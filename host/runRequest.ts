// Drives one whole request through the filter (headers, chunked body, a 200
// response) and reports what would go upstream and what came back.
import type { HeaderPairs } from './abi.js';
import type { ProxyWasmHost } from './proxyWasmHost.js';
import type { LocalResponse, PropertyValue } from './stream.js';

export interface RunRequestInput {
  method?: string;
  path?: string;
  authority?: string;
  headers?: HeaderPairs;
  body?: string | Uint8Array;
  /** Body chunk size as it arrives (default: one chunk). */
  chunkSize?: number;
  worker?: number;
  properties?: Record<string, PropertyValue>;
  /** Response the upstream gives (default 200, no body); null to stop after the request side. */
  response?: { status?: number; headers?: HeaderPairs; body?: string | Uint8Array } | null;
}

export interface RunRequestOutcome {
  /** First value of x-gateway-destination-endpoint after the filter ran (what ORIGINAL_DST would use). */
  endpoint: string | undefined;
  /** Request headers as they would go upstream (null if they never went). */
  upstreamHeaders: HeaderPairs | null;
  upstreamBody: Uint8Array;
  localResponse: LocalResponse | null;
  /** Response headers after the filter (null on a local response or when not run). */
  responseHeaders: HeaderPairs | null;
  worker: number;
  wasmNs: bigint;
}

const enc = new TextEncoder();

export function runRequest(host: ProxyWasmHost, input: RunRequestInput): RunRequestOutcome {
  const s = host.newStream({ worker: input.worker, properties: input.properties });
  try {
    const body = typeof input.body === 'string' ? enc.encode(input.body) : input.body ?? new Uint8Array(0);
    const headers: HeaderPairs = [
      [':method', input.method ?? (body.length ? 'POST' : 'GET')],
      [':path', input.path ?? '/'],
      [':authority', input.authority ?? 'gateway'],
      [':scheme', 'http'],
      ...(input.headers ?? []),
    ];
    if (body.length && !headers.some(([k]) => k.toLowerCase() === 'content-length')) headers.push(['content-length', String(body.length)]);
    s.requestHeaders(headers, body.length === 0);
    const chunk = Math.max(1, input.chunkSize ?? (body.length || 1));
    for (let o = 0; o < body.length && !s.localResponse; o += chunk) {
      const end = Math.min(body.length, o + chunk);
      s.requestBody(body.subarray(o, end), end === body.length);
    }
    const upstreamHeaders = s.continued ? s.requestHeaderList() : null;
    const upstreamBody = s.drainRequestData();
    let responseHeaders: HeaderPairs | null = null;
    if (!s.localResponse && s.continued && input.response !== null) {
      const r = input.response ?? {};
      const rb = typeof r.body === 'string' ? enc.encode(r.body) : r.body ?? new Uint8Array(0);
      s.responseHeaders([[':status', String(r.status ?? 200)], ...(r.headers ?? [])], rb.length === 0);
      if (rb.length) s.responseBody(rb, true);
      if (!s.localResponse) responseHeaders = s.responseHeaderList();
    }
    const endpoint = (upstreamHeaders ?? []).find(([k]) => k === 'x-gateway-destination-endpoint')?.[1];
    return { endpoint, upstreamHeaders, upstreamBody, localResponse: s.localResponse, responseHeaders, worker: s.worker, wasmNs: s.wasmNs };
  } finally {
    s.complete();
  }
}
