// The state store on a clock the test moves: staleness, and what a pause of the
// whole process (stopped, laptop asleep, a long GC stall) must not do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateStore } from '../../control-plane/stateStore.js';
import type { EngineMetrics } from '../../control-plane/engineMetrics.js';

const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
const STALENESS_MS = 2000;
const metrics: EngineMetrics = { waiting: 1, running: 2, kvUsage: 0.5 };

function fleet() {
  let t = 1_000_000;
  let steps = 0;
  const store = new StateStore(weights, { stalenessMs: STALENESS_MS, hitRateWindowMs: 60_000, now: () => t });
  store.setMembers([{ address: '10.0.0.1:8000', ready: true }, { address: '10.0.0.2:8000', ready: true }]);
  return {
    store,
    /** Moves the clock the way a running control plane sees it: the publish tick every 20 ms, a scrape of each replica every 50 ms. */
    run(ms: number, scrape: (address: string) => boolean = () => true) {
      for (let step = 0; step < ms; step += 10) {
        t += 10;
        steps++;
        if (steps % 5 === 0) for (const a of store.replicas.keys()) if (scrape(a)) store.recordSuccess(a, metrics); else store.recordFailure(a, 'timeout', 'timeout');
        if (steps % 2 === 0) store.tick(true);
      }
    },
    /** The process does not run for `ms`: no timer fires, then the first one after it is the publish tick. */
    pause(ms: number) { t += ms; store.tick(true); },
    readyCount: () => store.state.replicas.filter((r) => r.ready).length,
  };
}

test('a replica whose scrapes keep failing leaves routing after the staleness bound', () => {
  const f = fleet();
  f.run(500);
  assert.equal(f.readyCount(), 2);
  f.run(STALENESS_MS + 200, (a) => a !== '10.0.0.2:8000');
  assert.deepEqual(f.store.state.replicas.map((r) => r.ready), [true, false]);
});

test('a pause of the whole process longer than the staleness bound leaves every replica in routing on resume', () => {
  const f = fleet();
  f.run(500);
  assert.equal(f.readyCount(), 2);
  for (const pause of [STALENESS_MS + 1, 60_000, 8 * 3600_000]) {
    f.pause(pause);
    assert.equal(f.readyCount(), 2, `after a pause of ${pause} ms`);
    assert.ok(f.store.state.replicas.every((r) => r.metricsAgeMs < STALENESS_MS), 'ages exclude the pause');
    // and they stay in routing while the scrapes resume
    f.run(200);
    assert.equal(f.readyCount(), 2);
  }
});

test('after a pause a replica that stays silent still leaves routing once the bound has passed while running', () => {
  const f = fleet();
  f.run(500);
  f.pause(30_000);
  f.run(STALENESS_MS / 4, (a) => a !== '10.0.0.2:8000');
  assert.equal(f.readyCount(), 2, 'not yet: only a quarter of the bound has run');
  f.run(STALENESS_MS, (a) => a !== '10.0.0.2:8000');
  assert.deepEqual(f.store.state.replicas.map((r) => r.ready), [true, false]);
});

test('a scrape turns the store dirty (the publish timer is set) only when it moves what the filters route on (its record, its LoRA information); many changes, one call until the publish', () => {
  const t = 1_000_000;
  const store = new StateStore(weights, { stalenessMs: STALENESS_MS, hitRateWindowMs: 60_000, now: () => t });
  let calls = 0;
  store.onDirty(() => { calls++; });
  store.setMembers([{ address: '10.0.0.1:8000', ready: true }, { address: '10.0.0.2:8000', ready: true }]);
  assert.equal(calls, 1, 'new members');
  store.recordSuccess('10.0.0.1:8000', metrics);
  store.recordSuccess('10.0.0.2:8000', metrics);
  assert.equal(calls, 1, 'dirty already: no second call');
  assert.equal(store.publish(), true);
  const v = store.version;
  // The same values again, and values that round to the same record: nothing to publish.
  store.recordSuccess('10.0.0.1:8000', { ...metrics, prefixCacheQueries: 10, prefixCacheHits: 5 });
  store.recordSuccess('10.0.0.2:8000', { ...metrics, waiting: 1.2, running: 1.9 });
  assert.equal(calls, 1, 'unchanged records');
  // Ten changes of one replica's queue before the publish: one call, one version.
  for (let i = 2; i <= 11; i++) store.recordSuccess('10.0.0.1:8000', { ...metrics, waiting: i });
  assert.equal(calls, 2);
  assert.equal(store.publish(), true);
  assert.equal(store.version, v + 1n);
  assert.equal(store.state.replicas[0]!.waiting, 11);
  // A change and its undoing before the publish: the timer runs, no version.
  store.recordSuccess('10.0.0.2:8000', { ...metrics, kvUsage: 0.9 });
  store.recordSuccess('10.0.0.2:8000', metrics);
  assert.equal(calls, 3);
  assert.equal(store.publish(), false);
  // LoRA information (the LoRA section's source): the same again is no change, a new adapter is.
  const lora = { maxLora: 2, running: ['a'], waiting: [], baseModel: 'base' };
  store.recordSuccess('10.0.0.2:8000', metrics, lora);
  assert.equal(calls, 4);
  assert.equal(store.publish(), true);
  store.recordSuccess('10.0.0.2:8000', metrics, { ...lora, running: ['a'] });
  assert.equal(calls, 4, 'the same adapters');
  store.recordSuccess('10.0.0.2:8000', metrics, { ...lora, running: ['a', 'b'] });
  assert.equal(calls, 5);
});
