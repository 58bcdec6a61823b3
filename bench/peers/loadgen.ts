// Open-loop load: each request of a workload is sent at its arrival time (real time) as a streaming
// /v1/completions request, whatever the ones before it are doing; TTFT is the first streamed token,
// end-to-end the [DONE]. Every request and the whole run are bounded in time.
import http from 'node:http';
import type { SimRequest } from '../routing/workloads.js';

export interface RequestRecord {
  id: number;
  ok: boolean;
  status: number;
  sentMs: number;
  ttftMs: number;
  e2eMs: number;
  outputTokens: number;
  cachedTokens: number;
  replica: string | null;
  error?: string;
}

export interface LoadOptions {
  url: string;
  /** Entry points to spread the requests over, the i-th request sent to urls[i mod n] (a load balancer's turn); absent: `url` alone. */
  urls?: string[];
  model: string;
  requestTimeoutMs: number;
  /** Stop sending new requests after this many ms (arrivals past it are dropped). */
  maxSendMs?: number;
  /** Awaited at each request's arrival time, before it is sent (its send waits for it). */
  beforeSend?: (r: SimRequest) => Promise<void> | void;
}

function sendOne(agent: http.Agent, o: LoadOptions, url: string, r: SimRequest, t0: number): Promise<RequestRecord> {
  return new Promise((resolve) => {
    const u = new URL('/v1/completions', url);
    const body = JSON.stringify({ model: o.model, prompt: r.prompt, max_tokens: r.outputTokens, stream: true, stream_options: { include_usage: true } });
    const sent = performance.now();
    const rec: RequestRecord = { id: r.id, ok: false, status: 0, sentMs: sent - t0, ttftMs: NaN, e2eMs: NaN, outputTokens: 0, cachedTokens: 0, replica: null };
    let settled = false;
    const done = (error?: string) => {
      if (settled) return;
      settled = true;
      rec.e2eMs = performance.now() - sent;
      if (error) rec.error = error;
      rec.ok = !error && rec.status === 200 && Number.isFinite(rec.ttftMs);
      resolve(rec);
    };
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      rec.status = res.statusCode ?? 0;
      const rh = res.headers['x-simulator-replica'];
      rec.replica = typeof rh === 'string' ? rh : null;
      let buf = '';
      let sawDone = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') { sawDone = true; continue; }
            try {
              const j = JSON.parse(data) as { choices?: { text?: string }[]; usage?: { completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } };
              if (!Number.isFinite(rec.ttftMs) && j.choices?.length) rec.ttftMs = performance.now() - sent;
              if (j.usage) {
                rec.outputTokens = j.usage.completion_tokens ?? 0;
                rec.cachedTokens = j.usage.prompt_tokens_details?.cached_tokens ?? 0;
              }
            } catch { /* a router's own error text */ }
          }
        }
      });
      res.on('end', () => done(res.statusCode !== 200 ? `HTTP ${res.statusCode}: ${buf.slice(0, 120)}` : sawDone ? undefined : 'stream ended without [DONE]'));
      res.on('error', (e) => done(e.message));
    });
    req.setTimeout(o.requestTimeoutMs, () => { req.destroy(new Error(`no answer within ${o.requestTimeoutMs} ms`)); });
    req.on('error', (e) => done(e.message));
    req.end(body);
  });
}

/**
 * Sends every request at its arrival time; resolves when all have finished or failed (a request
 * fails after requestTimeoutMs of silence on its socket). `lastSentMs`: when the last request went
 * out, so wallMs - lastSentMs is the drain.
 */
export async function runLoad(requests: SimRequest[], o: LoadOptions): Promise<{ records: RequestRecord[]; wallMs: number; lastSentMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const t0 = performance.now();
  const pending: Promise<RequestRecord>[] = [];
  const urls = o.urls?.length ? o.urls : [o.url];
  for (const r of requests) {
    const at = r.arrivalUs / 1000;
    if (o.maxSendMs !== undefined && at > o.maxSendMs) break;
    const wait = at - (performance.now() - t0);
    if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    await o.beforeSend?.(r);
    pending.push(sendOne(agent, o, urls[pending.length % urls.length]!, r, t0));
  }
  const lastSentMs = performance.now() - t0;
  const records = await Promise.all(pending);
  agent.destroy();
  return { records, wallMs: performance.now() - t0, lastSentMs };
}

/** Sequential small requests at idle, for the latency a router adds: e2e ms of each. */
export async function probeLatency(url: string, model: string, prompts: string[]): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (const prompt of prompts) {
    const body = JSON.stringify({ model, prompt, max_tokens: 1 });
    const u = new URL('/v1/completions', url);
    const t = performance.now();
    await new Promise<void>((resolve) => {
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve());
        res.on('error', () => resolve());
      });
      req.setTimeout(10_000, () => req.destroy());
      req.on('error', () => resolve());
      req.end(body);
    });
    out.push(performance.now() - t);
  }
  agent.destroy();
  return out;
}
