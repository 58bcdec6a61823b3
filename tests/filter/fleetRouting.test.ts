// Two gateways (two hosts, each its own shared data, as two Envoys) polling one
// real control plane: a prompt placed through gateway A is routed to the same
// replica through gateway B once the exchange has carried the placement,
// although B, knowing nothing, would send it to a less loaded replica.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { standInReplica, type StandIn } from '../control-plane/support.js';
import { completion, send, startHost, waitFor } from './support.js';
import { readStamp } from '../../plugin/sharedData.js';
import { SharedDataStore } from '../../host/index.js';

const WAITING = 'vllm:num_requests_waiting';
const cpConfig = { controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 500, retryMs: 50 } };
const prompt = 'You are a careful assistant for the fleet test. '.repeat(120);

test('a prefix placed through gateway A routes to the same replica through gateway B after the exchange', async () => {
  const replicas: StandIn[] = [];
  for (let i = 0; i < 4; i++) replicas.push(await standInReplica());
  const cp = await startControlPlane({ replicas: replicas.map((r) => r.address), scrapeIntervalMs: 50, stalenessMs: 10_000, scrapeTimeoutMs: 1000, logger: memoryLogger() });
  const cluster = { prefix_router_control_plane: cp.url };
  const a = await startHost(cpConfig, { clusters: cluster, workers: 1, randomSeed: 11, sharedData: new SharedDataStore() });
  const b = await startHost(cpConfig, { clusters: cluster, workers: 1, randomSeed: 22, sharedData: new SharedDataStore() });
  const versionNow = () => cp.state().version;
  /** Waits until the control plane serves these queues and both gateways route on that state. */
  const settle = async (waiting: number[]) => {
    replicas.forEach((r, i) => { r.values[WAITING] = waiting[i]!; });
    await waitFor(() => cp.state().replicas.every((s) => s.waiting === waiting[replicas.findIndex((r) => r.address === s.address)]), 'queues scraped', 10_000);
    const v = versionNow();
    for (const g of [a, b]) await waitFor(() => readStamp(g.host.sharedData).version >= v, 'gateway on the new state', 10_000);
  };
  try {
    // A places the prompt on one of the idle replicas.
    await settle([0, 0, 0, 0]);
    const x = send(a.host, { body: completion(prompt) }).endpoint!;
    const xi = replicas.findIndex((r) => r.address === x);
    assert.ok(xi >= 0);
    // Now that replica is the busier one: a gateway that knows nothing would avoid it.
    await settle(replicas.map((_, i) => (i === xi ? 3 : 0)));
    await waitFor(() => cp.app.fleet.placementCount > 0, 'the control plane holds A\'s placements', 10_000);
    await waitFor(() => b.host.sharedData.keys('prefix_router').some((k) => k.startsWith('prefix_router.ckpt.')), 'B learned them', 10_000);
    assert.equal(send(b.host, { body: completion(prompt) }).endpoint, x);
    // A prompt nobody placed goes to an idle replica through B.
    assert.notEqual(send(b.host, { body: completion('Something else entirely. '.repeat(100)) }).endpoint, x);
  } finally {
    await a.host.close();
    await b.host.close();
    await cp.close();
    for (const r of replicas) await r.close();
  }
});
