// Each replica's context length: read from its /v1/models (vLLM's and
// SGLang's list max_model_len per model) beside its scrapes, and carried to
// the filter in state section 17.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTEXT_SECTION_TAG, encodeContextSection } from '../../control-plane/contextSection.js';
import { ModelInfoPoller, fetchMaxModelLen, parseMaxModelLen } from '../../control-plane/modelInfo.js';
import { StateStore } from '../../control-plane/stateStore.js';
import { decodeState } from '../../control-plane/stateWire.js';

test('the longest max_model_len listed, or null', () => {
  const vllm = { object: 'list', data: [
    { id: 'Qwen/Qwen2.5-3B-Instruct', object: 'model', root: 'Qwen/Qwen2.5-3B-Instruct', parent: null, max_model_len: 32768 },
    { id: 'sql-lora', object: 'model', root: 'sql-lora', parent: 'Qwen/Qwen2.5-3B-Instruct', max_model_len: 32768 },
  ] };
  assert.equal(parseMaxModelLen(vllm), 32768);
  assert.equal(parseMaxModelLen({ data: [{ max_model_len: 4096 }, { max_model_len: 131072 }] }), 131072);
  for (const none of [{ data: [{ id: 'm' }] }, { data: [] }, {}, null, 'text', 12, { data: 'x' }, { data: [null, 3] }]) assert.equal(parseMaxModelLen(none), null, JSON.stringify(none));
  // Not a positive integer a u32 holds: left out.
  assert.equal(parseMaxModelLen({ data: [{ max_model_len: -1 }, { max_model_len: 1.5 }, { max_model_len: '4096' }, { max_model_len: 2 ** 33 }, { max_model_len: 8192 }] }), 8192);
});

test('section 17 carries each replica\'s length in state order, 0 for unknown, and is left out when none is known', () => {
  assert.equal(encodeContextSection([null, undefined]), null);
  assert.equal(encodeContextSection([]), null);
  const s = encodeContextSection([4096, null, 131072])!;
  assert.equal(s.tag, CONTEXT_SECTION_TAG);
  const v = new DataView(s.bytes.buffer);
  assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true)], [3, 4096, 0, 131072]);
  assert.equal(s.bytes.length, 16);
});

test('the store publishes section 17 from what was read, and a new version only when a length changes', () => {
  const store = new StateStore({ prefix: 3, queue: 1, kvCache: 1, inflight: 1 }, { stalenessMs: 2000, hitRateWindowMs: 10000 });
  store.setMembers([{ address: '10.0.0.2:8000', ready: true }, { address: '10.0.0.1:8000', ready: true }]);
  const m = { running: 1, waiting: 0, kvUsage: 0.1 };
  store.recordSuccess('10.0.0.1:8000', m);
  store.recordSuccess('10.0.0.2:8000', m);
  store.publish();
  assert.equal(decodeState(store.bytes).sections, undefined, 'no length known: no section');
  assert.equal(store.recordModelInfo('10.0.0.2:8000', 32768), true);
  assert.equal(store.publish(), true);
  const s = decodeState(store.bytes);
  const sec = s.sections?.find((x) => x.tag === CONTEXT_SECTION_TAG);
  assert.ok(sec);
  const v = new DataView(sec.bytes.buffer, sec.bytes.byteOffset, sec.bytes.byteLength);
  // Replicas are in address order: 10.0.0.1 unknown, 10.0.0.2 32768.
  assert.deepEqual([s.replicas[0]!.address, v.getUint32(4, true), v.getUint32(8, true)], ['10.0.0.1:8000', 0, 32768]);
  assert.equal(store.recordModelInfo('10.0.0.2:8000', 32768), false);
  assert.equal(store.publish(), false, 'unchanged: no new version');
  assert.equal(store.recordModelInfo('10.0.0.9:8000', 4096), false, 'not a member');
  store.recordModelInfo('10.0.0.2:8000', null);
  assert.equal(store.publish(), true);
  assert.equal(decodeState(store.bytes).sections, undefined);
});

test('fetchMaxModelLen reads /v1/models and names what went wrong', async () => {
  let mode: 'ok' | 'missing' | 'junk' | 'hang' | 'huge' = 'ok';
  const server = http.createServer((req, res) => {
    if (req.url !== '/v1/models') { res.writeHead(404).end(); return; }
    if (mode === 'hang') return;
    if (mode === 'missing') { res.writeHead(404).end('{"detail":"Not Found"}'); return; }
    // Chunked, no length to refuse it by: 2 MB of a list that never closes.
    if (mode === 'huge') { res.writeHead(200, { 'content-type': 'application/json' }); res.write('{"data": ['); for (let i = 0; i < 32; i++) res.write(' '.repeat(65536)); res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(mode === 'junk' ? '{"data": [' : JSON.stringify({ data: [{ id: 'm', max_model_len: 16384 }] }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    assert.equal(await fetchMaxModelLen(address, 2000), 16384);
    mode = 'missing';
    await assert.rejects(fetchMaxModelLen(address, 2000), /HTTP 404/);
    mode = 'junk';
    await assert.rejects(fetchMaxModelLen(address, 2000), SyntaxError);
    mode = 'huge';
    await assert.rejects(fetchMaxModelLen(address, 2000), /body larger than 1048576 bytes/);
    mode = 'hang';
    await assert.rejects(fetchMaxModelLen(address, 100), /timeout|abort/i);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
});

test('the poller reads a replica at its first good scrape, again after refreshMs or once its scrapes recover', async () => {
  let now = 0;
  const reads: string[] = [];
  const results: Array<[string, number | null]> = [];
  const errors: string[] = [];
  let answer: number | null | Error = 8192;
  const poller = new ModelInfoPoller({
    timeoutMs: 100, refreshMs: 60_000, now: () => now,
    read: async (a) => { reads.push(a); if (answer instanceof Error) throw answer; return answer; },
    onResult: (a, len) => results.push([a, len]),
    onError: (a, e) => errors.push(`${a}: ${e}`),
  });
  const settle = () => new Promise((r) => setImmediate(r));
  poller.scraped('a:1');
  poller.scraped('a:1'); // a read under way: not a second one
  await settle();
  assert.deepEqual(reads, ['a:1']);
  assert.deepEqual(results, [['a:1', 8192]]);
  now = 59_999;
  poller.scraped('a:1');
  await settle();
  assert.equal(reads.length, 1, 'not due yet');
  // Scrapes failed (a restart, perhaps): read again at the next good one.
  poller.failed('a:1');
  answer = 32768;
  poller.scraped('a:1');
  await settle();
  assert.deepEqual(results.at(-1), ['a:1', 32768]);
  // A failed read keeps what the store has and is tried at the next refresh.
  now += 60_000;
  answer = new Error('HTTP 404');
  poller.scraped('a:1');
  await settle();
  assert.deepEqual(errors, ['a:1: HTTP 404']);
  assert.equal(results.length, 2);
  // A replica gone is forgotten; one that comes back is read again.
  poller.retain(new Set());
  answer = 4096;
  poller.scraped('a:1');
  await settle();
  assert.deepEqual(results.at(-1), ['a:1', 4096]);
  poller.stop();
  now += 120_000;
  poller.scraped('a:1');
  await settle();
  assert.equal(reads.length, 4, 'stopped: no more reads');
});

test('end to end: the control plane reads a simulated replica\'s max_model_len into section 17 and /v1/replicas', async () => {
  const { startReplicas } = await import('../../simulator/server.js');
  const { startControlPlane } = await import('../../control-plane/server.js');
  const { memoryLogger } = await import('../../control-plane/log.js');
  const { getState, waitFor } = await import('./support.js');
  const sim = await startReplicas({ replicas: 1, basePort: 0, timeScale: 1, maxModelLen: 16384 });
  const address = sim.replicas[0]!.url.replace('http://', '');
  const cp = await startControlPlane({ replicas: [address], scrapeIntervalMs: 20, scrapeTimeoutMs: 500, stalenessMs: 60_000, logger: memoryLogger() });
  try {
    const sec = await waitFor('section 17', async () => (await getState(cp.url)).state?.sections?.find((x) => x.tag === CONTEXT_SECTION_TAG), 10_000);
    assert.equal(new DataView(sec.bytes.buffer, sec.bytes.byteOffset, sec.bytes.byteLength).getUint32(4, true), 16384);
    const replicas = await (await fetch(`${cp.url}/v1/replicas`)).json() as { replicas: Array<{ maxModelLen: number | null }> };
    assert.equal(replicas.replicas[0]!.maxModelLen, 16384);
  } finally {
    await cp.close();
    await sim.close();
  }
});
