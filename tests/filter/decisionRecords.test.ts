// Decision records and the stats operators alert on, end to end: the control plane's encoder
// (control-plane/observabilitySection.ts) writes state section 32, the filter decodes it in the
// host and logs one JSON line per sampled request (and the compact header with debugHeaders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ReplicaState, type RouterState } from '../../control-plane/stateWire.js';
import { encodeObservability, OBSERVABILITY_TAG } from '../../control-plane/observabilitySection.js';
import { StateServer } from '../../bench/stateServer.js';
import { completion, send, startHost, text, type Logged } from './support.js';

const A = '10.7.0.1:8000';
const B = '10.7.0.2:8000';
const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
/** The state's weights and the filter's own work weight (plugin configuration, default 1000). */
const applied = { ...weights, work: 1000 };
const cpConfig = { controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 1000, retryMs: 50 } };

function replica(address: string, over: Partial<ReplicaState> = {}): ReplicaState {
  return { address, ready: true, metricsKnown: true, waiting: 0, running: 0, kvUsage: 0.25, kvCapacityTokens: 150000, metricsAgeMs: 10, ...over };
}

function state(version: bigint, decisionLogEvery: number, replicas = [replica(A), replica(B, { waiting: 2 })]): RouterState {
  const section = encodeObservability({ decisionLogEvery });
  return { version, weights, replicas, ...(section ? { sections: [section] } : {}) };
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Record {
  event: string;
  stateVersion: number;
  chosen: string;
  runnerUp: string | null;
  blocks: { matched: number; total: number };
  weights: { [scorer: string]: number };
  guard: { cap: number; workBound: number | null; spilled: boolean; passedOver: string | null };
  newPrefix: boolean;
  mostlyNew: boolean;
  metricsTrusted: boolean;
  session: boolean;
  candidates: Array<{ replica: string; matchedBlocks: number; load: number; overCap: boolean; workTokens: number; overWork: boolean; predictedTtftMs: number; memoryWaitMs: number; score: number; scores: { [scorer: string]: number } }>;
}

const records = (logs: Logged[]): Record[] =>
  logs.filter((l) => l.message.startsWith('{"event":"prefix_router.decision"')).map((l) => JSON.parse(l.message) as Record);

async function withFilter(s: RouterState, extra: object, run: (h: Awaited<ReturnType<typeof startHost>>, cp: StateServer) => Promise<void>): Promise<void> {
  const cp = new StateServer(s);
  const url = await cp.listen();
  const h = await startHost({ ...cpConfig, ...extra }, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(h.host, { method: 'GET', path: '/v1/models', worker: 0 }).endpoint !== undefined, 'first state');
    await waitFor(() => send(h.host, { method: 'GET', path: '/v1/models', worker: 1 }).endpoint !== undefined, 'first state on worker 1');
    h.logs.length = 0;
    await run(h, cp);
  } finally {
    await h.host.close();
    await cp.close();
  }
}

test('a sampled request logs its decision: scores by scorer for every candidate, weights, guard, chosen and runner-up', async () => {
  await withFilter(state(1n, 1), { debugHeaders: true }, async ({ host, logs }) => {
    const system = text(3, 1280); // 20 blocks
    const first = send(host, { body: completion(system + ' one'), worker: 0 });
    const second = send(host, { body: completion(system + ' two'), worker: 0 });
    const recs = records(logs);
    assert.equal(recs.length, 2, JSON.stringify(logs.map((l) => l.message)));
    const r = recs[1];
    assert.equal(r.chosen, second.endpoint);
    assert.equal(r.chosen, first.endpoint, 'the shared prefix keeps its replica');
    assert.equal(r.runnerUp, r.chosen === A ? B : A);
    assert.deepEqual(r.blocks, { matched: 16, total: 20 }, 'matched to the deepest checkpoint, 16 of 20 blocks');
    assert.deepEqual(r.weights, applied);
    assert.equal(r.stateVersion, 1);
    assert.equal(r.metricsTrusted, true);
    assert.equal(r.session, false);
    assert.equal(r.guard.spilled, false);
    assert.equal(r.guard.passedOver, null);
    assert.ok(r.guard.cap >= 8, `cap ${r.guard.cap}`);
    assert.deepEqual(r.candidates.map((c) => c.replica).sort(), [A, B]);
    const chosen = r.candidates.find((c) => c.replica === r.chosen)!;
    const other = r.candidates.find((c) => c.replica !== r.chosen)!;
    assert.equal(chosen.scores.prefix, 0.8);
    assert.equal(other.scores.prefix, 0);
    assert.equal(chosen.matchedBlocks, 16);
    // The holder prefills 4 blocks where the other replica prefills 20: predicted sooner, neither cache full.
    assert.ok(chosen.predictedTtftMs > 0 && chosen.predictedTtftMs < other.predictedTtftMs, `${chosen.predictedTtftMs} vs ${other.predictedTtftMs}`);
    assert.deepEqual(r.candidates.map((c) => c.memoryWaitMs), [0, 0]);
    // The work guard: its bound, and each candidate's work against it (the holder prefills 16 blocks less).
    assert.ok(r.guard.workBound !== null && r.guard.workBound > 0, `bound ${r.guard.workBound}`);
    assert.ok(chosen.workTokens < other.workTokens, `${chosen.workTokens} vs ${other.workTokens}`);
    for (const c of r.candidates) assert.equal(c.overWork, c.workTokens > r.guard.workBound!);
    // The queue scorer is min-max over candidates: the shorter queue (A, 0 waiting) scores 1.
    assert.equal(r.candidates.find((c) => c.replica === A)!.scores.queue, 1);
    assert.equal(r.candidates.find((c) => c.replica === B)!.scores.queue, 0);
    assert.equal(chosen.scores.kvCache, 0.75);
    for (const c of r.candidates) {
      const sum = Object.entries(c.scores).reduce((s, [k, v]) => s + applied[k as keyof typeof applied] * v, 0);
      // Scores are logged to 3 decimals: each weight times half a thousandth at most.
      assert.ok(Math.abs(sum - c.score) < 0.0005 * Object.values(applied).reduce((a, b) => a + b, 0), `${c.replica}: weighted sum ${sum} vs score ${c.score}`);
    }
    // The compact header says the same.
    const header = second.responseHeaders.find(([k]) => k === 'x-prefix-router-decision')?.[1];
    assert.ok(header, 'x-prefix-router-decision');
    assert.match(header!, new RegExp(`^chosen=${r.chosen.replace(/\./g, '\\.')}; runnerUp=${r.runnerUp!.replace(/\./g, '\\.')}; blocks=16/20; cap=\\d+; spilled=0; weights=prefix:3,queue:1,kvCache:1,inflight:1,work:1000; `));
    assert.ok(header!.includes(`${r.chosen}=score:${chosen.score},load:${chosen.load},prefix:0.8,queue:`), header);
  });
});

test('a prompt held for less than half is recorded as placed like a new one, and with the prefix weight 0 neither is placed by content', async () => {
  const preamble = text(3, 1280); // 20 blocks
  const document = text(9, 4000);
  const placements = async (prefix: number): Promise<Array<[boolean, boolean]>> => {
    const s = { ...state(1n, 1), weights: { ...weights, prefix } };
    let seen: Array<[boolean, boolean]> = [];
    await withFilter(s, {}, async ({ host, logs }) => {
      send(host, { body: completion(preamble + ' one'), worker: 0 });
      send(host, { body: completion(preamble + document), worker: 0 });
      seen = records(logs).map((r) => [r.newPrefix, r.mostlyNew]);
      assert.equal(records(logs)[1].blocks.matched, 16, 'the second prompt is held for its preamble');
    });
    return seen;
  };
  assert.deepEqual(await placements(3), [[true, false], [false, true]]);
  assert.deepEqual(await placements(0), [[false, false], [false, false]]);
});

test('one request in N is sampled per worker VM; without debugHeaders the record is logged but no header is added', async () => {
  await withFilter(state(1n, 3), {}, async ({ host, logs }) => {
    const sent = [];
    for (let i = 0; i < 9; i++) sent.push(send(host, { body: completion(text(100 + i, 300)), worker: 0 }));
    assert.equal(records(logs).length, 3);
    assert.ok(sent.every((r) => !r.responseHeaders.some(([k]) => k.startsWith('x-prefix-router-'))), 'no debug headers by default');
    // Requests without a prompt are routed on load alone: the record has no prefix column.
    logs.length = 0;
    for (let i = 0; i < 3; i++) send(host, { method: 'GET', path: '/v1/models', worker: 1 });
    const [r] = records(logs);
    assert.deepEqual(r.blocks, { matched: 0, total: 0 });
    assert.equal(r.candidates[0].scores.prefix, undefined);
    assert.equal(typeof r.candidates[0].scores.queue, 'number');
  });
});

test('sampling follows the state: off without the section, on when a new state carries it', async () => {
  await withFilter(state(1n, 0), { debugHeaders: true }, async ({ host, logs }, cp) => {
    for (let i = 0; i < 5; i++) send(host, { body: completion(text(i, 300)), worker: 0 });
    assert.equal(records(logs).length, 0);
    assert.ok(!send(host, { body: completion('x'), worker: 0 }).responseHeaders.some(([k]) => k === 'x-prefix-router-decision'));
    cp.set(state(2n, 1));
    await waitFor(() => records(logs).length > 0 || (send(host, { body: completion('y'), worker: 0 }), false), 'records after state 2');
    assert.equal(records(logs).at(-1)!.stateVersion, 2);
  });
});

test('the guard\'s spill is in the record: the replica passed over, over the cap, and counted per replica', async () => {
  // Without the work scorer (weights.work 0) the prefix scorer keeps the system prompt on its holder and the count guard spills it.
  await withFilter(state(1n, 1, [replica(A), replica(B)]), { weights: { work: 0 } }, async ({ host, logs }) => {
    const system = text(5, 1280);
    const open = [];
    for (let i = 0; i < 40; i++) open.push(send(host, { body: completion(system + ` q${i}`), worker: 0 }, false));
    const spilled = records(logs).filter((r) => r.guard.spilled);
    assert.ok(spilled.length > 0, 'some request spilled');
    const r = spilled[0];
    assert.notEqual(r.guard.passedOver, r.chosen);
    const passed = r.candidates.find((c) => c.replica === r.guard.passedOver)!;
    assert.equal(passed.overCap, true);
    assert.ok(passed.load + 1 > r.guard.cap);
    // No work weight, no work guard.
    assert.equal(r.guard.workBound, null);
    assert.ok(r.candidates.every((c) => !c.overWork));
    assert.ok(passed.score > r.candidates.find((c) => c.replica === r.chosen)!.score, 'the better-scored replica was passed over');
    for (const o of open) o.complete();
    host.tick();
    const value = (name: string) => Number(host.metrics().get(name)?.value ?? 0);
    const stat = (family: string, address: string) => value(`prefix_router.${family}.${address.replace(/[.:]/g, '_')}`);
    const spills = records(logs).filter((x) => x.guard.spilled);
    assert.equal(value('prefix_router.load_bound_spills'), spills.length);
    assert.equal(stat('replica_load_bound_passed_over', r.guard.passedOver!), spills.filter((x) => x.guard.passedOver === r.guard.passedOver).length);
    assert.equal(stat('replica_requests', A) + stat('replica_requests', B), 40 + 2); // and the two first-state probes
    assert.equal(stat('replica_prefix_blocks_total', A) + stat('replica_prefix_blocks_total', B), 40 * 20);
    const matched = records(logs).reduce((s, x) => s + x.blocks.matched, 0);
    assert.equal(stat('replica_prefix_blocks_matched', A) + stat('replica_prefix_blocks_matched', B), matched);
    assert.equal(value('prefix_router.decision_records'), 40 + 2);
  });
});

test('state version and control-plane age are gauges; a malformed observability section rejects the state', async () => {
  await withFilter(state(5n, 0), {}, async ({ host, logs }, cp) => {
    host.tick();
    const value = (name: string) => host.metrics().get(name);
    assert.equal(value('prefix_router.state_version')?.type, 'gauge');
    assert.equal(value('prefix_router.state_version')?.value, 5);
    const age = value('prefix_router.control_plane_age_ms');
    assert.equal(age?.type, 'gauge');
    assert.ok(age!.value >= 0 && age!.value < 5000, `age ${age!.value}`);
    // Section 32 with a body the filter does not accept: the whole state is refused, version 5 kept.
    cp.set({ ...state(6n, 0), sections: [{ tag: OBSERVABILITY_TAG, bytes: new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0]) }] });
    await waitFor(() => logs.some((l) => l.message.includes('observability section (tag 32): reserved bits set')), 'rejection logged');
    host.tick();
    assert.equal(value('prefix_router.state_version')?.value, 5);
    assert.ok(Number(value('prefix_router.state_rejected')?.value) >= 1);
  });
});
