// Discovery: static lists, and Kubernetes pods / InferencePools through a
// local API server speaking list + watch (tests/control-plane/support.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeReplicaAddress, podMember, poolSpec } from '../../control-plane/discovery.js';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import type { RouterState } from '../../control-plane/stateWire.js';
import { FakeKube, getState, standInReplica, waitFor } from './support.js';

test('static entries: URL or ip:port, IPv6, localhost; bad ones are named', () => {
  assert.equal(normalizeReplicaAddress('http://10.0.0.1:8000'), '10.0.0.1:8000');
  assert.equal(normalizeReplicaAddress('http://10.0.0.1:8000/'), '10.0.0.1:8000');
  assert.equal(normalizeReplicaAddress(' 10.0.0.2:8001 '), '10.0.0.2:8001');
  assert.equal(normalizeReplicaAddress('[fd00::1]:8000'), '[fd00::1]:8000');
  assert.equal(normalizeReplicaAddress('http://[fd00::1]:8000'), '[fd00::1]:8000');
  assert.equal(normalizeReplicaAddress('localhost:9000'), '127.0.0.1:9000');
  for (const bad of ['vllm-0:8000', '10.0.0.1', '10.0.0.300:80', '10.0.0.1:0', 'https://10.0.0.1:8000', 'http://10.0.0.1:8000/v1', 'http://10.0.0.1']) {
    assert.throws(() => normalizeReplicaAddress(bad), (e: Error) => e.message.includes(JSON.stringify(bad)), bad);
  }
});

test('pod readiness: Ready condition, IP, deletion', () => {
  const pod = (ready: boolean, ip: string | null, deleting = false) => {
    const p = FakeKube.pod('p', ip, ready) as never as Parameters<typeof podMember>[0];
    if (deleting) p.metadata!.deletionTimestamp = new Date();
    return p;
  };
  assert.deepEqual(podMember(pod(true, '10.1.0.5'), 8000), { address: '10.1.0.5:8000', ready: true, source: 'pod p' });
  assert.equal(podMember(pod(false, '10.1.0.5'), 8000)!.ready, false);
  assert.equal(podMember(pod(true, null), 8000), null);
  assert.equal(podMember(pod(true, '10.1.0.5', true), 8000)!.ready, false);
  assert.equal(podMember(pod(true, 'fd00::5'), 8000)!.address, '[fd00::5]:8000');
});

test('InferencePool spec: selector from matchLabels, port from targetPorts[0]', () => {
  assert.deepEqual(poolSpec(FakeKube.pool('p', { b: '2', a: '1' }, 8000) as never), { selector: 'a=1,b=2', port: 8000 });
  assert.match(poolSpec({ metadata: { name: 'p' }, spec: { selector: { matchLabels: {} }, targetPorts: [{ number: 1 }] } }) as string, /matchLabels/);
  assert.match(poolSpec({ metadata: { name: 'p' }, spec: { selector: { matchLabels: { a: '1' } }, targetPorts: [] } }) as string, /targetPorts/);
});

/** Waits (by long poll) for a state that satisfies `check`; returns it and how long it took from `since`. */
async function stateWhere(cp: RunningControlPlane, what: string, check: (s: RouterState) => boolean, since = Date.now()): Promise<{ state: RouterState; ms: number }> {
  let after = '0';
  const end = Date.now() + 60_000; // generous: the machine may be shared
  while (Date.now() < end) {
    const r = await getState(cp.url, after, 2000);
    if (r.status === 200) {
      if (check(r.state!)) return { state: r.state!, ms: Date.now() - since };
      after = r.version!;
    }
  }
  throw new Error(`timed out waiting for state: ${what}`);
}

const summary = (s: RouterState) => s.replicas.map((r) => `${r.address}${r.ready ? '' : ' (not ready)'}`).join(', ');
/** Addresses only: where pod IPs refuse connections, readiness depends on how many scrapes failed so far. */
const addresses = (s: RouterState) => s.replicas.map((r) => r.address).join(', ');

test('Kubernetes pods by label selector: ready / unready / deleted reach the state (watch, not polling)', async (t) => {
  const kube = await new FakeKube('ns1').start();
  // Every pod IP is a stand-in replica on the same port, so scrapes succeed and a replica's
  // readiness in the state is its pod's, however long the test takes. (A pod IP that refused
  // connections would leave the state after two scrapes, 100 ms here: the assertions below
  // would then hold only on a machine fast enough to finish first.)
  const replica = await standInReplica();
  const port = replica.port;
  const others = [await standInReplica(undefined, '127.0.0.2', port), await standInReplica(undefined, '127.0.0.3', port)];
  kube.upsertPod(FakeKube.pod('vllm-0', '127.0.0.1', true));
  kube.upsertPod(FakeKube.pod('vllm-1', '127.0.0.2', false));
  kube.upsertPod(FakeKube.pod('vllm-2', null, false)); // not scheduled yet: no IP
  kube.upsertPod(FakeKube.pod('other', '127.0.0.4', true, { app: 'something-else' }));
  const cp = await startControlPlane({
    kubernetes: { namespace: 'ns1', targetPort: port }, kubeConfig: await kube.kubeConfig(),
    scrapeIntervalMs: 50, scrapeTimeoutMs: 2000, stalenessMs: 60_000, logger: memoryLogger(), weightsConfigMap: undefined,
  });
  try {
    const first = await stateWhere(cp, 'initial pods', (s) => s.replicas.length === 2 && s.replicas.some((r) => r.metricsKnown));
    assert.equal(summary(first.state), `127.0.0.1:${port}, 127.0.0.2:${port} (not ready)`);
    assert.ok(kube.requests.some((r) => r.includes('labelSelector=llm-d.ai%2FinferenceServing%3Dtrue')), 'default selector');
    assert.ok(kube.requests.some((r) => r.includes('watch=true')), 'watched');
    assert.equal(cp.app.discovery.synced, true);
    assert.equal((await fetch(`${cp.url}/readyz`)).status, 200);

    let since = Date.now();
    kube.upsertPod(FakeKube.pod('vllm-1', '127.0.0.2', true));
    let r = await stateWhere(cp, 'vllm-1 ready', (s) => s.replicas.find((x) => x.address === `127.0.0.2:${port}`)?.ready === true, since);
    t.diagnostic(`pod ready -> state: ${r.ms} ms`);

    since = Date.now();
    kube.upsertPod(FakeKube.pod('vllm-2', '127.0.0.3', true));
    r = await stateWhere(cp, 'vllm-2 added', (s) => s.replicas.length === 3, since);
    t.diagnostic(`pod got IP -> state: ${r.ms} ms`);

    since = Date.now();
    kube.upsertPod(FakeKube.pod('vllm-0', '127.0.0.1', false));
    r = await stateWhere(cp, 'vllm-0 unready', (s) => s.replicas.find((x) => x.address === `127.0.0.1:${port}`)?.ready === false, since);
    t.diagnostic(`pod unready -> state: ${r.ms} ms`);

    since = Date.now();
    kube.deletePod('vllm-1');
    r = await stateWhere(cp, 'vllm-1 deleted', (s) => !s.replicas.some((x) => x.address === `127.0.0.2:${port}`), since);
    t.diagnostic(`pod deleted -> state: ${r.ms} ms`);
    assert.equal(summary(r.state), `127.0.0.1:${port} (not ready), 127.0.0.3:${port}`);
  } finally {
    await cp.close();
    await kube.close();
    await replica.close();
    for (const o of others) await o.close();
  }
});

test('a dropped watch is re-established and later changes still arrive', async () => {
  const kube = await new FakeKube('ns1').start();
  kube.upsertPod(FakeKube.pod('vllm-0', '127.0.0.2', true));
  const cp = await startControlPlane({
    kubernetes: { namespace: 'ns1', targetPort: 1 }, kubeConfig: await kube.kubeConfig(),
    scrapeIntervalMs: 1000, scrapeTimeoutMs: 100, stalenessMs: 60_000, logger: memoryLogger(),
  });
  try {
    await stateWhere(cp, 'pod', (s) => s.replicas.length === 1);
    const watches = () => kube.requests.filter((r) => r.includes('watch=true')).length;
    const before = watches();
    kube.dropWatches();
    await waitFor('watch re-established', () => watches() > before && kube.openWatches === 1);
    kube.upsertPod(FakeKube.pod('vllm-0', '127.0.0.2', false));
    await stateWhere(cp, 'change after reconnect', (s) => s.replicas.length === 1 && !s.replicas[0].ready);
  } finally {
    await cp.close();
    await kube.close();
  }
});

test('InferencePool: selector and target port from the pool; edits and deletion follow', async (t) => {
  const kube = await new FakeKube('ns1').start();
  kube.upsertPool(FakeKube.pool('pool-a', { app: 'vllm' }, 8000));
  kube.upsertPod(FakeKube.pod('a-0', '127.0.0.2', true, { app: 'vllm' }));
  kube.upsertPod(FakeKube.pod('a-1', '127.0.0.3', true, { app: 'vllm', tier: 'gold' }));
  kube.upsertPod(FakeKube.pod('b-0', '127.0.0.4', true, { app: 'sglang' }));
  const cp = await startControlPlane({
    kubernetes: { namespace: 'ns1', inferencePool: 'pool-a', targetPort: 8000 }, kubeConfig: await kube.kubeConfig(),
    scrapeIntervalMs: 1000, scrapeTimeoutMs: 100, stalenessMs: 60_000, logger: memoryLogger(),
  });
  try {
    let r = await stateWhere(cp, 'pool pods', (s) => s.replicas.length === 2);
    assert.equal(addresses(r.state), '127.0.0.2:8000, 127.0.0.3:8000');
    assert.ok(kube.requests.some((x) => x.startsWith('GET /apis/inference.networking.k8s.io/v1/namespaces/ns1/inferencepools') && x.includes('fieldSelector=metadata.name%3Dpool-a')));

    let since = Date.now();
    kube.upsertPool(FakeKube.pool('pool-a', { app: 'vllm' }, 8001));
    r = await stateWhere(cp, 'new port', (s) => s.replicas.length === 2 && s.replicas.every((x) => x.address.endsWith(':8001')), since);
    t.diagnostic(`pool port change -> state: ${r.ms} ms`);

    since = Date.now();
    kube.upsertPool(FakeKube.pool('pool-a', { app: 'vllm', tier: 'gold' }, 8001));
    r = await stateWhere(cp, 'narrower selector', (s) => s.replicas.length === 1, since);
    assert.equal(addresses(r.state), '127.0.0.3:8001');
    t.diagnostic(`pool selector change -> state: ${r.ms} ms`);

    // Pods of the new selector are watched: a new one shows up.
    kube.upsertPod(FakeKube.pod('a-2', '127.0.0.5', true, { app: 'vllm', tier: 'gold' }));
    await stateWhere(cp, 'new gold pod', (s) => s.replicas.length === 2);

    kube.deletePool('pool-a');
    r = await stateWhere(cp, 'pool gone', (s) => s.replicas.length === 0);
    const ready = await fetch(`${cp.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reason: string }).reason, /pool-a not found/);

    kube.upsertPool(FakeKube.pool('pool-a', { app: 'sglang' }, 30000));
    r = await stateWhere(cp, 'pool back', (s) => s.replicas.length === 1);
    assert.equal(addresses(r.state), '127.0.0.4:30000');
  } finally {
    await cp.close();
    await kube.close();
  }
});

test('weights persist in a ConfigMap across restarts (created, then replaced)', async () => {
  const kube = await new FakeKube('ns1').start();
  kube.upsertPod(FakeKube.pod('vllm-0', '127.0.0.2', true));
  const start = async () => startControlPlane({
    kubernetes: { namespace: 'ns1', targetPort: 1 }, kubeConfig: await kube.kubeConfig(),
    scrapeIntervalMs: 1000, scrapeTimeoutMs: 100, stalenessMs: 60_000, logger: memoryLogger(), token: 't',
  });
  try {
    let cp = await start();
    assert.equal((await cp.setWeights({ profile: 'latency' })).profile, 'latency');
    const cm = kube.configMaps.get('prefix-router-weights');
    assert.ok(cm, 'ConfigMap created');
    assert.deepEqual(JSON.parse((cm.data as Record<string, string>)['weights.json']).weights, { prefix: 5, queue: 1, kvCache: 1, inflight: 1 });
    await cp.setWeights({ queue: 4 });
    await cp.close();
    cp = await start();
    assert.deepEqual(cp.state().weights, { prefix: 5, queue: 4, kvCache: 1, inflight: 1 });
    await cp.close();
    assert.ok(kube.requests.some((r) => r.startsWith('PUT /api/v1/namespaces/ns1/configmaps/prefix-router-weights')));
  } finally {
    await kube.close();
  }
});
