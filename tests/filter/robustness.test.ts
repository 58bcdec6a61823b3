// No input may trap the module: every request is routed to a known replica or
// answered with a clear error, and a client never chooses the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPLICAS, completion, send, startHost, text, wasm } from './support.js';

const config = { replicas: REPLICAS, maxBodyBytes: 65536 };

test('a client-supplied destination header is replaced, in any case and count', async () => {
  const { host } = await startHost(config);
  try {
    const attempts: Array<Array<[string, string]>> = [
      [['x-gateway-destination-endpoint', '6.6.6.6:22']],
      [['X-Gateway-Destination-Endpoint', '6.6.6.6:22']],
      [['x-gateway-destination-endpoint', '6.6.6.6:22'], ['x-gateway-destination-endpoint', '7.7.7.7:22']],
      [['x-gateway-destination-endpoint', '6.6.6.6:22,7.7.7.7:22']],
    ];
    for (const headers of attempts) {
      for (const req of [{ headers, body: completion('hello there') }, { headers, method: 'GET', path: '/v1/models' }]) {
        const r = send(host, req);
        assert.equal(r.endpoints.length, 1, JSON.stringify(headers));
        assert.ok(REPLICAS.includes(r.endpoints[0]), r.endpoints[0]);
      }
    }
    // In trailers too.
    const r = send(host, { body: completion('with trailers'), trailers: [['x-gateway-destination-endpoint', '6.6.6.6:22']] });
    assert.ok(REPLICAS.includes(r.endpoint!));
  } finally {
    await host.close();
  }
});

test('malformed, non-JSON, empty and oversize bodies are routed on load alone', async () => {
  const { host } = await startHost(config);
  try {
    const bodies: Array<string | Uint8Array> = [
      '{"prompt": "unterminated', 'not json at all', '[]', '{}', '{"model": 5, "prompt": {"nested": [1,2,{}]}}',
      '{"messages": "not an array"}', '{"messages": [1, "two", null, {"role": 3, "content": {"x": 1}}]}',
      new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x22]), '{"a":' + '['.repeat(100000),
      '{"prompt":"' + '\\'.repeat(1001) + '"}', '{"prompt":"\\ud800\\udbff\\u00"}',
      completion(text(1, 200000)), // oversize: 200 KB > maxBodyBytes
    ];
    for (const body of bodies) {
      const r = send(host, { body, chunk: 4096 });
      assert.equal(r.local, null);
      assert.ok(REPLICAS.includes(r.endpoint!), `no endpoint for ${String(body).slice(0, 40)}`);
    }
    for (const [method, path] of [['GET', '/v1/models'], ['POST', '/v1/embeddings'], ['DELETE', '/'], ['POST', '/v1/completions?stream=true']]) {
      const r = send(host, { method, path, body: method === 'POST' ? completion('x') : undefined });
      assert.ok(REPLICAS.includes(r.endpoint!), `${method} ${path}`);
    }
    assert.equal(host.traps, 0);
  } finally {
    await host.close();
  }
});

test('a seeded stream of mutated requests never traps', async () => {
  const { host } = await startHost(config);
  try {
    let x = 12345;
    const rnd = (n: number) => { x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0; return x % n; };
    const seeds = [completion(text(3, 3000)), JSON.stringify({ model: 'm', messages: [{ role: 'system', content: text(4, 2000) }, { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: 'data:x' } }] }] })];
    const alphabet = '{}[]":,\\u0123456789abcdefnrt \n\x00\xff';
    for (let i = 0; i < 2000; i++) {
      const base = new TextEncoder().encode(seeds[i % seeds.length]);
      const b = Array.from(base);
      const edits = 1 + rnd(8);
      for (let e = 0; e < edits; e++) {
        const at = rnd(b.length + 1);
        const op = rnd(3);
        if (op === 0) b.splice(at, 1 + rnd(20));
        else if (op === 1) b.splice(at, 0, alphabet.charCodeAt(rnd(alphabet.length)) & 0xff);
        else b.length = Math.min(b.length, at);
      }
      const r = send(host, { body: new Uint8Array(b), worker: i % 2, chunk: 1 + rnd(5000) });
      assert.ok(r.local === null && REPLICAS.includes(r.endpoint!), `case ${i}`);
    }
    assert.equal(host.traps, 0);
  } finally {
    await host.close();
  }
});

test('memory stays bounded by the index capacity under many distinct prompts', async () => {
  const { host } = await startHost({ replicas: REPLICAS, prefix: { indexEntries: 4096 } });
  try {
    for (let i = 0; i < 3000; i++) send(host, { body: completion(text(i * 7 + 1, 2000)), worker: i % 2 });
    const before = host.memoryBytes();
    for (let i = 0; i < 3000; i++) send(host, { body: completion(text(i * 11 + 3, 2000)), worker: i % 2 });
    assert.equal(host.memoryBytes(), before);
  } finally {
    await host.close();
  }
});

test('names a runner-up for retries, never one the client sent, never the chosen one', async () => {
  const { host } = await startHost({ ...config, fallbackHeader: true });
  try {
    for (let i = 0; i < 20; i++) {
      const r = send(host, { body: completion(text(300 + i, 500)), headers: [['x-prefix-router-fallback-endpoint', '6.6.6.6:22']] });
      assert.ok(REPLICAS.includes(r.endpoint!));
    }
    const s = host.newStream({});
    const body = new TextEncoder().encode(completion('fallback please'));
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['X-Prefix-Router-Fallback-Endpoint', '6.6.6.6:22'], ['content-length', String(body.length)]], false);
    s.requestBody(body, true);
    const h = s.requestHeaderList();
    const fallbacks = h.filter(([k]) => k.toLowerCase() === 'x-prefix-router-fallback-endpoint').map(([, v]) => v);
    const chosen = h.find(([k]) => k === 'x-gateway-destination-endpoint')![1];
    assert.equal(fallbacks.length, 1);
    assert.ok(REPLICAS.includes(fallbacks[0]) && fallbacks[0] !== chosen);
    s.complete();
  } finally {
    await host.close();
  }
});

test('names no runner-up unless fallbackHeader is on, and still drops one a client sent', async () => {
  const { host } = await startHost(config);
  try {
    const s = host.newStream({});
    const body = new TextEncoder().encode(completion('no fallback by default'));
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['x-prefix-router-fallback-endpoint', '6.6.6.6:22'], ['content-length', String(body.length)]], false);
    s.requestBody(body, true);
    const h = s.requestHeaderList();
    assert.ok(REPLICAS.includes(h.find(([k]) => k === 'x-gateway-destination-endpoint')![1]));
    assert.deepEqual(h.filter(([k]) => k.toLowerCase() === 'x-prefix-router-fallback-endpoint'), []);
    s.complete();
  } finally {
    await host.close();
  }
});

test('without shared state (GCP Service Extensions) the default index fits the 16 MiB a VM gets there', async () => {
  const { host } = await startHost({ replicas: REPLICAS, sharedState: false });
  try {
    for (let i = 0; i < 200; i++) send(host, { body: completion(text(900 + i, 4000)), worker: i % 2 });
    const perVm = host.memoryBytes() / 2;
    assert.ok(perVm <= 16 * 1024 * 1024, `${perVm} bytes per VM`);
  } finally {
    await host.close();
  }
});

test("a streamed response's chunks pass untouched; its trailers and the log callback never enter the module (not exported)", async () => {
  const exported = WebAssembly.Module.exports(new WebAssembly.Module(wasm)).map((e) => e.name);
  for (const hook of ['proxy_on_response_trailers', 'proxy_on_log']) assert.ok(!exported.includes(hook), hook);
  assert.ok(exported.includes('proxy_on_response_body'), 'the first body bytes carry the first token');
  const { host } = await startHost(config);
  try {
    const s = host.newStream({});
    const body = new TextEncoder().encode(completion('stream me'));
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-length', String(body.length)]], false);
    s.requestBody(body, true);
    s.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
    const before = s.wasmNumberNs;
    const chunk = new TextEncoder().encode('data: {"choices":[{"text":"x"}]}\n\n');
    let passed = 0;
    for (let i = 0; i < 50; i++) {
      s.responseBody(chunk, false);
      passed += s.drainResponseData().length;
    }
    const afterChunks = s.wasmNumberNs;
    s.responseTrailers([['grpc-status', '0']]);
    assert.equal(passed, 50 * chunk.length);
    assert.ok(afterChunks > before, 'the chunks enter the module');
    assert.equal(s.wasmNumberNs, afterChunks, 'the trailers do not');
    s.complete();
  } finally {
    await host.close();
  }
});
