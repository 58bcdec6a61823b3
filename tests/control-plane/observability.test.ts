// Observability settings: state section 32 (encoder and its rules), the API that sets them at
// run time, the config field and flag, and the metrics operators alert on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { loadConfig, ConfigError } from '../../control-plane/config.js';
import {
  decodeObservability, encodeObservability, observabilityProblem, OBSERVABILITY_TAG, DECISION_LOG_EVERY_MAX,
} from '../../control-plane/observabilitySection.js';
import { decodeState } from '../../control-plane/stateWire.js';
import { getState, standInReplica, waitFor } from './support.js';

const TOKEN = 'test-token-0123456789';

async function withCp(opts: Parameters<typeof startControlPlane>[0], fn: (cp: RunningControlPlane) => Promise<void>) {
  const cp = await startControlPlane({ replicas: ['10.0.0.1:8000'], scrapeIntervalMs: 1000, scrapeTimeoutMs: 500, stalenessMs: 60_000, logger: memoryLogger(), token: TOKEN, ...opts });
  try { await fn(cp); } finally { await cp.close(); }
}

const put = (cp: RunningControlPlane, body: unknown, token = TOKEN) => fetch(`${cp.url}/v1/observability`, {
  method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body),
});

test('section 32: 8 bytes, encoded only when something is on, read back by the same rules', () => {
  assert.equal(encodeObservability({ decisionLogEvery: 0 }), null);
  const s = encodeObservability({ decisionLogEvery: 250 })!;
  assert.equal(s.tag, OBSERVABILITY_TAG);
  assert.deepEqual([...s.bytes], [250, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeObservability(s.bytes), { decisionLogEvery: 250 });
  assert.throws(() => decodeObservability(new Uint8Array(4)), /must be 8 bytes/);
  assert.throws(() => decodeObservability(new Uint8Array([1, 0, 0, 0, 0, 1, 0, 0])), /reserved/);
  assert.throws(() => encodeObservability({ decisionLogEvery: DECISION_LOG_EVERY_MAX + 1 }), /decisionLogEvery/);
  assert.deepEqual(observabilityProblem({ decisionLogEvery: 1.5 })?.field, 'decisionLogEvery');
  assert.deepEqual(observabilityProblem({ decisionLogEvery: -1 })?.field, 'decisionLogEvery');
  assert.deepEqual(observabilityProblem({ sampleRate: 2 })?.field, 'sampleRate');
  assert.deepEqual(observabilityProblem([])?.field, '(body)');
  assert.deepEqual(observabilityProblem({})?.field, 'decisionLogEvery');
});

test('PUT /v1/observability turns decision records on in the served state (format 2, section 32), off again back to format 1', async () => {
  await withCp({}, async (cp) => {
    const before = await getState(cp.url);
    assert.equal(before.state!.sections, undefined);
    let r = await put(cp, { decisionLogEvery: 100 });
    assert.equal(r.status, 200);
    const body = await r.json() as { decisionLogEvery: number; version: string };
    assert.equal(body.decisionLogEvery, 100);
    const on = await getState(cp.url);
    assert.equal(on.version, body.version);
    assert.ok(BigInt(body.version) > before.state!.version);
    assert.equal(on.state!.sections!.length, 1);
    assert.deepEqual(decodeObservability(on.state!.sections![0].bytes), { decisionLogEvery: 100 });
    assert.deepEqual(await (await fetch(`${cp.url}/v1/observability`)).json(), { decisionLogEvery: 100, version: body.version });
    r = await put(cp, { decisionLogEvery: 0 });
    assert.equal(r.status, 200);
    const off = await getState(cp.url);
    assert.equal(off.state!.sections, undefined);
    // The raw payload is format 1 again, so filters that predate sections keep decoding it.
    const raw = new Uint8Array(await (await fetch(`${cp.url}/v1/state?after=0`)).arrayBuffer());
    assert.equal(new DataView(raw.buffer).getUint16(4, true), 1);
    assert.deepEqual(decodeState(raw).sections, undefined);
  });
});

test('PUT /v1/observability: bad settings are a 400 naming the field; writes need the token', async () => {
  await withCp({}, async (cp) => {
    const v = cp.app.store.version;
    for (const [body, field] of [[{ decisionLogEvery: 'often' }, 'decisionLogEvery'], [{ decisionLogEvery: 2e6 }, 'decisionLogEvery'], [{ every: 3 }, 'every'], [[1], '(body)']] as const) {
      const r = await put(cp, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(((await r.json()) as { field: string }).field, field);
    }
    assert.equal((await put(cp, { decisionLogEvery: 5 }, 'wrong-token-0000000000')).status, 401);
    assert.equal(cp.app.store.version, v, 'no refused write changed the state');
    assert.equal(cp.app.observability().decisionLogEvery, 0);
  });
});

test('decisionLogEvery from the configuration (--decision-log-every) is in the first state; a bad value names the flag', async () => {
  const { config } = loadConfig(['--replicas', '10.0.0.1:8000', '--decision-log-every', '50'], {});
  assert.equal(config.decisionLogEvery, 50);
  assert.equal(loadConfig(['--replicas', '10.0.0.1:8000'], {}).config.decisionLogEvery, 0);
  assert.throws(() => loadConfig(['--replicas', '10.0.0.1:8000', '--decision-log-every=-3'], {}), (e: unknown) =>
    e instanceof ConfigError && e.problems.some((p) => p.includes('decisionLogEvery (--decision-log-every)')));
  await withCp({ decisionLogEvery: 50 }, async (cp) => {
    const s = await getState(cp.url);
    assert.deepEqual(decodeObservability(s.state!.sections![0].bytes), { decisionLogEvery: 50 });
  });
});

test('/metrics re-exports each replica\'s own prefix-cache counters, hit rate, queue and KV use, and the state\'s age', async () => {
  const replica = await standInReplica();
  try {
    await withCp({ replicas: [replica.address], scrapeIntervalMs: 50 }, async (cp) => {
      await waitFor('a good scrape', () => cp.app.store.replicas.get(replica.address)?.metrics);
      await put(cp, { decisionLogEvery: 7 });
      const text = await (await fetch(`${cp.url}/metrics`)).text();
      const value = (name: string) => {
        const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
        assert.ok(line, `${name} in /metrics`);
        return Number(line!.split(' ').at(-1));
      };
      const m = cp.app.store.replicas.get(replica.address)!.metrics!;
      assert.equal(value(`prefix_router_cp_replica_prefix_cache_queries{replica="${replica.address}"}`), m.prefixCacheQueries);
      assert.equal(value(`prefix_router_cp_replica_prefix_cache_hits{replica="${replica.address}"}`), m.prefixCacheHits);
      assert.equal(value(`prefix_router_cp_replica_waiting{replica="${replica.address}"}`), m.waiting);
      assert.equal(value(`prefix_router_cp_replica_kv_usage{replica="${replica.address}"}`), m.kvUsage);
      assert.ok(value(`prefix_router_cp_replica_metrics_age_seconds{replica="${replica.address}"}`) < 60);
      assert.ok(value('prefix_router_cp_state_age_seconds') >= 0);
      assert.equal(value('prefix_router_cp_decision_log_every'), 7);
    });
  } finally {
    await replica.close();
  }
});
