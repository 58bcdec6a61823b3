// Session affinity and LoRA affinity through the host: a session sticks to
// one replica on every worker VM and gateway until that replica saturates;
// a LoRA request prefers replicas running its adapter, then a free slot; the
// LoRA section of the state (tag 16), encoded by the control plane's encoder,
// is decoded by the filter and a malformed one rejects the state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type ProxyWasmHost } from '../../host/index.js';
import { encodeLoraSection, LORA_SECTION_TAG } from '../../control-plane/loraSection.js';
import { completion, send, startHost, text } from './support.js';
import { EPOCH_NS, StateDriver, replicaState } from './stateDriver.js';

const R = ['10.3.0.1:8000', '10.3.0.2:8000', '10.3.0.3:8000', '10.3.0.4:8000'];
const cp = { controlPlane: { cluster: 'absent_cluster' } };

async function gateways(n: number, config: object = cp, workers = 2): Promise<{ hosts: ProxyWasmHost[]; state: StateDriver }> {
  const clock = new ManualClock(EPOCH_NS);
  const hosts: ProxyWasmHost[] = [];
  for (let g = 0; g < n; g++) hosts.push((await startHost(config, { clock, workers })).host);
  return { hosts, state: new StateDriver(hosts, clock) };
}

const closeAll = (hs: ProxyWasmHost[]) => Promise.all(hs.map((h) => h.close()));

test('a session goes to one replica from every worker VM and gateway, whatever its prompt', async () => {
  const { hosts, state } = await gateways(2);
  try {
    state.publish(R.map((a) => replicaState(a)));
    const homes = new Set<string>();
    for (let sess = 0; sess < 16; sess++) {
      const seen = new Set<string>();
      for (let turn = 0; turn < 4; turn++) {
        const r = send(hosts[turn % 2]!, { worker: (turn >> 1) % 2, headers: [['x-session-id', `user-${sess}`]], body: completion(text(1000 * sess + turn, 400)) });
        seen.add(r.endpoint!);
      }
      assert.equal(seen.size, 1, `session ${sess} went to ${[...seen].join(', ')}`);
      homes.add([...seen][0]!);
    }
    assert.ok(homes.size >= 3, `16 sessions spread over ${homes.size} replicas`);
    state.advance(100); // counters reach the host on a tick
    assert.ok((hosts[0]!.metrics().get('prefix_router.session_affinity_routed')?.value ?? 0) > 0);
  } finally {
    await closeAll(hosts);
  }
});

test('the same prompts without a session spread by prompt (the test above would fail without affinity)', async () => {
  const { hosts, state } = await gateways(1, { ...cp, sessionAffinity: { enabled: false } });
  try {
    state.publish(R.map((a) => replicaState(a)));
    let split = 0;
    for (let sess = 0; sess < 16; sess++) {
      const seen = new Set<string>();
      for (let turn = 0; turn < 4; turn++) seen.add(send(hosts[0]!, { headers: [['x-session-id', `user-${sess}`]], body: completion(text(1000 * sess + turn, 400)) }).endpoint!);
      if (seen.size > 1) split++;
    }
    assert.ok(split > 0);
  } finally {
    await closeAll(hosts);
  }
});

test('a session moves off its saturated replica, stays on the next while it has room, and the body user names a session', async () => {
  const { hosts, state } = await gateways(1);
  const h = hosts[0]!;
  try {
    state.publish(R.map((a) => replicaState(a)));
    const home = send(h, { headers: [['X-Session-Id', 'conv-7']], body: completion(text(1, 300)) }).endpoint!;
    state.publish(R.map((a) => replicaState(a, a === home ? { waiting: 6 } : {})));
    const next = send(h, { headers: [['x-session-id', 'conv-7']], body: completion(text(2, 300)) }).endpoint!;
    assert.notEqual(next, home);
    for (let i = 3; i < 6; i++) assert.equal(send(h, { headers: [['x-session-id', 'conv-7']], body: completion(text(i, 300)) }).endpoint, next);
    // The body's `user` is the session when no header names one; the header wins over it.
    const byUser = (u: string, seed: number, headers: Array<[string, string]> = []) =>
      send(h, { headers, body: JSON.stringify({ model: 'qwen', prompt: text(seed, 300), user: u }) }).endpoint!;
    const u = byUser('alice', 10);
    for (let i = 11; i < 15; i++) assert.equal(byUser('alice', i), u);
    assert.equal(byUser('bob', 20, [['x-session-id', 'conv-7']]), next);
  } finally {
    await closeAll(hosts);
  }
});

function lora(over: Array<{ maxLora: number; running?: string[]; waiting?: string[]; baseModel?: string } | null>) {
  return encodeLoraSection(over.map((r) => r && { running: [], waiting: [], baseModel: 'qwen', ...r }))!;
}

test('LoRA: the replica running the adapter first, then a free slot, never one whose slots are taken', async () => {
  const { hosts, state } = await gateways(1);
  const h = hosts[0]!;
  try {
    const reps = R.slice(0, 3).map((a) => replicaState(a));
    state.publish(reps, [lora([{ maxLora: 1, running: ['sql-lora'] }, { maxLora: 2 }, { maxLora: 1, running: ['other-lora'], waiting: ['third-lora'] }])]);
    for (let i = 0; i < 4; i++) assert.equal(send(h, { body: completion(text(100 + i, 300), 'sql-lora') }).endpoint, R[0]);
    // Waiting counts as held: its load is on the way.
    assert.equal(send(h, { body: completion(text(110, 300), 'third-lora') }).endpoint, R[2]);
    for (let i = 0; i < 4; i++) assert.equal(send(h, { body: completion(text(120 + i, 300), 'new-lora') }).endpoint, R[1]);
    state.advance(100);
    assert.equal(h.metrics().get('prefix_router.lora_affinity_routed')?.value, 9);
    // The base model is not a LoRA request: it spreads as usual.
    const base = new Set<string>();
    for (let i = 0; i < 12; i++) base.add(send(h, { body: completion(text(200 + i, 300), 'qwen') }).endpoint!);
    assert.ok(base.size >= 2);
    state.advance(100);
    assert.equal(h.metrics().get('prefix_router.lora_affinity_routed')?.value, 9);
  } finally {
    await closeAll(hosts);
  }
});

test('LoRA: prefix matches are per adapter (the hash is seeded with the model)', async () => {
  const { hosts, state } = await gateways(1);
  const h = hosts[0]!;
  try {
    state.publish(R.slice(0, 2).map((a) => replicaState(a)));
    const prompt = text(300, 2000);
    const first = send(h, { body: completion(prompt, 'sql-lora') });
    const ratio = (r: ReturnType<typeof send>) => r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')?.[1];
    assert.match(ratio(first)!, /^0\//);
    assert.doesNotMatch(ratio(send(h, { body: completion(prompt, 'sql-lora') }))!, /^0\//, 'same adapter: a match');
    assert.match(ratio(send(h, { body: completion(prompt, 'other-lora') }))!, /^0\//, 'another adapter: no match');
  } finally {
    await closeAll(hosts);
  }
});

test('LoRA: a malformed section 16 rejects the state; the filter keeps the last good one', async () => {
  const clock = new ManualClock(EPOCH_NS);
  const { host, logs } = await startHost(cp, { clock, workers: 1 });
  const state = new StateDriver([host], clock);
  try {
    state.publish([replicaState(R[0]!)]);
    assert.equal(send(host, { body: completion('x', 'qwen') }).endpoint, R[0]);
    // Three replicas in the section, one in the state.
    state.publish([replicaState(R[1]!)], [lora([{ maxLora: 1 }, { maxLora: 1 }, { maxLora: 1 }])]);
    assert.equal(send(host, { body: completion('y', 'qwen') }).endpoint, R[0]);
    assert.ok(logs.some((l) => String(l.message).includes('LoRA section (16): replica count differs')), logs.map((l) => l.message).join(' | '));
    // An unknown tag is skipped, not an error.
    state.publish([replicaState(R[1]!)], [{ tag: LORA_SECTION_TAG + 100, bytes: new Uint8Array([1, 2, 3]) }]);
    assert.equal(send(host, { body: completion('z', 'qwen') }).endpoint, R[1]);
  } finally {
    await host.close();
  }
});
