// `prefix-router start`'s stack (simulated replicas + control plane + embedded gateway with the
// real filter) driven by the official openai client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { parseStartArgs, startStack, StartUsageError, type RunningStack } from '../../cli/start.js';

const MODEL = 'Qwen/Qwen2.5-3B-Instruct';
let stack: RunningStack;
let client: OpenAI;

before(async () => {
  stack = await startStack({ port: 0, adminPort: 0, controlPlanePort: 0, simulatorBasePort: 0, timeScale: 50, logLevel: 'error' });
  client = new OpenAI({ baseURL: `${stack.gatewayUrl}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 20_000 });
});
after(() => stack.close());

test('the stack comes up routable with 3 simulated replicas on loopback', async () => {
  assert.equal(stack.ready, true);
  assert.equal(stack.simulated, true);
  assert.deepEqual(stack.replicas.map((r) => r.name), ['replica-0', 'replica-1', 'replica-2']);
  assert.match(stack.gatewayUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  const body = (await (await fetch(`${stack.controlPlaneUrl}/v1/replicas`)).json()) as { replicas: { address: string; ready: boolean }[] };
  assert.equal(body.replicas.filter((r) => r.ready).length, 3);
  const state = await fetch(`${stack.controlPlaneUrl}/v1/state`);
  assert.equal(state.status, 200);
  const weights = await fetch(`${stack.controlPlaneUrl}/v1/weights`);
  assert.equal(weights.status, 200);
});

test('completions, chat and streaming through the gateway', async () => {
  const c = await client.completions.create({ model: MODEL, prompt: 'Say hello', max_tokens: 5 });
  assert.equal(c.object, 'text_completion');
  assert.equal(c.usage!.completion_tokens, 5);

  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 3 });
  assert.equal(chat.choices[0]!.message.role, 'assistant');
  assert.equal(chat.usage!.completion_tokens, 3);

  const stream = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'stream please' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let usage = 0;
  for await (const ev of stream) {
    content += ev.choices[0]?.delta?.content ?? '';
    if (ev.usage) usage = ev.usage.completion_tokens;
  }
  assert.equal(usage, 6);
  assert.equal(content.length, 24);
});

/**
 * Waits until the control plane sees every replica idle (fresh metrics, nothing running or waiting)
 * and gives the filter's long poll a moment to receive that state. Without it, a request sent right
 * after the previous one finished meets scrape-lagged `running: 1` on the replica that served it,
 * and the filter's bounded-load guard (cap = ceil(1.25 x (total + 1) / n) = 1 at such low load)
 * passes it over: sequential requests then alternate between two replicas (see bench/gateway).
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const body = (await (await fetch(`${stack.controlPlaneUrl}/v1/replicas`)).json()) as { replicas: { metricsAgeMs: number | null; metrics: { running: number; waiting: number } | null }[] };
    if (body.replicas.every((r) => r.metrics && r.metrics.running === 0 && r.metrics.waiting === 0 && r.metricsAgeMs !== null && r.metricsAgeMs < 100)) break;
    await new Promise((ok) => setTimeout(ok, 20));
  }
  await new Promise((ok) => setTimeout(ok, 150));
}

test('the same system prompt lands on the same replica, which then serves it from its prefix cache', async () => {
  const system = 'You are a meticulous assistant for the prefix-router end-to-end test. '.repeat(30);
  const replicas = new Set<string>();
  const endpoints = new Set<string>();
  const cached: number[] = [];
  for (let i = 0; i < 6; i++) {
    await settle();
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'system', content: system }, { role: 'user', content: `question ${i}` }], max_tokens: 2 })
      .withResponse();
    replicas.add(response.headers.get('x-simulator-replica')!);
    endpoints.add(response.headers.get('x-prefix-router-endpoint')!);
    cached.push(data.usage?.prompt_tokens_details?.cached_tokens ?? 0);
  }
  assert.equal(replicas.size, 1, `one replica, got ${[...replicas]}`);
  assert.equal(endpoints.size, 1);
  assert.equal(cached[0], 0);
  for (const c of cached.slice(1)) assert.ok(c >= 500, `cached ${c}`); // ~2150 shared characters = 33 full blocks of 16 tokens
});

test('start flags are checked', () => {
  assert.throws(() => parseStartArgs(['--port', 'x']), StartUsageError);
  assert.throws(() => parseStartArgs(['--upstream', 'http://vllm.local:8000']), /literal IP/);
  assert.throws(() => parseStartArgs(['--upstream', '10.0.0.1:8000', '--replicas-count', '2']), /exclude/);
  assert.deepEqual(parseStartArgs(['--upstream', '10.0.0.1:8000,http://10.0.0.2:8000']), { upstream: ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'] });
  assert.throws(() => parseStartArgs(['--bogus']), StartUsageError);
});

/** Runs the built `prefix-router start` until its banner is printed; returns everything printed so far and a stop. */
async function startCli(args: string[]): Promise<{ out: string; stop(): Promise<number | null> }> {
  const bin = fileURLToPath(new URL('../../dist/prefix-router.js', import.meta.url));
  const env = { ...process.env };
  delete env.PREFIX_ROUTER_API_TOKEN;
  const child = spawn(process.execPath, [bin, 'start', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await Promise.race([
    new Promise<void>((resolve) => { const check = () => (out.includes('Ctrl-C to stop') ? resolve() : setTimeout(check, 50)); check(); }),
    exited.then((code) => { throw new Error(`start exited (${code}) before its banner:\n${out}`); }),
  ]);
  return { out, stop: () => { child.kill('SIGINT'); return exited; } };
}

test('bound beyond loopback without a token: weight writes are refused, and the banner says where it is bound and why', async () => {
  const run = await startCli(['--host', '0.0.0.0', '--port', '0', '--control-plane-port', '0', '--simulator-base-port', '0', '--admin-port', '0', '--replicas-count', '1', '--time-scale', '50', '--log-level', 'warn']);
  try {
    const cp = /control plane\s+(http:\/\/\S+)/.exec(run.out)?.[1];
    assert.match(cp ?? '', /^http:\/\/0\.0\.0\.0:\d+$/, run.out);
    assert.match(run.out, /writes are REFUSED/);
    assert.doesNotMatch(run.out, /--allow-unauthenticated-writes given|--weights-file/);
    const r = await fetch(`${cp}/v1/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"prefix": 2}' });
    assert.equal(r.status, 403);
    assert.equal(((await (await fetch(`${cp}/v1/weights`)).json()) as { prefix: number }).prefix, 3);
  } finally {
    assert.equal(await run.stop(), 0);
  }
});

test('on loopback without a token, weights are writable from this machine, and the banner says so', async () => {
  assert.equal(stack.weightWrites, 'loopback');
  const r = await fetch(`${stack.controlPlaneUrl}/v1/weights`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"inflight": 1}' });
  assert.equal(r.status, 200);
});

test("the gateway's admin listener serves the filter's metrics and the gateway's own stats in Prometheus text", async () => {
  await client.completions.create({ model: MODEL, prompt: 'count me', max_tokens: 2 });
  const res = await fetch(`${stack.adminUrl}/stats/prometheus`);
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.match(text, /^# TYPE prefix_router_requests_routed counter$/m);
  assert.match(text, /^envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="prefix_router"\} [1-9]\d*$/m);
  assert.match(text, /^envoy_cluster_upstream_rq\{envoy_response_code="200",envoy_cluster_name="vllm_original_dst"\} [1-9]\d*$/m);
  assert.deepEqual(parseStartArgs(['--admin-port', '9911']), { adminPort: 9911 });
  assert.throws(() => parseStartArgs(['--admin-port', 'x']), /--admin-port/);
});

test('prefix-router top reads the stack: every replica with its share, queue, KV use and hit rate; decision records turn on at run time', async () => {
  const { sampleTop, renderTop, statSuffix } = await import('../../cli/top.js');
  const before = await sampleTop(stack.controlPlaneUrl, stack.adminUrl);
  assert.deepEqual(before.errors, []);
  const r = await fetch(`${stack.controlPlaneUrl}/v1/observability`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"decisionLogEvery": 1}' });
  assert.equal(r.status, 200);
  const version = ((await r.json()) as { version: string }).version;
  // Within a long poll every worker VM routes on the version that carries the setting.
  let header: string | null = null;
  for (let i = 0; i < 100 && header === null; i++) {
    const res = await fetch(`${stack.gatewayUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: `top ${i} `.repeat(40), max_tokens: 2 }) });
    await res.text();
    header = res.headers.get('x-prefix-router-decision');
    if (header === null) await new Promise((res) => setTimeout(res, 50));
  }
  assert.match(header ?? '', /^chosen=127\.0\.0\.1:\d+; runnerUp=127\.0\.0\.1:\d+; blocks=\d+\/\d+; cap=\d+; spilled=[01]; weights=prefix:3,/);
  await fetch(`${stack.controlPlaneUrl}/v1/observability`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"decisionLogEvery": 0}' });
  let now = await sampleTop(stack.controlPlaneUrl, stack.adminUrl);
  const deadline = Date.now() + 3000;
  while ((now.filter?.routed ?? 0) <= (before.filter?.routed ?? 0) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    now = await sampleTop(stack.controlPlaneUrl, stack.adminUrl);
  }
  assert.deepEqual(now.errors, []);
  assert.equal(now.replicas.length, 3);
  const f = now.filter!;
  assert.ok(BigInt(now.controlPlaneVersion!) >= BigInt(version));
  assert.ok(f.stateVersion !== null && f.stateVersion > 0);
  assert.ok(f.controlPlaneAgeMs !== null && f.controlPlaneAgeMs < 5000, `control plane age ${f.controlPlaneAgeMs}`);
  let perReplica = 0;
  for (const rep of now.replicas) perReplica += f.replicas.get(statSuffix(rep.address))?.requests ?? 0;
  assert.equal(perReplica, f.routed, 'every routed request is counted for the replica it went to');
  const frame = renderTop(now, before);
  for (const rep of now.replicas) assert.match(frame, new RegExp(`^${rep.address.replace(/\./g, '\\.')}\\s+ready\\s+\\d+\\.\\d%`, 'm'));
  assert.match(frame, /^REPLICA\s+STATE\s+SHARE\s+REQ\/S\s+QUEUE\s+RUNNING\s+KV USE\s+HIT RATE\s+MATCHED\s+PASSED OVER$/m);
});
