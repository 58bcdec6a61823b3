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
import type { Decision } from '../../bench/routing/policy.js';
import type { SimRequest } from '../../bench/routing/workloads.js';

const prompt = 'You are the fleet news assistant; answer in one line. '.repeat(60);

/** Moves virtual time to `toUs` in steps of 5 ms, as the simulation's events do (the control plane's publish tick runs between them). */
function advance(policy: FilterPolicy, fromUs: number, toUs: number): void {
  for (let t = fromUs + 5_000; t < toUs; t += 5_000) policy.advanceTo(t);
  policy.advanceTo(toUs);
}

function request(id: number, atUs: number, outputTokens = 8): SimRequest {
  return { id, arrivalUs: atUs, prompt, promptTokens: Math.floor(prompt.length / 4), blockHashes: [], outputTokens, group: 'g' };
}

test('a placement made through gateway A reaches gateway B within tens of milliseconds while both polls are held', async () => {
  const policy = await FilterPolicy.create({ name: 'fleet-news', replicas: 4, weights: DEFAULT_WEIGHTS, gateways: 2, workers: 1, seed: 3 });
  try {
    // Both gateways have polled, registered, and heard of each other (their fleet positions).
    advance(policy, 0, 100_000);
    const reports = policy.controlPlane.reports;
    const placedAtUs = 210_000;
    advance(policy, 100_000, placedAtUs);
    assert.equal(policy.controlPlane.reports, reports, 'a gateway with no news sends no report of its own');
    const a = policy.route(request(0, placedAtUs), { gateway: 0, worker: 0 });
    policy.onFirstToken(a);
    assert.equal(a.matched, 0, 'nobody held the prompt before');
    assert.equal(policy.controlPlane.fleet.placementCount, 0);
    // One report tick (20 ms) later the control plane holds A's placements, though A's poll is still held.
    advance(policy, placedAtUs, placedAtUs + 25_000);
    assert.ok(policy.controlPlane.fleet.placementCount > 0, 'the report went out while the poll was held');
    // The control plane's next publish tick answers B's held poll with them: B routes the prompt to A's replica, as a hit.
    const atUs = placedAtUs + 60_000;
    advance(policy, placedAtUs + 25_000, atUs);
    const b = policy.route(request(1, atUs), { gateway: 1, worker: 0 });
    policy.onFirstToken(b);
    assert.equal(b.replica, a.replica);
    assert.ok((b.matched ?? 0) > 0, `B knows the prefix (matched ${b.matched} of ${b.total})`);
    policy.onFinish(a);
    policy.onFinish(b);
    assert.deepEqual(policy.unexpectedLogs(), []);
  } finally {
    await policy.close();
  }
});

/** Routes `req` through `gateway` and starts its response: it decodes from here on. */
function started(policy: FilterPolicy, req: SimRequest, gateway: number): Decision {
  const d = policy.route(req, { gateway, worker: 0 });
  policy.onFirstToken(d);
  return d;
}

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
