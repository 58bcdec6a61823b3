// Routing on predicted work: deep prefixes found from any worker VM, a long
// prompt kept on the replica that holds it, and the work counters the worker
// VMs share (plugin/sharedData.ts) back at zero once every stream has ended,
// however it ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, SharedDataStore, type ProxyWasmHost } from '../../host/index.js';
import { workTotals } from '../../plugin/sharedData.js';
import { REPLICAS, completion, send, startHost, text } from './support.js';

const config = { replicas: REPLICAS, debugHeaders: true };
const FIRST_TOKEN = new TextEncoder().encode('data: {"choices":[{"text":"x"}]}\n\n');
const ratio = (r: { responseHeaders: Array<[string, string]> }) =>
  r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')![1].split('/').map(Number);

test('a deep prefix placed by one worker VM is found, to its deepest checkpoint, by every other', async () => {
  const { host } = await startHost(config, { workers: 4, sharedData: new SharedDataStore() });
  try {
    const doc = text(101, 40_000); // 625 blocks: deepest checkpoint 624
    const first = send(host, { body: completion(doc + ' first question'), worker: 0 });
    for (let w = 1; w < 4; w++) {
      const r = send(host, { body: completion(doc + ` question from worker ${w}`), worker: w });
      assert.equal(r.endpoint, first.endpoint, `worker ${w}`);
      assert.deepEqual(ratio(r), [624, 625], `worker ${w}`);
    }
  } finally {
    await host.close();
  }
});

test('a 40k-token prompt stays on the replica that holds it while that replica decodes more than the others', async () => {
  const { host } = await startHost(config, { workers: 2, sharedData: new SharedDataStore() });
  const open: Array<{ complete: () => void }> = [];
  try {
    const doc = text(102, 160_000); // about 40k tokens, 2500 blocks
    const first = send(host, { body: completion(doc + ' q0'), worker: 0 });
    // Continuations of it keep decoding there (streams left open, response started).
    for (let i = 1; i <= 6; i++) {
      const r = send(host, { body: completion(doc + ` q${i}`), worker: i % 2 }, false);
      open.push(r);
      assert.equal(r.endpoint, first.endpoint);
    }
    // Short new prompts meanwhile go where nothing is decoding.
    for (let i = 0; i < 4; i++) {
      const r = send(host, { body: completion(text(200 + i, 3000)), worker: i % 2 }, false);
      open.push(r);
      assert.notEqual(r.endpoint, first.endpoint, `short prompt ${i}`);
    }
    for (let i = 7; i < 10; i++) {
      const r = send(host, { body: completion(doc + ` q${i}`), worker: i % 2 });
      assert.equal(r.endpoint, first.endpoint, `request ${i}`);
      assert.deepEqual(ratio(r), [2496, 2500]);
    }
  } finally {
    for (const r of open) r.complete();
    await host.close();
  }
});

/** Whether the next turn of a conversation of `chars` characters stays on its replica once 8 of its turns decode there (the count guard's least cap). */
/**
 * Sends a prompt (`chars` characters of `seed`) and eight more sharing it, kept open, from two
 * worker VMs, after `others` unique prompts; where the eight went (`spread`: to more than one
 * replica) and whether a ninth, past the count cap, stays with the first.
 */
/** `others` unique prompts, then nine requests sharing a prefix, with `between` more unique prompts after each: where do they go? */
async function sharedPrefixRun(seed: number, chars: number, others: number, between = 0): Promise<{ spread: boolean; ninthStays: boolean }> {
  const { host } = await startHost(config, { workers: 2, sharedData: new SharedDataStore() });
  const open: Array<{ complete: () => void }> = [];
  let unique = 0;
  const sendUnique = (n: number) => { for (let i = 0; i < n; i++, unique++) send(host, { body: completion(text(seed * 1000 + unique, 2000)), worker: unique % 2 }); };
  try {
    sendUnique(others);
    const conv = text(seed, chars);
    const first = send(host, { body: completion(conv + ' turn 0'), worker: 0 });
    sendUnique(between);
    let spread = false;
    for (let i = 1; i <= 8; i++) {
      const r = send(host, { body: completion(conv + ` turn ${i}`), worker: i % 2 }, false);
      open.push(r);
      if (r.endpoint !== first.endpoint) spread = true;
      sendUnique(between);
    }
    const next = send(host, { body: completion(conv + ' turn 9'), worker: 1 });
    return { spread, ninthStays: next.endpoint === first.endpoint };
  } finally {
    for (const r of open) r.complete();
    await host.close();
  }
}

test('past the count cap a prefix its demand does not need elsewhere stays where it is held, short or long', async () => {
  // After 40 unique prompts, nine requests sharing a prefix come among four unique prompts each: a
  // fifth of the traffic since the prefix was first found, less than one of the three replicas.
  // Moving would prefill the prefix again (3840 or 1792 tokens); the idle replicas are under the
  // work guard's bound, so only the count guard's move limit keeps them.
  for (const [seed, chars] of [[107, 16_000], [108, 8_000]] as const) {
    const r = await sharedPrefixRun(seed, chars, 40, 4);
    assert.deepEqual(r, { spread: false, ninthStays: true }, `${chars} characters`);
  }
});

test('a prefix that draws most of the traffic spreads over the replicas it needs, from the start or after other traffic', async () => {
  // Alone, the nine draw all of it: three replicas' worth, so its copies are credited and the requests spread.
  const r = await sharedPrefixRun(108, 8_000, 0);
  assert.equal(r.spread, true);
  // After 40 unique prompts they draw all the traffic since the prefix was first found: the same,
  // though a fifth of the requests the gateway counts.
  const after = await sharedPrefixRun(108, 8_000, 40);
  assert.equal(after.ninthStays, false);
});

test('queued tokens move to decoding at the first response bytes, and every counter is back at zero after ends, resets and local replies', async () => {
  const store = new SharedDataStore();
  const { host } = await startHost(config, { workers: 2, sharedData: store, bufferLimitBytes: 65536 });
  try {
    const body = completion(text(103, 4000)); // 4000 characters: 1000 prompt tokens; max_tokens 16
    const head = (len: number): Array<[string, string]> => [[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gateway'], [':scheme', 'http'], ['content-length', String(len)]];
    const enc = new TextEncoder().encode(body);
    const streams = [0, 1, 0].map((worker) => {
      const s = host.newStream({ worker });
      s.requestHeaders(head(enc.length), false);
      s.requestBody(enc, true);
      s.drainRequestData();
      return s;
    });
    let t = workTotals(store);
    assert.equal(t.inflight, 3);
    assert.equal(t.decoding, 0);
    // The first places 1000 new tokens; the same prompt again is matched to its 48-block checkpoint (768 tokens) wherever it went.
    assert.ok(t.queued >= 1000 + 2 * (1000 - 768) && t.queued <= 3000, `queued ${t.queued}`);
    // A streamed response's headers come when the engine takes the request, before its prefill: still queued.
    streams[0]!.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false);
    t = workTotals(store);
    assert.equal(t.decoding, 0);
    assert.ok(t.queued >= 1000 + 2 * (1000 - 768), `queued ${t.queued}`);
    // The first token: its prefill leaves the queue, its decode work (3.8 x 16, rounded) is counted.
    streams[0]!.responseBody(FIRST_TOKEN, false);
    t = workTotals(store);
    assert.equal(t.decoding, 1);
    assert.equal(t.decodeWork, 61);
    // Ends: one after its response, one reset before any response, one reset mid-response.
    streams[0]!.complete();
    streams[1]!.complete();
    streams[2]!.responseHeaders([[':status', '200']], false);
    streams[2]!.responseBody(FIRST_TOKEN, false);
    streams[2]!.complete();
    // A local reply: a body past the proxy's buffer limit is answered 413 before it is routed.
    const big = completion(text(104, 200_000));
    const r = send(host, { body: big, worker: 1, chunk: 16384 });
    assert.equal(r.local?.status, 413);
    // A request the filter routes on load alone (no body).
    send(host, { method: 'GET', path: '/v1/models', worker: 1 });
    t = workTotals(store);
    assert.deepEqual(t, { inflight: 0, decoding: 0, queued: 0, decodeWork: 0 });
  } finally {
    await host.close();
  }
});

/** Sends a request through worker `worker` and leaves it queued (no response yet); returns where it went. */
function sendQueued(host: ProxyWasmHost, body: string, worker: number): string {
  const s = host.newStream({ worker });
  const bytes = new TextEncoder().encode(body);
  s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gateway'], [':scheme', 'http'], ['content-length', String(bytes.length)]], false);
  s.requestBody(bytes, true);
  return s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')![1];
}

test('among replicas predicted alike, each with a prompt queued, the one any worker VM sent to longest ago is taken', async () => {
  const clock = new ManualClock(1_700_000_000_000_000_000n);
  const { host } = await startHost(config, { workers: 2, clock, sharedData: new SharedDataStore() });
  try {
    // Three unique prompts of one length: one to each replica, in an order the first requests' hashes decide.
    const first: string[] = [];
    for (let i = 0; i < 3; i++) {
      first.push(sendQueued(host, completion(text(300 + i, 2000)), i % 2));
      clock.advanceBy(10_000_000n);
    }
    assert.deepEqual([...first].sort(), [...REPLICAS].sort());
    // Every replica now has one such prompt queued: the next ones go, from either worker, in the order the first went.
    for (let i = 0; i < 3; i++) {
      assert.equal(sendQueued(host, completion(text(400 + i, 2000)), (i + 1) % 2), first[i], `request ${i + 3}`);
      clock.advanceBy(10_000_000n);
    }
  } finally {
    await host.close();
  }
});
