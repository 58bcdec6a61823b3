// The filter's admission through the picker: a request the filter holds (every replica saturated)
// gets no answer until a tick lets it go, then its decision arrives on the same stream; one whose
// wait ends is refused with the filter's 429 as an ImmediateResponse, retry-after included; a
// sheddable one is refused at once. Replica state and time are driven as in tests/filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../host/index.js';
import { EPOCH_NS, StateDriver, replicaState } from '../filter/stateDriver.js';
import { text } from '../filter/support.js';
import { startPickerGateway } from '../../host/endpointPicker/pickerGateway.js';
import { BodySendMode, POST_HEADERS, ProxyStream, completionBody, metadataEndpoints, startTestPicker, until, type PickerUnderTest } from './support.js';

const A = '10.2.0.1:8000', B = '10.2.0.2:8000';
const saturated = (a: string) => replicaState(a, { waiting: 9, kvUsage: 0.5 });
const FULL_DUPLEX = { request: BodySendMode.FULL_DUPLEX_STREAMED, response: BodySendMode.NONE };

async function setup(): Promise<{ p: PickerUnderTest; state: StateDriver }> {
  const clock = new ManualClock(EPOCH_NS);
  const p = await startTestPicker({
    controlPlane: { cluster: 'absent_cluster' },
    admission: { enabled: true, waitMs: 1000, retryAfterS: 2, objectives: { batch: -1 } },
  }, {}, { clock, workers: 1 });
  const state = new StateDriver([p.host], clock);
  return { p, state };
}

function request(p: PickerUnderTest, seed: number, extra: [string, string][] = []): ProxyStream {
  const s = new ProxyStream(p.client);
  s.headers([...POST_HEADERS, ...extra], false, FULL_DUPLEX);
  s.body(completionBody(text(seed, 300)), true);
  return s;
}

test('held while every replica is saturated, then routed on the same stream once one has room', async () => {
  const { p, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const s = request(p, 1);
    await until(() => p.picker.openStreams() === 1);
    assert.equal(await s.silentFor(150), true, 'no answer while held');
    state.publish([saturated(A), replicaState(B, { waiting: 1 })]);
    state.advance(100);
    const h = await s.next();
    assert.equal(metadataEndpoints(h.dynamic_metadata)[0], B);
    s.finish();
  } finally {
    await p.close();
  }
});

test('refused with the filter\'s 429 and retry-after once the wait is over; a sheddable request at once', async () => {
  const { p, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const held = request(p, 2);
    await until(() => p.picker.openStreams() === 1);
    assert.equal(await held.silentFor(100), true);
    state.advance(1100);
    const r = (await held.next()).immediate_response!;
    assert.equal(r.status?.code, 429);
    assert.equal(r.headers?.set_headers?.find((o) => o.header?.key === 'retry-after')?.header?.raw_value?.toString(), '2');
    assert.equal(JSON.parse(Buffer.from(r.body!).toString()).error.type, 'rate_limit_exceeded');
    held.finish();
    const shed = request(p, 3, [['x-gateway-inference-objective', 'batch']]);
    assert.equal((await shed.next()).immediate_response?.status?.code, 429);
    shed.finish();
  } finally {
    await p.close();
  }
});

test('a hold longer than the proxy\'s message timeout: the proxy gives up as its failure mode says (FailClose: 504)', async () => {
  const { p, state } = await setup();
  const gw = await startPickerGateway({ picker: p.picker.address, failureMode: 'FailClose', messageTimeoutMs: 200 });
  try {
    state.publish([saturated(A), saturated(B)]);
    const r = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: completionBody(text(4, 300)) });
    assert.equal(r.status, 504);
    await r.arrayBuffer();
    await until(() => p.picker.openStreams() === 0); // the proxy's reset ended the filter's held request too
  } finally {
    await gw.close();
    await p.close();
  }
});
