// Context lengths through the host: the state's section 17 (encoded by the
// control plane's encoder) gives each replica's max_model_len. A request
// whose prompt (4 bytes a token) and max_tokens pass a replica's goes
// elsewhere while another can take it; where none can, it is routed as
// before but not recorded as cached (vLLM refuses it and caches none of it).
// A malformed section rejects the state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type ProxyWasmHost } from '../../host/index.js';
import { CONTEXT_SECTION_TAG, encodeContextSection } from '../../control-plane/contextSection.js';
import { send, startHost, text } from './support.js';
import { EPOCH_NS, StateDriver, replicaState } from './stateDriver.js';

const R = ['10.4.0.1:8000', '10.4.0.2:8000', '10.4.0.3:8000'];
const config = { controlPlane: { cluster: 'absent_cluster' }, debugHeaders: true };

async function gateway(): Promise<{ host: ProxyWasmHost; state: StateDriver; logs: Array<{ message: unknown }> }> {
  const clock = new ManualClock(EPOCH_NS);
  const { host, logs } = await startHost(config, { clock, workers: 1 });
  return { host, state: new StateDriver([host], clock), logs };
}

const body = (prompt: string, maxTokens?: number) => JSON.stringify({ model: 'qwen', prompt, ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}) });
/** The debug header's matched/total blocks. */
const matched = (r: ReturnType<typeof send>) => Number(r.responseHeaders.find(([k]) => k === 'x-prefix-router-prefix')?.[1]?.split('/')[0]);

test('a request longer than some replicas\' context goes to one that takes it; short ones still spread', async () => {
  const { host, state } = await gateway();
  try {
    state.publish(R.map((a) => replicaState(a)), [encodeContextSection([4096, 4096, 32768])!]);
    // 20k tokens of prompt: only the third fits it.
    for (let i = 0; i < 4; i++) assert.equal(send(host, { body: body(text(10 + i, 80_000), 16) }).endpoint, R[2]);
    // 3000 tokens of prompt fit 4096, but not with 2000 tokens of output asked for.
    assert.equal(send(host, { body: body(text(20, 12_000), 2000) }).endpoint, R[2]);
    const short = new Set<string>();
    for (let i = 0; i < 12; i++) short.add(send(host, { body: body(text(30 + i, 2000), 16) }).endpoint!);
    assert.ok(short.size >= 2, `short prompts went to ${[...short].join(', ')}`);
  } finally {
    await host.close();
  }
});

test('a replica of unknown context length (0) stays a candidate', async () => {
  const { host, state } = await gateway();
  try {
    state.publish(R.map((a) => replicaState(a)), [encodeContextSection([4096, null, 4096])!]);
    for (let i = 0; i < 3; i++) assert.equal(send(host, { body: body(text(40 + i, 80_000), 16) }).endpoint, R[1]);
  } finally {
    await host.close();
  }
});

test('a request every replica would refuse is routed, but not recorded as cached there', async () => {
  const { host, state } = await gateway();
  try {
    const long = text(50, 80_000);
    // Without context lengths the filter records it: the same prompt again matches.
    state.publish(R.map((a) => replicaState(a)));
    const first = send(host, { body: body(long, 16) });
    assert.equal(matched(first), 0);
    assert.ok(matched(send(host, { body: body(long, 16) })) > 0, 'recorded without section 17');
    // With every replica at 4096 tokens, a new one is routed (the engine answers the error) and forgotten.
    state.publish(R.map((a) => replicaState(a)), [encodeContextSection([4096, 4096, 4096])!]);
    const other = text(51, 80_000);
    const r = send(host, { body: body(other, 16) });
    assert.ok(R.includes(r.endpoint!), `routed to ${r.endpoint}`);
    assert.equal(matched(send(host, { body: body(other, 16) })), 0, 'not recorded where it is refused');
    // A prompt that fits is recorded as before.
    const fits = text(52, 4000);
    send(host, { body: body(fits, 16) });
    assert.ok(matched(send(host, { body: body(fits, 16) })) > 0);
  } finally {
    await host.close();
  }
});

test('a malformed section 17 rejects the state; the filter keeps the last good one', async () => {
  const { host, state, logs } = await gateway();
  try {
    state.publish([replicaState(R[0]!)]);
    assert.equal(send(host, { body: body('x') }).endpoint, R[0]);
    // Two replicas in the section, one in the state.
    state.publish([replicaState(R[1]!)], [encodeContextSection([4096, 4096])!]);
    assert.equal(send(host, { body: body('y') }).endpoint, R[0]);
    const rejections = () => logs.filter((l) => String(l.message).includes('context section (17): not 4 bytes for each replica after the count')).length;
    assert.equal(rejections(), 1, logs.map((l) => l.message).join(' | '));
    // A body that is not 4 bytes a replica after its count.
    state.publish([replicaState(R[1]!)], [{ tag: CONTEXT_SECTION_TAG, bytes: new Uint8Array([1, 0, 0, 0, 0, 16]) }]);
    assert.equal(send(host, { body: body('z') }).endpoint, R[0]);
    assert.equal(rejections(), 2);
    state.publish([replicaState(R[1]!)], [encodeContextSection([8192])!]);
    assert.equal(send(host, { body: body('w') }).endpoint, R[1]);
  } finally {
    await host.close();
  }
});

test('an endpoint subset comes first: a request too long for the subset stays in it (unrecorded); a subset of none is set aside', async () => {
  const clock = new ManualClock(EPOCH_NS);
  const { host } = await startHost({ ...config, subsetHeader: true }, { clock, workers: 1 });
  const state = new StateDriver([host], clock);
  try {
    state.publish(R.map((a) => replicaState(a)), [encodeContextSection([4096, 4096, 32768])!]);
    const long = text(60, 80_000);
    const inSubset = () => send(host, { headers: [['x-prefix-router-endpoint-subset', `${R[0]},${R[1]}`]], body: body(long, 16) });
    assert.ok([R[0], R[1]].includes(inSubset().endpoint!));
    assert.equal(matched(inSubset()), 0, 'refused there: not recorded');
    // A subset naming no replica of the state is set aside: the context bound then picks the one that fits.
    assert.equal(send(host, { headers: [['x-prefix-router-endpoint-subset', '10.9.9.9:8000']], body: body(long, 16) }).endpoint, R[2]);
    state.advance(100);
    assert.equal(host.metrics().get('prefix_router.subset_ignored')?.value, 1);
    // Without the bound (no section), a subset of none is counted the same.
    state.publish(R.map((a) => replicaState(a)));
    send(host, { headers: [['x-prefix-router-endpoint-subset', '10.9.9.9:8000']], body: body(text(61, 400), 16) });
    state.advance(100);
    assert.equal(host.metrics().get('prefix_router.subset_ignored')?.value, 2);
  } finally {
    await host.close();
  }
});
