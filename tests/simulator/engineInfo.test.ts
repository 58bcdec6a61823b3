// The informational endpoints routers read from an engine (/load, /tokenize, /v1/completions/render,
// /get_model_info, /get_server_info and their aliases), over real sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReplicas, type RunningReplicas } from '../../simulator/server.js';
import { VOCAB_SIZE } from '../../simulator/engineInfo.js';

let sim: RunningReplicas;
let url: string;
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';

before(async () => {
  sim = await startReplicas({ replicas: 1, basePort: 0, timeScale: 1, kvCacheSize: 512, maxNumSeqs: 8 });
  url = sim.replicas[0]!.url;
});
after(() => sim.close());

const getJson = async (path: string) => {
  const r = await fetch(url + path);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const postJson = async (path: string, body: unknown) => {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

test('GET /load counts the requests the engine is working on, as vLLM\'s server_load', async () => {
  assert.deepEqual((await getJson('/load')).body, { server_load: 0 });
  const ctl = new AbortController();
  const pending = fetch(url + '/v1/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctl.signal,
    body: JSON.stringify({ prompt: 'a long answer please', max_tokens: 200, stream: true }),
  });
  const res = await pending;
  assert.equal((await getJson('/load')).body.server_load, 1);
  ctl.abort();
  await res.body?.cancel().catch(() => {});
  for (let i = 0; i < 50 && (await getJson('/load')).body.server_load !== 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual((await getJson('/load')).body, { server_load: 0 });
});

test('POST /tokenize: count, max_model_len and stable token ids below the vocabulary size', async () => {
  const prompt = 'You are a careful assistant. Say hi.';
  const { status, body } = await postJson('/tokenize', { model: MODEL, prompt });
  assert.equal(status, 200);
  assert.equal(body.count, Math.ceil(prompt.length / 4));
  assert.equal(body.max_model_len, sim.options.maxModelLen);
  const tokens = body.tokens as number[];
  assert.equal(tokens.length, body.count);
  assert.ok(tokens.every((t) => Number.isInteger(t) && t >= 0 && t < VOCAB_SIZE));
  assert.equal(body.token_strs, null);
  const again = await postJson('/tokenize', { prompt: prompt + ' More.' });
  assert.deepEqual((again.body.tokens as number[]).slice(0, 8), tokens.slice(0, 8), 'a shared prefix gives the same leading ids');
  const chat = await postJson('/tokenize', { messages: [{ role: 'user', content: 'hello' }], return_token_strs: true });
  const rendered = '<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n';
  assert.equal(chat.body.count, Math.ceil(rendered.length / 4));
  assert.equal((chat.body.token_strs as string[]).join(''), rendered);
});

test('POST /tokenize and /v1/completions/render reject bodies without a prompt with a 400', async () => {
  for (const path of ['/tokenize', '/v1/completions/render']) {
    const { status, body } = await postJson(path, { model: MODEL });
    assert.equal(status, 400, path);
    assert.equal((body.error as { param: string }).param, 'prompt');
  }
  const r = await fetch(url + '/tokenize', { method: 'POST', body: 'not json' });
  assert.equal(r.status, 400);
});

test('POST /v1/completions/render: one entry per prompt with its token ids', async () => {
  const { status, body } = await postJson('/v1/completions/render', { model: MODEL, prompt: ['one prompt', 'another prompt'], max_tokens: 5 });
  assert.equal(status, 200);
  const list = body as unknown as { request_id: string; token_ids: number[]; model: string; sampling_params: { max_tokens: number } }[];
  assert.equal(list.length, 2);
  assert.equal(list[0]!.token_ids.length, Math.ceil('one prompt'.length / 4));
  assert.equal(list[1]!.model, MODEL);
  assert.equal(list[0]!.sampling_params.max_tokens, 5);
  assert.match(list[0]!.request_id, /^cmpl-/);
  const tok = await postJson('/tokenize', { prompt: 'one prompt' });
  assert.deepEqual(list[0]!.token_ids, tok.body.tokens, 'render and tokenize agree');
});

test('SGLang\'s /get_model_info and /get_server_info (and /model_info, /server_info) describe the served model', async () => {
  for (const path of ['/get_model_info', '/model_info']) {
    const { status, body } = await getJson(path);
    assert.equal(status, 200);
    assert.equal(body.model_path, MODEL);
    assert.equal(body.tokenizer_path, MODEL);
    assert.equal(body.is_generation, true);
  }
  for (const path of ['/get_server_info', '/server_info']) {
    const { status, body } = await getJson(path);
    assert.equal(status, 200);
    assert.equal(body.model_path, MODEL);
    assert.equal(body.served_model_name, MODEL);
    assert.equal(body.port, sim.replicas[0]!.port);
    assert.equal(body.page_size, 16);
    assert.equal(body.max_total_tokens, 512 * 16);
    assert.equal(body.max_running_requests, 8);
    assert.equal(body.dp_size, 1);
  }
  const wrong = await fetch(url + '/get_model_info', { method: 'POST' });
  assert.equal(wrong.status, 405);
});
