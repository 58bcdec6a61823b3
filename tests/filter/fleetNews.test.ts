// How fast a gateway's placements reach the other gateways of its fleet, on
// virtual time: two gateways' filters (the real module, each its own host and
// shared data) poll the real control-plane code (store, fleet exchange, poll
// logic, its publish tick) served in process (bench/routing/virtualControlPlane.ts).
// No scrape moves the state's version here, so each gateway's long poll stays
// held: only a report sent while the poll is held, and the control plane's
// publishing of the fleet's news, carry a placement (or work) across.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_WEIGHTS, FilterPolicy } from '../../bench/routing/filterPolicy.js';
import { SharedDataStore } from '../../host/index.js';
import type { Decision } from '../../bench/routing/policy.js';
import type { SimRequest } from '../../bench/routing/workloads.js';

const prompt = 'You are the fleet news assistant; answer in one line. '.repeat(60);

/** Moves virtual time to `toUs` in steps of at most 5 ms, as the simulation's events do (the control plane publishes the fleet's news between them). */
function advance(policy: FilterPolicy, fromUs: number, toUs: number): void {
  for (let t = fromUs + 5_000; t < toUs; t += 5_000) policy.advanceTo(t);
  policy.advanceTo(toUs);
}

function request(id: number, atUs: number, outputTokens = 8): SimRequest {
  return { id, arrivalUs: atUs, prompt, promptTokens: Math.floor(prompt.length / 4), blockHashes: [], outputTokens, group: 'g' };
}

/** Routes `req` through `gateway`'s worker VM `worker` and starts its response: it decodes from here on. */
function started(policy: FilterPolicy, req: SimRequest, gateway: number, worker = 0): Decision {
  const d = policy.route(req, { gateway, worker });
  policy.onFirstToken(d);
  return d;
}

/** started(), and the response ends at once. */
function served(policy: FilterPolicy, req: SimRequest, gateway: number, worker: number): Decision {
  const d = started(policy, req, gateway, worker);
  policy.onFinish(d);
  return d;
}

test('a placement made through gateway A reaches gateway B within a few milliseconds while both polls are held; work alone follows within WORK_PUBLISH_MS', async () => {
  // The prefix scorer alone says whether B knows where the prompt is: the work scorer would weigh A's
  // queued prefill there (reported with the placement; its first token's news follows 20 ms later).
  const policy = await FilterPolicy.create({ name: 'fleet-news', replicas: 4, weights: DEFAULT_WEIGHTS, gateways: 2, workers: 1, seed: 3, config: { weights: { ...DEFAULT_WEIGHTS, work: 0 } } });
  try {
    // Both gateways have polled, registered, and heard of each other (their fleet positions).
    advance(policy, 0, 100_000);
    const reports = policy.controlPlane.reports;
    const placedAtUs = 210_000;
    advance(policy, 100_000, placedAtUs);
    assert.equal(policy.controlPlane.reports, reports, 'a gateway with no news sends no report of its own');
    assert.equal(policy.controlPlane.fleet.placementCount, 0);
    const a = policy.route(request(0, placedAtUs), { gateway: 0, worker: 0 });
    policy.onFirstToken(a);
    assert.equal(a.matched, 0, 'nobody held the prompt before');
    // The placement woke A's poller (its report wake), which reported it at once though A's poll is held;
    // the control plane publishes it PLACEMENT_PUBLISH_MS after its last fleet publish, answering B's held poll.
    assert.ok(policy.controlPlane.fleet.placementCount > 0, 'the report went out at once while the poll was held');
    advance(policy, placedAtUs, placedAtUs + 1_000);
    const atUs = placedAtUs + 3_000;
    advance(policy, placedAtUs + 1_000, atUs);
    const b = policy.route(request(1, atUs), { gateway: 1, worker: 0 });
    assert.equal(b.replica, a.replica, `B sent it to ${b.replica} (matched ${b.matched} of ${b.total}), A to ${a.replica}`);
    assert.ok((b.matched ?? 0) > 0, `B knows the prefix (matched ${b.matched} of ${b.total})`);
    // Its first token changes only B's work: no report for it until WORK_REPORT_NS (20 ms) after B's last.
    advance(policy, atUs, atUs + 5_000);
    const quiet = policy.controlPlane.reports;
    policy.onFirstToken(b);
    advance(policy, atUs + 5_000, atUs + 10_000);
    assert.equal(policy.controlPlane.reports, quiet, 'changed work alone waits');
    advance(policy, atUs + 10_000, atUs + 30_000);
    assert.ok(policy.controlPlane.reports > quiet, 'and goes out within 20 ms of the last report');
    // Busy, A's poller ticks every 10 ms (changed work, and what a wake missed); once nothing is in
    // flight it goes back to 100 ms, and its next placement brings the 10 ms tick back at once.
    assert.ok(policy.msToNextTick(0, atUs + 30_000) <= 10);
    policy.onFinish(a);
    policy.onFinish(b);
    const quietUs = atUs + 400_000;
    advance(policy, atUs + 30_000, quietUs);
    // Just past a tick, the next is a full tick away.
    const idleUs = quietUs + Math.ceil(policy.msToNextTick(0, quietUs) * 1000);
    advance(policy, quietUs, idleUs);
    assert.ok(policy.msToNextTick(0, idleUs) > 10, `idle: the next tick in ${policy.msToNextTick(0, idleUs)} ms`);
    const before = policy.controlPlane.fleet.placementCount;
    const c = policy.route({ ...request(2, idleUs), prompt: 'A new question nobody asked. '.repeat(80) }, { gateway: 0, worker: 0 });
    assert.ok(policy.controlPlane.fleet.placementCount > before, 'its placement reported at once');
    assert.ok(policy.msToNextTick(0, idleUs) <= 10, 'and the busy tick back');
    policy.onFirstToken(c);
    policy.onFinish(c);
    assert.deepEqual(policy.unexpectedLogs(), []);
  } finally {
    await policy.close();
  }
});

test('an idle gateway of many worker VMs reports a placement made on any of them at once, not at the poller\'s next tick', async () => {
  const policy = await FilterPolicy.create({ name: 'fleet-wake', replicas: 4, weights: DEFAULT_WEIGHTS, gateways: 2, workers: 4, seed: 7 });
  try {
    advance(policy, 0, 1_000_000);
    for (let worker = 0; worker < 4; worker++) {
      const atUs = 1_000_000 + worker * 150_000;
      advance(policy, atUs - 150_000, atUs);
      const before = policy.controlPlane.fleet.placementCount;
      const d = served(policy, { ...request(10 + worker, atUs), prompt: `Worker ${worker} asks something nobody asked before. `.repeat(70) }, 0, worker);
      assert.equal(d.matched, 0);
      assert.ok(policy.controlPlane.fleet.placementCount > before, `worker VM ${worker}'s placement reached the control plane at once`);
    }
    assert.deepEqual(policy.unexpectedLogs(), []);
  } finally {
    await policy.close();
  }
});

test('a gateway alone wakes nobody: no shared-queue item for its placements, which nobody else needs to hear of', async () => {
  const enqueue = SharedDataStore.prototype.enqueue;
  let items = 0;
  SharedDataStore.prototype.enqueue = function (this: SharedDataStore, ...args: Parameters<typeof enqueue>) { items++; return enqueue.apply(this, args); };
  try {
    for (const gateways of [1, 2]) {
      items = 0;
      const policy = await FilterPolicy.create({ name: `wake-${gateways}`, replicas: 4, weights: DEFAULT_WEIGHTS, gateways, workers: 2, seed: 9 });
      try {
        advance(policy, 0, 1_000_000);
        for (let i = 0; i < 8; i++) {
          const atUs = 1_000_000 + i * 50_000;
          advance(policy, atUs - 50_000, atUs);
          served(policy, { ...request(20 + i, atUs), prompt: `Question ${i} that nobody asked before. `.repeat(70) }, 0, i % 2);
        }
        if (gateways === 1) assert.equal(items, 0, 'a lone gateway enqueued wakes');
        else assert.ok(items >= 4, `a gateway of a fleet wakes its poller for its placements (${items} items)`);
      } finally {
        await policy.close();
      }
    }
  } finally {
    SharedDataStore.prototype.enqueue = enqueue;
  }
});

test('the load guard counts the other gateways\' decoding requests on a replica, not only this gateway\'s', async () => {
  // The count guard alone decides here: without the work scorer (weights.work 0) the prefix scorer
  // keeps one prompt on its holder, where the work model would spread a prompt that draws all the traffic.
  const policy = await FilterPolicy.create({ name: 'fleet-load', replicas: 4, weights: DEFAULT_WEIGHTS, gateways: 2, workers: 1, seed: 5, config: { weights: { ...DEFAULT_WEIGHTS, work: 0 } } });
  try {
    advance(policy, 0, 200_000);
    // Gateway A sends 8 requests of one prompt with short answers, one after another: they gather on
    // one replica (the count guard passes over nothing below 8).
    let atUs = 210_000;
    advance(policy, 200_000, atUs);
    const fromA = Array.from({ length: 8 }, (_, i) => started(policy, request(i, atUs, 16), 0));
    const x = fromA[0]!.replica;
    assert.ok(fromA.every((d) => d.replica === x), 'A keeps them together');
    // B hears of A's placements and work, then sends the same prompt 8 times.
    advance(policy, atUs, atUs + 60_000);
    atUs += 60_000;
    const fromB = Array.from({ length: 8 }, (_, i) => started(policy, request(8 + i, atUs, 16), 1));
    assert.equal(fromB[0]!.replica, x, 'B knows where the prompt is');
    assert.ok((fromB[0]!.matched ?? 0) > 0);
    const onX = fromB.filter((d) => d.replica === x).length;
    // Counting its own requests alone, B would let all 8 join A's 8 there (the guard passes over nothing below 8).
    assert.ok(onX <= 2, `B sent ${onX} of 8 to the replica already decoding A's 8`);
    for (const d of [...fromA, ...fromB]) policy.onFinish(d);
  } finally {
    await policy.close();
  }
});
