// A seeded, smaller version of `npm run fuzz`: about 20,000 generated and mutated
// requests, state payloads (shared data and HTTP long poll) and configurations through
// the real module, two worker VMs per host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ProxyWasmHost, SharedDataStore } from '../../host/index.js';
import { decodeState } from '../../control-plane/stateWire.js';
import { fleetSectionsOf } from '../../control-plane/fleetWire.js';
import { runFuzz, splitCases, STATIC_REPLICAS, WASM_PATH } from './harness.js';
import { writeStamp } from '../../plugin/sharedData.js';

test('20k seeded fuzz cases: no trap, every request routed to a known replica or answered with a JSON 503', { skip: !existsSync(WASM_PATH) && 'plugin/prefix-router.wasm not built' }, async () => {
  const report = await runFuzz({ seed: 20240, ...splitCases(20_000) });
  const show = JSON.stringify(report.findings.slice(0, 5), null, 1);
  assert.ok(report.cases >= 20_000, `only ${report.cases} cases ran`);
  assert.equal(report.traps, 0, show);
  assert.equal(report.unroutedWithoutError, 0, show);
  assert.equal(report.hostileLeaks, 0, show);
  assert.equal(report.pollStalls, 0, show);
  assert.equal(report.configRejectedSilently, 0, show);
  // the generators reach every branch they are meant to
  assert.ok(report.routed > 10_000 && report.errors503 > 0, JSON.stringify(report));
  assert.ok(report.statesAccepted > 50 && report.statesRejected > 50, JSON.stringify(report));
  assert.ok(report.configsAccepted > 5 && report.configsRejected > 5, JSON.stringify(report));
  assert.ok(report.httpStatePayloadsDone >= 40, JSON.stringify(report));
});

/**
 * Found by `npm run fuzz` (fixed in dce7c1f): control-plane/stateWire.ts took any run of hex digits,
 * ':' and '.' in brackets as an IPv6 address ('[fd00A:1]:8007'); the filter's decoder
 * (assembly/state/address.ts) wants at least two colons and rejected the whole state, so a control
 * plane could publish a state every filter refuses. Payload from seed 1, state#12399.
 */
const DISAGREEING_PAYLOAD = '5052535401000000d6bb4e74000000000000803f0000803f0000000000000000040000000e5b66643030413a315d3a38303037020f0050006bec0c3ff04902000d0100000d31302e322e302e313a383030300006007400b632d33e00000000ffffffff0d31302e332e302e323a383030300200001f01fec2283ef04902002f0000000d31302e302e302e333a38303030038080830061c0873d00000000750000003bea8371';

test('the filter and the reference codec (control-plane/stateWire.ts) agree on every state payload', {
  skip: !existsSync(WASM_PATH) && 'plugin/prefix-router.wasm not built',
}, async () => {
  const payload = Buffer.from(DISAGREEING_PAYLOAD, 'hex');
  let codecReason = '';
  try { fleetSectionsOf(decodeState(payload)); } catch (e) { codecReason = (e as Error).message; }
  const { host, rejections } = await hostWithState(payload);
  try {
    assert.equal(rejections.length > 0, codecReason !== '', `the filter ${rejections.length ? `rejects (${rejections[0]})` : 'accepts'}, control-plane/stateWire.ts ${codecReason ? `rejects (${codecReason})` : 'accepts'}`);
  } finally {
    await host.close();
  }
  const report = await runFuzz({ seed: 777, requests: 0, statePayloads: 3000, httpStatePayloads: 100, configs: 0 });
  assert.equal(report.stateDecoderDisagreements, 0, JSON.stringify(report.findings.filter((f) => f.kind === 'state-decoder-disagreement').slice(0, 3)));
  assert.equal(report.traps, 0);
});

/** A host whose shared data holds `payload` as the published state; one request makes a worker read it. */
async function hostWithState(payload: Uint8Array): Promise<{ host: ProxyWasmHost; rejections: string[] }> {
  const rejections: string[] = [];
  const store = new SharedDataStore();
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(WASM_PATH), workers: 1, pluginConfig: JSON.stringify({ replicas: STATIC_REPLICAS }), sharedData: store, logLevel: 'warn',
    onLog: (e) => { if (e.message.includes('state rejected')) rejections.push(e.message); },
  });
  const envelope = new Uint8Array(8 + payload.length);
  envelope.set(payload, 8);
  store.set('prefix_router', 'prefix_router.state', envelope, 0);
  writeStamp(store, { version: new DataView(payload.buffer, payload.byteOffset).getBigUint64(8, true), seenNs: 0n });
  const s = host.newStream({ worker: 0 });
  s.requestHeaders([[':method', 'GET'], [':path', '/v1/models'], [':authority', 'gw']], true);
  s.complete();
  return { host, rejections };
}

test('the filter accepts exactly the configurations plugin/config.schema.json accepts', { skip: !existsSync(WASM_PATH) && 'plugin/prefix-router.wasm not built' }, async () => {
  const report = await runFuzz({ seed: 4242, requests: 0, statePayloads: 0, httpStatePayloads: 0, configs: 400 });
  assert.equal(report.traps, 0);
  assert.equal(report.configRejectedSilently, 0);
  assert.equal(report.configSchemaDisagreements, 0, JSON.stringify(report.findings.filter((f) => f.kind === 'config-schema-disagreement').slice(0, 3)));
});
