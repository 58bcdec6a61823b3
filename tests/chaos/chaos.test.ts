// A fast version of `npm run chaos`: each fault scenario once, under load from a separate
// process, with the simulated replicas at a high time scale and fewer requests. Asserts
// behaviour only (no failed requests beyond those allowed, state kept and caught up,
// traffic left the faulty replica), never wall-clock speed.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAOS_DEFAULTS, SCENARIOS, type ChaosOptions, type ScenarioName, type ScenarioResult } from './scenarios.js';

const FAST: ChaosOptions = { ...CHAOS_DEFAULTS, requests: 5000, timeScale: 50, warmUp: 100, controlPlaneDownMs: 500, corruptForMs: 800 };
const results = new Map<ScenarioName, ScenarioResult>();

before(async () => {
  for (const name of Object.keys(SCENARIOS) as ScenarioName[]) results.set(name, await SCENARIOS[name](FAST));
});

function check(name: ScenarioName, what: string): void {
  const r = results.get(name)!;
  const c = r.checks.find((x) => x.what === what);
  assert.ok(c, `no check '${what}' in ${name}`);
  assert.ok(c.ok, `${name}: ${what}: ${c.detail}`);
}

test('control plane SIGKILLed and restarted under load: no failed request, last state kept, then caught up', () => {
  for (const what of ['no failed request', 'requests kept flowing while the control plane was down', 'the last good state was kept while down', 'state caught up after the restart']) check('control-plane-restart', what);
});

test('replica killed under load: only requests in flight on it may fail, later ones are retried on the runner-up, traffic leaves it', () => {
  for (const what of ['failed requests no more than those in flight on the dead replica', 'requests sent to the dead replica after the kill were retried on the runner-up', 'traffic left the dead replica']) check('replica-killed', what);
});

test('replica killed: two failed scrapes take it out of the state (traffic leaves within 2 scrape intervals)', () => {
  check('replica-killed', 'after two failed scrapes the state marks the replica not ready (traffic leaves within 2 scrape intervals)');
});

test("a replica's /metrics hanging: marked stale, the scrape loop goes on, traffic leaves it, nothing fails", () => {
  for (const what of ['no failed request', 'the replica was marked stale', 'the scrape loop never stalled (other replicas stayed fresh)', 'traffic left the replica']) check('metrics-hang', what);
});

test('corrupted state payloads: rejected, last good state kept, nothing fails, good state taken again', () => {
  for (const what of ['no failed request', 'corrupted payloads were served and rejected', 'the last good state was kept', 'good state taken again once the payloads are whole']) check('corrupted-state', what);
});
