// Load generator for the chaos scenarios, run as its own process (child_process.fork):
// plain node:http POST /v1/completions with distinct prompts (8 shared system prompts,
// each request its own question) against a gateway on loopback, at a fixed concurrency,
// bounded by a request count and a time limit. Reports progress and, at the end, every
// request's outcome over IPC.
import http from 'node:http';

export interface LoadOptions {
  /** Gateway base URL, loopback only. */
  url: string;
  requests: number;
  concurrency: number;
  maxTokens: number;
  model: string;
  /** Stop starting requests after this long, whatever the count. */
  timeLimitMs: number;
}

export interface RequestRecord {
  i: number;
  /** Wall-clock ms (Date.now) when the request was sent and when it ended. */
  start: number;
  end: number;
  status: number;
  /** The filter's choice (response header x-prefix-router-endpoint). */
  primary: string | null;
  /** The replica that answered (x-simulator-replica). */
  servedBy: string | null;
  error: string | null;
  stream: boolean;
}

export type LoadMessage = { progress: { done: number; failed: number } } | { results: RequestRecord[] };

const STREAM_EVERY = 4;
/** Set by a {stop: true} message: no new requests, the open ones finish. */
let stopped = false;

const SYSTEM_PROMPTS = Array.from({ length: 8 }, (_, g) => `You are assistant number ${g}. `.repeat(20));

function runLoad(o: LoadOptions, onProgress: (done: number, failed: number) => void): Promise<RequestRecord[]> {
  const u = new URL(o.url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost' && u.hostname !== '[::1]') throw new Error(`loopback only, got ${o.url}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const results: RequestRecord[] = [];
  const deadline = Date.now() + o.timeLimitMs;
  let next = 0;
  let failed = 0;
  const one = (i: number) => new Promise<void>((resolve) => {
    // Every fourth request streams (SSE): its answer starts before it ends, so a replica dying
    // under it cuts it after the response began, which no retry can save.
    const stream = i % STREAM_EVERY === 0;
    const body = JSON.stringify({ model: o.model, prompt: `${SYSTEM_PROMPTS[i % SYSTEM_PROMPTS.length]}Question ${i}: what is ${i} times ${i + 7}?`, max_tokens: o.maxTokens, stream });
    const rec: RequestRecord = { i, start: Date.now(), end: 0, status: 0, primary: null, servedBy: null, error: null, stream };
    const done = () => {
      if (rec.end) return;
      rec.end = Date.now();
      if (rec.error || rec.status !== 200) failed++;
      results.push(rec);
      resolve();
    };
    const req = http.request({ host: u.hostname, port: u.port, path: '/v1/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      rec.status = res.statusCode ?? 0;
      rec.primary = (res.headers['x-prefix-router-endpoint'] as string | undefined) ?? null;
      rec.servedBy = (res.headers['x-simulator-replica'] as string | undefined) ?? null;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (rec.status !== 200) rec.error = `status ${rec.status}: ${Buffer.concat(chunks).toString().slice(0, 200)}`;
        done();
      });
      res.on('error', (e) => { rec.error ??= `response: ${e.message}`; done(); });
      res.on('aborted', () => { rec.error ??= 'response aborted'; });
      res.on('close', () => { if (!res.complete) { rec.error ??= 'response cut'; done(); } });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (rec.end) return;
      rec.error = `request: ${e.code ?? e.message}`;
      done();
    });
    req.end(body);
  });
  const worker = async () => {
    while (next < o.requests && Date.now() < deadline && !stopped) {
      await one(next++);
    }
  };
  const ticker = setInterval(() => onProgress(results.length, failed), 50);
  return Promise.all(Array.from({ length: o.concurrency }, worker)).then(() => {
    clearInterval(ticker);
    onProgress(results.length, failed);
    agent.destroy();
    return results.sort((a, b) => a.i - b.i);
  });
}

// Run as a child process: options in argv[2], messages to the parent.
if (process.send && process.argv[2]) {
  const o = JSON.parse(process.argv[2]) as LoadOptions;
  process.on('message', (m: { stop?: boolean }) => { if (m.stop) stopped = true; });
  const results = await runLoad(o, (done, failed) => process.send!({ progress: { done, failed } } satisfies LoadMessage));
  process.send({ results } satisfies LoadMessage, () => process.exit(0));
}
