import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeState, encodeState, METRICS_AGE_UNKNOWN, StateDecodeError, type RouterState } from '../../control-plane/stateWire.js';

const state: RouterState = {
  version: 1795544463022002n,
  weights: { prefix: 3, queue: 1, kvCache: 1, inflight: 0.5 },
  replicas: [
    { address: '10.0.0.1:8000', ready: true, metricsKnown: true, waiting: 3, running: 17, kvUsage: 0.25, kvCapacityTokens: 116496, metricsAgeMs: 12 },
    { address: '[fd00::1]:8000', ready: false, metricsKnown: false, waiting: 0, running: 0, kvUsage: 0, kvCapacityTokens: 0, metricsAgeMs: METRICS_AGE_UNKNOWN },
  ],
};

test('decodeState(encodeState(x)) round-trips', () => {
  assert.deepEqual(decodeState(encodeState(state)), state);
  const empty = { ...state, replicas: [] };
  assert.deepEqual(decodeState(encodeState(empty)), empty);
});

test('encoding clamps what the format cannot hold; decoding rejects any corrupted byte', () => {
  const clamped = decodeState(encodeState({ ...state, replicas: [{ ...state.replicas[0], waiting: 1e9, running: -4, kvUsage: 7 }] }));
  assert.deepEqual([clamped.replicas[0].waiting, clamped.replicas[0].running, clamped.replicas[0].kvUsage], [65535, 0, 1]);
  const bytes = encodeState(state);
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i] ^= 0x40;
    assert.throws(() => decodeState(bad), StateDecodeError, `byte ${i}`);
  }
  assert.throws(() => decodeState(bytes.subarray(0, bytes.length - 1)), StateDecodeError);
  assert.throws(() => encodeState({ ...state, replicas: [state.replicas[0], state.replicas[0]] }), /twice/);
  assert.throws(() => encodeState({ ...state, version: 0n }), /version/);
});

test('the encoder never writes weights the filter would refuse', () => {
  for (const weights of [
    { prefix: 1e-320, queue: 0, kvCache: 0, inflight: 0 }, // all 0 as 32-bit floats
    { prefix: 0, queue: 0, kvCache: 0, inflight: 0 },
    { prefix: 3, queue: 1, kvCache: 1, inflight: 2e6 }, // above the filter's bound
    { prefix: 3, queue: -1, kvCache: 1, inflight: 1 },
    { prefix: 3, queue: 1, kvCache: NaN, inflight: 1 },
  ]) assert.throws(() => encodeState({ ...state, weights }), /state not encoded: weights/, JSON.stringify(weights));
  // The smallest weight a 32-bit float holds is enough, and round-trips as that float.
  const tiny = decodeState(encodeState({ ...state, weights: { prefix: 1e-45, queue: 0, kvCache: 0, inflight: 0 } }));
  assert.equal(tiny.weights.prefix, Math.fround(1e-45));
});

test('sections round-trip in tag order; a state without them stays format 1 for older filters', () => {
  const withSections: RouterState = { ...state, sections: [{ tag: 3, bytes: new Uint8Array([1, 2, 3]) }, { tag: 900, bytes: new Uint8Array(0) }] };
  const bytes = encodeState(withSections);
  assert.equal(new DataView(bytes.buffer).getUint16(4, true), 2);
  assert.deepEqual(decodeState(bytes), withSections);
  assert.equal(new DataView(encodeState(state).buffer).getUint16(4, true), 1);
  assert.equal(new DataView(encodeState({ ...state, sections: [] }).buffer).getUint16(4, true), 1);
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i] ^= 0x40;
    assert.throws(() => decodeState(bad), StateDecodeError, `byte ${i}`);
  }
  assert.throws(() => encodeState({ ...state, sections: [{ tag: 5, bytes: new Uint8Array(0) }, { tag: 5, bytes: new Uint8Array(0) }] }), /increasing tag order/);
  assert.throws(() => encodeState({ ...state, sections: [{ tag: 0, bytes: new Uint8Array(0) }] }), /1\.\.65535/);
});
