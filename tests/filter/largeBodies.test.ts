// A request body is held only until the filter has read the part of the prompt
// it hashes; the rest streams through. So a body larger than the proxy's
// buffer limit (Envoy's per_connection_buffer_limit_bytes: 413 past it) still
// reaches a replica, chosen by its prompt, whether or not it declares its length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPLICAS, completion, send, startHost, text } from './support.js';

const PREFIX = 'x-prefix-router-prefix';
const header = (r: { responseHeaders: Array<[string, string]> }, name: string) => r.responseHeaders.find(([k]) => k === name)?.[1];

test('a chunked body larger than the buffer limit reaches the replica that holds its prompt, all of it', async () => {
  const { host } = await startHost({ replicas: REPLICAS }, { bufferLimitBytes: 1024 * 1024 });
  try {
    const shared = text(7, 20000);
    const first = send(host, { body: completion(shared + ' a short question'), worker: 0 });
    assert.equal(first.local, null);
    const big = completion(shared + text(8, 1_500_000));
    const r = send(host, { body: big, chunked: true, chunk: 65536, worker: 0 });
    assert.equal(r.local, null, `answered ${r.local?.status} ${r.local?.body}`);
    assert.equal(r.endpoint, first.endpoint);
    // Matched to the deepest checkpoint of the shared 312 blocks (every 16th past 16); hashed up to the buffer limit.
    assert.equal(header(r, PREFIX), '304/16383');
    assert.equal(r.forwardedBytes, new TextEncoder().encode(big).length);
  } finally {
    await host.close();
  }
});

test('a chunked body whose prompt is short is routed on it before the buffer fills', async () => {
  const { host } = await startHost({ replicas: REPLICAS }, { bufferLimitBytes: 1024 * 1024 });
  try {
    const prompt = text(9, 3000);
    const first = send(host, { body: completion(prompt), worker: 0 });
    // The prompt is complete early, but more fields follow: routed once half of maxBodyBytes has come.
    const big = JSON.stringify({ model: 'qwen', prompt, max_tokens: 16, suffix: text(10, 1_500_000) });
    const r = send(host, { body: big, chunked: true, chunk: 65536, worker: 0 });
    assert.equal(r.local, null, `answered ${r.local?.status} ${r.local?.body}`);
    assert.equal(r.endpoint, first.endpoint);
    // 46 blocks: checkpoints at 1..16 and 32.
    assert.equal(header(r, PREFIX), '32/46');
    assert.equal(r.forwardedBytes, new TextEncoder().encode(big).length);
  } finally {
    await host.close();
  }
});

test('a body larger than maxBodyBytes that comes in one piece is routed on its prompt', async () => {
  const { host } = await startHost({ replicas: REPLICAS, maxBodyBytes: 65536 });
  try {
    const shared = text(11, 20000);
    const first = send(host, { body: completion(shared + ' one'), worker: 0 });
    const r = send(host, { body: completion(shared + text(12, 200000)), worker: 0 });
    assert.equal(r.local, null);
    assert.equal(r.endpoint, first.endpoint);
    // Hashed as far as maxBodyBytes reaches (65536 bytes of body: 1023 whole blocks of prompt).
    assert.equal(header(r, PREFIX), '304/1023');
  } finally {
    await host.close();
  }
});
