import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startReplicas, type RunningReplicas } from '../../simulator/server.js';

let sim: RunningReplicas;
let client: OpenAI;
let url: string;
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';

before(async () => {
  sim = await startReplicas({ replicas: 2, basePort: 0, timeScale: 200 });
  url = sim.replicas[0]!.url;
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(() => sim.close());

test('replicas listen on their own loopback ports with names replica-0..', () => {
  assert.deepEqual(sim.replicas.map((r) => r.name), ['replica-0', 'replica-1']);
  assert.notEqual(sim.replicas[0]!.port, sim.replicas[1]!.port);
  for (const r of sim.replicas) assert.match(r.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

test('completions with the openai client: text, usage, cached tokens, replica header', async () => {
  const prompt = 'You are a careful assistant. '.repeat(12) + 'Say hi.';
  const { data, response } = await client.completions.create({ model: MODEL, prompt, max_tokens: 7 }).withResponse();
  assert.equal(response.headers.get('x-simulator-replica'), 'replica-0');
  assert.equal(data.object, 'text_completion');
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0]!.finish_reason, 'length');
  assert.equal(data.choices[0]!.text.length, 7 * 4);
  assert.equal(data.usage!.prompt_tokens, Math.ceil(prompt.length / 4));
  assert.equal(data.usage!.completion_tokens, 7);
  assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + 7);
  const again = await client.completions.create({ model: MODEL, prompt, max_tokens: 7 });
  assert.equal(again.choices[0]!.text, data.choices[0]!.text, 'seeded output is deterministic');
  const cached = (again.usage as unknown as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens;
  assert.equal(cached, Math.floor((data.usage!.prompt_tokens - 1) / 16) * 16);
});

test('a prompt array gets one choice per prompt', async () => {
  const data = await client.completions.create({ model: MODEL, prompt: ['first prompt', 'second prompt here'], max_tokens: 3 });
  assert.deepEqual(data.choices.map((c) => c.index).sort(), [0, 1]);
  assert.equal(data.usage!.completion_tokens, 6);
});

test('chat completions, string and array-of-parts content, max_completion_tokens', async () => {
  const data = await client.chat.completions.create({
    model: MODEL,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] },
    ],
    max_completion_tokens: 4,
  });
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0]!.message.role, 'assistant');
  assert.equal(data.usage!.completion_tokens, 4);
  const rendered = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(data.usage!.prompt_tokens, Math.ceil(rendered.length / 4));
});

test('streaming completions and chat with include_usage, SSE ending in [DONE]', async () => {
  const stream = await client.completions.create({ model: MODEL, prompt: 'stream me', max_tokens: 5, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage: { completion_tokens: number } | undefined;
  let finish: string | null = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) { text += c.text; finish = c.finish_reason ?? finish; }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text.length, 20);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 5);

  const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
  let content = '';
  let chunks = 0;
  let chatUsage: { prompt_tokens: number; completion_tokens: number } | undefined;
  for await (const chunk of chat) {
    chunks++;
    content += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) chatUsage = chunk.usage;
  }
  assert.equal(content.length, 24);
  assert.ok(chunks >= 7, `one chunk per token plus role and usage, got ${chunks}`);
  assert.equal(chatUsage?.completion_tokens, 6);

  const raw = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'x', max_tokens: 2, stream: true }) });
  assert.equal(raw.headers.get('content-type'), 'text/event-stream');
  const body = await raw.text();
  assert.match(body, /^data: \{.*\}\n\ndata: \{.*\}\n\ndata: \[DONE\]\n\n$/);
});

test('echo mode returns the prompt (chat: the last user message)', async () => {
  const echo = await startReplicas({ basePort: 0, timeScale: 500, mode: 'echo' });
  try {
    const c = new OpenAI({ baseURL: `${echo.replicas[0]!.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'repeat after me' }] });
    assert.equal(r.choices[0]!.message.content, 'repeat after me');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const t = await c.completions.create({ model: MODEL, prompt: 'abcdefghij', max_tokens: 2 });
    assert.equal(t.choices[0]!.text, 'abcdefgh');
    assert.equal(t.choices[0]!.finish_reason, 'length');
  } finally {
    await echo.close();
  }
});

test('/v1/models, /health and /metrics', async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
  const h = await fetch(`${url}/health`);
  assert.equal(h.status, 200);
  const m = await (await fetch(`${url}/metrics`)).text();
  assert.match(m, /^vllm:prefix_cache_hits_total\{engine="0",model_name="Qwen\/Qwen2.5-3B-Instruct"\} [1-9]/m);
  assert.match(m, /^vllm:cache_config_info\{.*num_gpu_blocks="8400".*\} 1.0$/m);
});

async function post(path: string, body: string): Promise<{ status: number; json: { error: { message: string; type: string; param: string | null; code: number } } }> {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) };
}

test('bad requests get OpenAI-style JSON errors and the server keeps serving', async () => {
  const cases: [string, string, number, string | null][] = [
    ['/v1/completions', '{not json', 400, null],
    ['/v1/completions', '[]', 400, null],
    ['/v1/completions', '{}', 400, 'prompt'],
    ['/v1/completions', '{"prompt": 3}', 400, 'prompt'],
    ['/v1/completions', '{"prompt": ""}', 400, 'prompt'],
    ['/v1/completions', '{"prompt": "hi", "max_tokens": 0}', 400, 'max_tokens'],
    ['/v1/completions', '{"prompt": "hi", "max_tokens": "5"}', 400, 'max_tokens'],
    ['/v1/completions', '{"prompt": "hi", "n": 3}', 400, 'n'],
    ['/v1/completions', '{"prompt": "hi", "max_tokens": 40000}', 400, 'max_tokens'],
    ['/v1/completions', '{"prompt": "hi", "model": "gpt-4"}', 404, 'model'],
    ['/v1/chat/completions', '{"messages": []}', 400, 'messages'],
    ['/v1/chat/completions', '{"messages": [{"content": "x"}]}', 400, 'messages'],
    ['/v1/chat/completions', '{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}', 400, 'messages'],
    ['/v1/chat/completions', '{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}', 400, 'stream'],
    ['/v1/nothing', '{}', 404, null],
  ];
  for (const [path, body, status, param] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, status, `${path} ${body}`);
    assert.equal(typeof r.json.error.message, 'string');
    assert.ok(r.json.error.message.length > 0);
    assert.equal(typeof r.json.error.type, 'string');
    assert.equal(r.json.error.code, status);
    assert.equal(r.json.error.param, param, `${path} ${body}: ${r.json.error.message}`);
  }
  const get = await fetch(`${url}/v1/completions`);
  assert.equal(get.status, 405);
  const ok = await client.completions.create({ model: MODEL, prompt: 'still alive?', max_tokens: 1 });
  assert.equal(ok.choices.length, 1);
});

test('a client that disconnects mid-stream frees its KV blocks', async () => {
  const slow = await startReplicas({ basePort: 0, timeScale: 1 });
  try {
    const r = slow.replicas[0]!;
    const ac = new AbortController();
    const res = await fetch(`${r.url}/v1/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'y'.repeat(800), max_tokens: 1000, stream: true }) });
    const reader = res.body!.getReader();
    await reader.read(); // first token arrived: the request holds blocks
    assert.ok(r.engine.metricsSnapshot().kvCacheUsage > 0);
    ac.abort();
    await reader.cancel().catch(() => {});
    for (let i = 0; i < 100 && r.engine.metricsSnapshot().numRequestsRunning > 0; i++) await new Promise((ok) => setTimeout(ok, 20));
    assert.equal(r.engine.metricsSnapshot().numRequestsRunning, 0);
    assert.equal(r.engine.metricsSnapshot().kvCacheUsage, 0);
  } finally {
    await slow.close();
  }
});
