// The filter's side of state delivery: long poll through proxy_http_call,
// validation, shared data across worker VMs, and what happens when the
// control plane misbehaves or disappears.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeState, type ReplicaState } from '../../control-plane/stateWire.js';
import { StateServer } from '../../bench/stateServer.js';
import { completion, send, startHost, text, waitFor } from './support.js';
import { inflightTotal, readStamp } from '../../plugin/sharedData.js';

function replica(address: string, over: Partial<ReplicaState> = {}): ReplicaState {
  return { address, ready: true, metricsKnown: true, waiting: 0, running: 0, kvUsage: 0.1, kvCapacityTokens: 150000, metricsAgeMs: 10, ...over };
}

const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
const cpConfig = { controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 1000, retryMs: 50 } };

test('worker VMs route on the state the control plane serves', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas: [replica('10.1.0.1:8000'), replica('10.1.0.2:8000')] });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    // Before the first state arrives there is nowhere to go: a clear 503, not a hang or a trap.
    await waitFor(() => send(host, { body: completion('x'), worker: 0 }).endpoint !== undefined, 'first state');
    for (let w = 0; w < 2; w++) {
      const r = send(host, { body: completion(text(w, 500)), worker: w });
      assert.match(r.endpoint!, /^10\.1\.0\.[12]:8000$/);
    }
    // Membership changes reach both workers.
    cp.set({ version: 2n, weights, replicas: [replica('10.1.0.3:8000')] });
    await waitFor(() => send(host, { body: completion('y'), worker: 1 }).endpoint === '10.1.0.3:8000', 'worker 1 on version 2');
    assert.equal(send(host, { body: completion('z'), worker: 0 }).endpoint, '10.1.0.3:8000');
    // One poller per process, not one per worker: polls stay few.
    assert.ok(cp.polls < 20, `polls ${cp.polls}`);
  } finally {
    await host.close();
    await cp.close();
  }
});

test('a new state reaches each worker through the stamp in the in-flight blob, which keeps every row', async () => {
  const reps = [replica('10.1.0.1:8000'), replica('10.1.0.2:8000')];
  const cp = new StateServer({ version: 1n, weights, replicas: reps });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  const open: Array<{ complete: () => void }> = [];
  try {
    await waitFor(() => send(host, { body: completion('x'), worker: 0 }).endpoint !== undefined, 'first state');
    assert.equal(readStamp(host.sharedData).version, 1n);
    for (let i = 0; i < 4; i++) open.push(send(host, { method: 'GET', path: '/v1/models', worker: i % 2 }, false));
    assert.equal(inflightTotal(host.sharedData), 4);
    // Same replicas, queue-only weights: the stamp is raised without losing a row.
    cp.set({ version: 2n, weights: { prefix: 0, queue: 1, kvCache: 0, inflight: 0 }, replicas: [reps[0], replica('10.1.0.2:8000', { waiting: 9 })] });
    await waitFor(() => readStamp(host.sharedData).version === 2n, 'stamp of version 2');
    assert.equal(inflightTotal(host.sharedData), 4);
    // The next request on each worker routes on version 2 (the shorter queue).
    for (let w = 0; w < 2; w++) assert.equal(send(host, { body: completion(text(w, 300)), worker: w }).endpoint, '10.1.0.1:8000');
    for (const r of open) r.complete();
    assert.equal(inflightTotal(host.sharedData), 0);
    assert.equal(readStamp(host.sharedData).version, 2n);
  } finally {
    for (const r of open) r.complete();
    await host.close();
    await cp.close();
  }
});

test('replicas that are not ready or have stale metrics are left out; none left is a 503 JSON error', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas: [replica('10.2.0.1:8000', { ready: false }), replica('10.2.0.2:8000', { metricsAgeMs: 60000 }), replica('10.2.0.3:8000')] });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('a') }).endpoint !== undefined, 'first state');
    for (let i = 0; i < 20; i++) assert.equal(send(host, { body: completion(text(i, 300)) }).endpoint, '10.2.0.3:8000');
    cp.set({ version: 2n, weights, replicas: [replica('10.2.0.1:8000', { ready: false })] });
    await waitFor(() => send(host, { body: completion('b') }).local !== null, '503');
    const r = send(host, { body: completion('c') });
    assert.equal(r.local!.status, 503);
    const err = JSON.parse(r.local!.body);
    assert.equal(err.error.code, 'no_ready_replica');
    assert.ok(r.local!.headers.some(([k, v]) => k === 'content-type' && v === 'application/json'));
  } finally {
    await host.close();
    await cp.close();
  }
});

test('weights from the state take effect: queue-only weights follow the shortest queue', async () => {
  const reps = [replica('10.3.0.1:8000', { waiting: 9 }), replica('10.3.0.2:8000', { waiting: 0 }), replica('10.3.0.3:8000', { waiting: 5 })];
  const cp = new StateServer({ version: 1n, weights: { prefix: 0, queue: 1, kvCache: 0, inflight: 0 }, replicas: reps });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('a') }).endpoint !== undefined, 'first state');
    for (let i = 0; i < 10; i++) assert.equal(send(host, { body: completion(text(50 + i, 200)) }).endpoint, '10.3.0.2:8000');
    cp.set({ version: 2n, weights: { prefix: 0, queue: 1, kvCache: 0, inflight: 0 }, replicas: [reps[0], { ...reps[1], waiting: 20 }, reps[2]] });
    await waitFor(() => send(host, { body: completion('q') }).endpoint === '10.3.0.3:8000', 'new queue depths');
  } finally {
    await host.close();
    await cp.close();
  }
});

test('a corrupted state is rejected and the last good one kept', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas: [replica('10.4.0.1:8000')] });
  const url = await cp.listen();
  const { host, logs } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('a') }).endpoint === '10.4.0.1:8000', 'first state');
    const bad = encodeState({ version: 2n, weights, replicas: [replica('10.4.0.9:8000')] });
    bad[bad.length - 10] ^= 0xff; // flip bits: the checksum no longer matches
    cp.body = bad;
    cp.set({ ...cp.state, version: 2n });
    await waitFor(() => logs.some((l) => String(l.message).includes('state rejected: checksum mismatch')), 'rejection log');
    assert.equal(send(host, { body: completion('b') }).endpoint, '10.4.0.1:8000');
    // Counters reach the host on the next tick.
    await waitFor(() => Number(host.metrics().get('prefix_router.state_rejected')?.value ?? 0) >= 1, 'state_rejected counter');
  } finally {
    await host.close();
    await cp.close();
  }
});

test('with the control plane gone, routing goes on with the last state', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas: [replica('10.5.0.1:8000'), replica('10.5.0.2:8000')] });
  const url = await cp.listen();
  const { host } = await startHost({ controlPlane: { ...cpConfig.controlPlane }, stalenessMs: 300 }, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('a') }).endpoint !== undefined, 'first state');
    await cp.close();
    // Past the staleness bound metrics are ignored, replicas are kept: no request fails.
    await new Promise((r) => setTimeout(r, 600));
    for (let i = 0; i < 20; i++) {
      const r = send(host, { body: completion(text(70 + i, 300)), worker: i % 2 });
      assert.equal(r.local, null);
      assert.match(r.endpoint!, /^10\.5\.0\.[12]:8000$/);
    }
  } finally {
    await host.close();
  }
});

test('worker VMs share where a prompt start went, so a group stays together when metrics move', async () => {
  const reps = (short: number) => [0, 1, 2].map((j) => replica(`10.6.0.${j + 1}:8000`, { waiting: j === short ? 0 : 6 }));
  const cp = new StateServer({ version: 1n, weights, replicas: reps(0) });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { workers: 4, clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => [0, 1, 2, 3].every((w) => send(host, { method: 'GET', path: '/v1/models', worker: w }).endpoint !== undefined), 'first state on every worker');
    const system = text(77, 3000);
    const first = send(host, { body: completion(system + ' q0'), worker: 0 });
    assert.equal(first.endpoint, '10.6.0.1:8000'); // the shortest queue
    // Now another replica has the shortest queue: a fresh placement would go there.
    cp.set({ version: 2n, weights, replicas: reps(2) });
    let probe = 500;
    await waitFor(() => send(host, { body: completion(text(probe++, 3000)), worker: 3 }).endpoint === '10.6.0.3:8000', 'new queue depths on worker 3');
    for (const w of [1, 2, 3]) {
      const r = send(host, { body: completion(system + ` q${w}`), worker: w });
      assert.equal(r.endpoint, first.endpoint, `worker ${w}`);
    }
  } finally {
    await host.close();
    await cp.close();
  }
});

test('a format 2 state routes like format 1; sections of unknown tags are skipped', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas: [replica('10.4.1.1:8000')], sections: [{ tag: 65000, bytes: new Uint8Array([9, 9, 9]) }] });
  const url = await cp.listen();
  const { host, logs } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('a') }).endpoint === '10.4.1.1:8000', 'state with a section');
    assert.ok(!logs.some((l) => String(l.message).includes('state rejected')), 'no rejection');
  } finally {
    await host.close();
    await cp.close();
  }
});
