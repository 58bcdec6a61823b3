import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPLICAS, chat, completion, send, startHost, text } from './support.js';
import type { ProxyWasmHost } from '../../host/index.js';
import { inflightTotal as sharedInflightTotal } from '../../plugin/sharedData.js';

const config = { replicas: REPLICAS };

test('routes a completion to a configured replica and says so in the response', async () => {
  const { host } = await startHost(config);
  try {
    const r = send(host, { body: completion(text(1, 2000)) });
    assert.equal(r.local, null);
    assert.ok(REPLICAS.includes(r.endpoint!), `endpoint ${r.endpoint}`);
    assert.equal(r.endpoints.length, 1);
    const served = r.responseHeaders.find(([k]) => k === 'x-prefix-router-endpoint');
    assert.equal(served?.[1], r.endpoint);
    const prefix = r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix');
    assert.match(prefix![1], /^0\/31$/); // 2000 bytes: 31 full 64-byte blocks, none cached yet
  } finally {
    await host.close();
  }
});

test('sends requests sharing a prefix to the replica that holds it', async () => {
  const { host } = await startHost(config);
  try {
    const system = text(7, 4000);
    const first = send(host, { body: completion(system + ' question zero'), worker: 0 });
    for (let i = 1; i < 10; i++) {
      const r = send(host, { body: completion(system + ` question ${i}`), worker: 0 });
      assert.equal(r.endpoint, first.endpoint, `request ${i}`);
      const [matched, total] = r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')![1].split('/').map(Number);
      // The system prompt's 62 blocks are matched to their deepest checkpoint (every 16th past 16).
      assert.ok(matched === 48 && total >= 62, `matched ${matched}/${total}`);
    }
  } finally {
    await host.close();
  }
});

test('worker VMs place a new prefix on the same replica without talking (rendezvous)', async () => {
  const { host } = await startHost(config);
  try {
    let agreed = 0;
    for (let g = 0; g < 30; g++) {
      const p = text(100 + g, 1500);
      const a = send(host, { body: completion(p + ' a'), worker: 0 });
      const b = send(host, { body: completion(p + ' b'), worker: 1 });
      if (a.endpoint === b.endpoint) agreed++;
    }
    assert.equal(agreed, 30);
  } finally {
    await host.close();
  }
});

test('spreads distinct prefixes across replicas', async () => {
  const { host } = await startHost(config);
  try {
    const counts = new Map<string, number>();
    for (let g = 0; g < 300; g++) {
      const r = send(host, { body: completion(text(1000 + g, 800)) });
      counts.set(r.endpoint!, (counts.get(r.endpoint!) ?? 0) + 1);
    }
    assert.equal(counts.size, 3);
    for (const [, c] of counts) assert.ok(c > 60, `uneven: ${[...counts.values()]}`);
  } finally {
    await host.close();
  }
});

test('one system prompt shared by every in-flight request does not pin one replica', async () => {
  const { host } = await startHost(config);
  try {
    const system = text(3, 6000);
    const open = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const r = send(host, { body: chat([{ role: 'system', content: system }, { role: 'user', content: `q${i}` }]), worker: i % 2 }, false);
      open.push(r);
      counts.set(r.endpoint!, (counts.get(r.endpoint!) ?? 0) + 1);
    }
    const loads = REPLICAS.map((a) => counts.get(a) ?? 0);
    const mean = 60 / 3;
    assert.ok(Math.max(...loads) / mean <= 1.25, `loads ${loads}`);
    for (const r of open) r.complete();
  } finally {
    await host.close();
  }
});

test('in-flight counts cross worker VMs and drop when requests end', async () => {
  const { host } = await startHost({ replicas: REPLICAS, weights: { prefix: 0, queue: 0, kvCache: 0, inflight: 1 } });
  try {
    // Requests without a prompt go by load alone: with in-flight the only weight they fill replicas evenly, whichever worker sends them.
    const open = [];
    for (let i = 0; i < 6; i++) open.push(send(host, { method: 'GET', path: '/v1/models', worker: i % 2 }, false));
    const counts = new Map<string, number>();
    for (const r of open) counts.set(r.endpoint!, (counts.get(r.endpoint!) ?? 0) + 1);
    assert.deepEqual([...counts.values()].sort(), [2, 2, 2]);
    assert.equal(inflightTotal(host), 6);
    // Finish the two on one replica: every worker's row drops them at once, and the next request goes there.
    const target = open[0].endpoint!;
    for (const r of open) if (r.endpoint === target) r.complete();
    assert.equal(inflightTotal(host), 4);
    const next = send(host, { method: 'GET', path: '/v1/models', worker: 1 });
    assert.equal(next.endpoint, target);
    for (const r of open) r.complete();
  } finally {
    await host.close();
  }
});

test('chat and completions: role, content parts and unicode all route', async () => {
  const { host } = await startHost(config);
  try {
    const uni = 'Réponds en français, s’il te plaît. 日本語のテキスト 😀 ' + text(5, 500);
    const a = send(host, { path: '/v1/chat/completions', body: chat([{ role: 'system', content: uni }, { role: 'user', content: 'hi' }]) });
    const b = send(host, { path: '/v1/chat/completions', body: chat([{ role: 'system', content: [{ type: 'text', text: uni }] }, { role: 'user', content: 'other' }]) });
    assert.equal(a.endpoint, b.endpoint);
    const c = send(host, { body: JSON.stringify({ model: 'qwen', prompt: [uni, 'second'] }) });
    assert.ok(REPLICAS.includes(c.endpoint!));
  } finally {
    await host.close();
  }
});

test('a body split into many chunks routes like one sent whole', async () => {
  const { host } = await startHost(config);
  try {
    const body = completion(text(11, 3000));
    const whole = send(host, { body, worker: 0 });
    const chunked = send(host, { body, worker: 0, chunk: 7 });
    assert.equal(chunked.endpoint, whole.endpoint);
    const [matched] = chunked.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')![1].split('/').map(Number);
    assert.equal(matched, 32); // 46 blocks: the deepest checkpoint
  } finally {
    await host.close();
  }
});

test('debug headers can be turned off', async () => {
  const { host } = await startHost({ replicas: REPLICAS, debugHeaders: false });
  try {
    const r = send(host, { body: completion('hello') });
    assert.ok(r.endpoint);
    assert.equal(r.responseHeaders.find(([k]) => k.startsWith('x-prefix-router')), undefined);
  } finally {
    await host.close();
  }
});

test('sharedState false (GCP Service Extensions): routes on configuration alone', async () => {
  const { host } = await startHost({ replicas: REPLICAS, sharedState: false });
  try {
    const p = text(21, 2000);
    const a = send(host, { body: completion(p + 'x'), worker: 0 });
    const b = send(host, { body: completion(p + 'y'), worker: 1 });
    assert.equal(a.endpoint, b.endpoint);
  } finally {
    await host.close();
  }
});

test('Envoy stats: requests per replica, prefix blocks matched, fallbacks', async () => {
  const { host } = await startHost(config);
  try {
    const system = text(9, 1280); // exactly 20 blocks
    for (let i = 0; i < 10; i++) send(host, { body: completion(system), worker: 0 });
    send(host, { method: 'GET', path: '/v1/models', worker: 0 });
    const value = (name: string) => Number(host.metrics().get(name)?.value ?? 0);
    const deadline = Date.now() + 3000;
    while (value('prefix_router.requests_routed') < 11 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(value('prefix_router.requests_routed'), 11);
    assert.equal(value('prefix_router.fallback_load_only'), 1);
    assert.equal(value('prefix_router.requests_prefix_hit'), 9);
    const total = value('prefix_router.prefix_blocks_total');
    assert.ok(total >= 200, `blocks total ${total}`);
    // Nine hits on the 20 blocks' deepest checkpoint, 16.
    assert.equal(value('prefix_router.prefix_blocks_matched'), 9 * 16);
    let perReplica = 0;
    for (const [name, m] of host.metrics()) if (name.startsWith('prefix_router.replica_requests.')) perReplica += Number(m.value);
    assert.equal(perReplica, 11);
  } finally {
    await host.close();
  }
});

/** Requests in flight by the shared in-flight rows (plugin/sharedData.ts). */
function inflightTotal(host: ProxyWasmHost): number {
  return sharedInflightTotal(host.sharedData, host.vmId);
}

test('another worker VM reports what the gateway believes the chosen replica holds (x-prefix-router-prefix)', async () => {
  const { host } = await startHost(config, { workers: 3 });
  try {
    const ratio = (r: { responseHeaders: Array<[string, string]> }) =>
      r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')![1].split('/').map(Number);
    const p = text(31, 1500); // 23 blocks
    const first = send(host, { body: completion(p), worker: 0 });
    assert.deepEqual(ratio(first), [0, 23]);
    // The same request on another worker: the chain was placed there, to its deepest checkpoint (16).
    const again = send(host, { body: completion(p), worker: 1 });
    assert.equal(again.endpoint, first.endpoint);
    assert.deepEqual(ratio(again), [16, 23]);
    // The same start (10 blocks), another question, on a third worker: all 10 (every block up to 16 is a checkpoint).
    const other = send(host, { body: completion(p.slice(0, 700) + text(32, 800)), worker: 2 });
    assert.equal(other.endpoint, first.endpoint);
    assert.deepEqual(ratio(other), [10, 23]);
  } finally {
    await host.close();
  }
});

test('a worker that knows only the shared system prompt finds how much more another worker placed (checkpoints)', async () => {
  const { host } = await startHost(config, { workers: 2 });
  try {
    const ratio = (r: { responseHeaders: Array<[string, string]> }) =>
      r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')![1].split('/').map(Number);
    const system = text(41, 1280); // 20 blocks
    const x1 = system + text(42, 1500); // 43 blocks
    // Worker 1 learns the system prompt from another conversation.
    const y = send(host, { body: completion(system + text(43, 1500)), worker: 1 });
    // Worker 0 places conversation x's first turn (and checkpoints it at 16 and 32 blocks).
    const first = send(host, { body: completion(x1), worker: 0 });
    assert.equal(first.endpoint, y.endpoint);
    // x's next turn on worker 1: its own index holds the 20 system-prompt blocks; the fleet, 32.
    const next = send(host, { body: completion(x1 + text(44, 2000)), worker: 1 });
    assert.equal(next.endpoint, first.endpoint);
    assert.deepEqual(ratio(next), [32, 74]);
  } finally {
    await host.close();
  }
});
