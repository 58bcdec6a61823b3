// bench:routing --features: each feature workload runs end to end through the
// real filter, and the feature shows its effect on a small run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEATURE_EXPERIMENTS, featureTable, runFeature } from '../../bench/routing/features.js';
import { DEFAULT_WORKLOAD_DIR } from '../../bench/routing/workloads.js';

const byName = (n: string) => FEATURE_EXPERIMENTS.find((e) => e.name === n)!;
const opts = { seed: 1, workloadDir: DEFAULT_WORKLOAD_DIR };

test('overload: admission holds and refuses past the bound, and the requests it serves meet the SLO more often', async () => {
  const r = await runFeature(byName('overload'), { ...opts, scale: 0.15 });
  const off = r.policies.find((p) => p.name === 'prefix-router')!;
  const on = r.policies.find((p) => p.name === 'prefix-router+admission')!;
  assert.equal(off.refused ?? 0, 0);
  assert.ok((on.refused ?? 0) > 0, 'some requests refused with 429');
  assert.equal(on.completed + on.refused!, r.requests, 'every request served or refused');
  assert.ok(on.routerStats!.admissionHeld! > 0);
  assert.ok(on.ttftP95Ms < off.ttftP95Ms, `p95 ${on.ttftP95Ms} vs ${off.ttftP95Ms}`);
  assert.deepEqual(r.filterWarnings, []);
  assert.match(featureTable([r]), /prefix-router\+admission/);
});

test('sessions and LoRA: the feature routes by session and by adapter', async () => {
  const s = await runFeature(byName('sessions'), { ...opts, scale: 0.15 });
  const withS = s.policies.find((p) => p.name === 'prefix-router/4-gateways+sessions')!;
  assert.equal(withS.routerStats!.sessionRouted, withS.completed);
  assert.equal(s.policies.find((p) => p.name === 'prefix-router/4-gateways')!.routerStats!.sessionRouted, 0);
  const l = await runFeature(byName('lora'), { ...opts, scale: 0.15 });
  const on = l.policies.find((p) => p.name === 'prefix-router')!;
  const off = l.policies.find((p) => p.name === 'prefix-router/no-lora')!;
  assert.equal(on.routerStats!.loraRouted, on.completed);
  assert.ok(on.loraLoads! < off.loraLoads!, `adapter loads ${on.loraLoads} vs ${off.loraLoads}`);
  assert.deepEqual([...s.filterWarnings, ...l.filterWarnings], []);
});
