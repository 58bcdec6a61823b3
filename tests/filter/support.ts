// Drives plugin/prefix-router.wasm through our proxy-wasm host, as Envoy would.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, type HostOptions } from '../../host/index.js';

export const WASM_PATH = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
export const wasm = readFileSync(WASM_PATH);

export const REPLICAS = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'];

export interface Logged { level: number | string; message: string; worker?: number }

export async function startHost(config: object | string, opts: Partial<HostOptions> = {}): Promise<{ host: ProxyWasmHost; logs: Logged[] }> {
  const logs: Logged[] = [];
  const host = await ProxyWasmHost.create({
    wasm,
    workers: 2,
    pluginConfig: typeof config === 'string' ? config : JSON.stringify(config),
    logLevel: 'trace',
    onLog: (e: Logged) => logs.push(e),
    ...opts,
  } as HostOptions);
  return { host, logs };
}

export interface Routed {
  endpoint: string | undefined;
  endpoints: string[];
  local: { status: number; body: string; headers: Array<[string, string]> } | null;
  responseHeaders: Array<[string, string]>;
  /** Request body bytes the filter let through to the upstream. */
  forwardedBytes: number;
  complete: () => void;
}

/** Sends one request through a worker; leaves it open (in flight) until complete() unless `finish`. */
const RESPONSE_START = new TextEncoder().encode('{"choices":[');

export function send(host: ProxyWasmHost, req: { method?: string; path?: string; headers?: Array<[string, string]>; body?: string | Uint8Array; worker?: number; chunk?: number; chunked?: boolean; trailers?: Array<[string, string]> }, finish = true): Routed {
  const s = host.newStream(req.worker === undefined ? {} : { worker: req.worker });
  const headers: Array<[string, string]> = [
    [':method', req.method ?? 'POST'],
    [':path', req.path ?? '/v1/completions'],
    [':authority', 'gateway'],
    [':scheme', 'http'],
    ...(req.headers ?? []),
  ];
  const body = typeof req.body === 'string' ? new TextEncoder().encode(req.body) : req.body;
  const hasBody = body !== undefined && body.length > 0;
  // Chunked: no declared length, as HTTP/1.1 chunked encoding or HTTP/2 without content-length.
  if (hasBody && !req.chunked) headers.push(['content-length', String(body!.length)]);
  s.requestHeaders(headers, !hasBody && !req.trailers);
  if (hasBody && !s.localResponse) {
    const chunk = req.chunk ?? body!.length;
    for (let o = 0; o < body!.length && !s.localResponse; o += chunk) {
      const end = Math.min(body!.length, o + chunk);
      s.requestBody(body!.subarray(o, end), end === body!.length && !req.trailers);
    }
  }
  if (req.trailers && !s.localResponse) s.requestTrailers(req.trailers);
  const forwardedBytes = s.drainRequestData().length;
  let responseHeaders: Array<[string, string]> = [];
  if (!s.localResponse) {
    s.responseHeaders([[':status', '200'], ['content-type', 'application/json']], false);
    responseHeaders = s.responseHeaderList();
    // The first body bytes: the replica has prefilled the prompt and decodes (a stream left open keeps decoding).
    s.responseBody(RESPONSE_START, false);
  }
  const upstream = s.requestHeaderList();
  const endpoints = upstream.filter(([k]) => k.toLowerCase() === 'x-gateway-destination-endpoint').map(([, v]) => v);
  const lr = s.localResponse;
  const local = lr ? { status: lr.status, body: new TextDecoder().decode(lr.body), headers: lr.headers } : null;
  let done = false;
  const complete = () => { if (!done) { done = true; s.complete(); } };
  if (finish) complete();
  return { endpoint: endpoints[0], endpoints, local, responseHeaders, forwardedBytes, complete };
}

export function completion(prompt: string, model = 'qwen'): string {
  return JSON.stringify({ model, prompt, max_tokens: 16 });
}

export function chat(messages: Array<{ role: string; content: unknown }>, model = 'qwen'): string {
  return JSON.stringify({ model, messages });
}

/** A deterministic pseudo-random text of `n` characters. */
export function text(seed: number, n: number): string {
  let x = seed >>> 0 || 1;
  const words = ['alpha', 'beta', 'gamma', 'delta', 'kv', 'cache', 'router', 'prefix', 'token', 'block', 'replica', 'envoy'];
  let s = '';
  while (s.length < n) {
    x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0;
    s += words[x % words.length] + ' ';
  }
  return s.slice(0, n);
}

export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
