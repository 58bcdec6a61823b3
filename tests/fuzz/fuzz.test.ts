// A seeded, smaller version of `npm run fuzz`: about 20,000 generated and mutated
// requests, state payloads (shared data and HTTP long poll) and configurations through
// the real module, two worker VMs per host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runFuzz, splitCases, WASM_PATH } from './harness.js';

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

test('the filter and the reference codec (control-plane/stateWire.ts) agree on every state payload', { skip: !existsSync(WASM_PATH) && 'plugin/prefix-router.wasm not built' }, async () => {
  const report = await runFuzz({ seed: 777, requests: 0, statePayloads: 3000, httpStatePayloads: 100, configs: 0 });
  assert.equal(report.stateDecoderDisagreements, 0, JSON.stringify(report.findings.filter((f) => f.kind === 'state-decoder-disagreement').slice(0, 3)));
  assert.equal(report.traps, 0);
});

test('the filter accepts exactly the configurations plugin/config.schema.json accepts', { skip: !existsSync(WASM_PATH) && 'plugin/prefix-router.wasm not built' }, async () => {
  const report = await runFuzz({ seed: 4242, requests: 0, statePayloads: 0, httpStatePayloads: 0, configs: 400 });
  assert.equal(report.traps, 0);
  assert.equal(report.configRejectedSilently, 0);
  assert.equal(report.configSchemaDisagreements, 0, JSON.stringify(report.findings.filter((f) => f.kind === 'config-schema-disagreement').slice(0, 3)));
});
