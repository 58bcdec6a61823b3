// The filter's side of the gateway fleet exchange (plugin/STATE_FORMAT.md,
// "Gateway fleet"): the report it POSTs with its long poll, the state sections
// it decodes (encoded here by the control plane's codec), and the fallback to
// GET for a control plane that predates the exchange.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ReplicaState, type StateSection } from '../../control-plane/stateWire.js';
import {
  decodeReport, encodeFleetPosition, encodeOtherContentSection, encodeOtherWorkSection, encodePlacementsSection, REPORT_CONTENT_TYPE,
  SECTION_FLEET_POSITION, SECTION_OTHER_CONTENT, SECTION_OTHER_WORK, SECTION_PLACEMENTS,
} from '../../control-plane/fleetWire.js';
import { StateServer } from '../../bench/stateServer.js';
import { readStamp } from '../../plugin/sharedData.js';
import { SharedDataStore } from '../../host/index.js';
import { completion, send, startHost, text, waitFor } from './support.js';

function replica(address: string): ReplicaState {
  return { address, ready: true, metricsKnown: true, waiting: 0, running: 0, kvUsage: 0.1, kvCapacityTokens: 150000, metricsAgeMs: 10 };
}

const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
const cpConfig = { controlPlane: { cluster: 'prefix_router_control_plane', longPollMs: 300, retryMs: 50 } };
const replicas = [replica('10.3.0.1:8000'), replica('10.3.0.2:8000')];

const placements = (through: bigint, list: Array<{ hash: bigint; replica: number; depth: number }>): StateSection =>
  ({ tag: SECTION_PLACEMENTS, bytes: encodePlacementsSection({ through, placements: list }, replicas.length) });
const work = (list: Array<{ replica: number; queuedTokens: number; decodeWork: number }>): StateSection =>
  ({ tag: SECTION_OTHER_WORK, bytes: encodeOtherWorkSection(list, replicas.length) });
const content = (list: Array<{ replica: number; writtenUnits: number }>): StateSection =>
  ({ tag: SECTION_OTHER_CONTENT, bytes: encodeOtherContentSection(list, replicas.length) });

test('the poll is a POST carrying the fleet report: a random gateway id that stays, and the placements cursor it was sent', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url }, randomSeed: 1234 });
  try {
    await waitFor(() => cp.lastPoll !== null, 'first poll', 15_000);
    assert.equal(cp.lastPoll!.method, 'POST');
    assert.equal(cp.lastPoll!.contentType, REPORT_CONTENT_TYPE);
    const first = decodeReport(cp.lastPoll!.body);
    assert.notEqual(first.gatewayId, 0n);
    assert.equal(first.placementsSeen, 0n);
    // A state with section 1 moves the cursor the next report names.
    cp.set({ version: 2n, weights, replicas, sections: [placements(777n, [{ hash: 5n, replica: 1, depth: 16 }])] });
    await waitFor(() => decodeReport(cp.lastPoll!.body).placementsSeen === 777n, 'cursor 777 reported', 15_000);
    assert.equal(decodeReport(cp.lastPoll!.body).gatewayId, first.gatewayId, 'the same gateway id on every poll');
    assert.equal(readStamp(host.sharedData).version, 2n);
  } finally {
    await host.close();
    await cp.close();
  }
});

test('two gateways (two processes) make different ids', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas });
  const url = await cp.listen();
  const ids: bigint[] = [];
  // A report the first gateway sent just before it closed may still arrive during the second's
  // start, so the second's id is the first poll that names another: none within the wait fails.
  const fromAnother = () => cp.lastPoll !== null && (ids.length === 0 || decodeReport(cp.lastPoll.body).gatewayId !== ids[0]);
  try {
    for (const seed of [1, 2]) {
      cp.lastPoll = null;
      const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url }, randomSeed: seed, sharedData: new SharedDataStore() });
      try {
        await waitFor(fromAnother, ids.length === 0 ? 'poll' : 'a poll from the second gateway with an id of its own', 15_000);
        ids.push(decodeReport(cp.lastPoll!.body).gatewayId);
      } finally { await host.close(); }
    }
  } finally { await cp.close(); }
  assert.notEqual(ids[0], ids[1]);
});

test('states with valid fleet sections are adopted; a malformed section rejects the whole state, the last good one stays', async () => {
  const position: StateSection = { tag: SECTION_FLEET_POSITION, bytes: encodeFleetPosition({ index: 1, count: 2 }) };
  const good = {
    version: 2n, weights, replicas,
    sections: [placements(9n, [{ hash: 1n, replica: 0, depth: 3 }]), work([{ replica: 1, queuedTokens: 5000, decodeWork: 70 }]), position, content([{ replica: 1, writtenUnits: 9 }])],
  };
  const cp = new StateServer({ version: 1n, weights, replicas });
  const url = await cp.listen();
  const { host, logs } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('x') }).endpoint !== undefined, 'first state', 15_000);
    cp.set(good);
    await waitFor(() => readStamp(host.sharedData).version === 2n, 'version 2 adopted', 15_000);
    assert.ok(!logs.some((l) => String(l.message).includes('state rejected')), 'no rejection');
    const bad: Array<[string, StateSection[]]> = [
      ['placement names a replica outside the state', [{ tag: SECTION_PLACEMENTS, bytes: spoil(good.sections[0]!.bytes, 20, 2) }]],
      ['placement depth is not a checkpoint depth', [{ tag: SECTION_PLACEMENTS, bytes: spoil(good.sections[0]!.bytes, 24, 17) }]],
      ['placements section length does not match its count', [{ tag: SECTION_PLACEMENTS, bytes: good.sections[0]!.bytes.slice(0, 20) }]],
      ['placements section length does not match its count', [{ tag: SECTION_PLACEMENTS, bytes: spoil(good.sections[0]!.bytes, 8, 0xff) }]],
      ['work record names a replica outside the state, or one twice', [work([{ replica: 0, queuedTokens: 1, decodeWork: 1 }, { replica: 1, queuedTokens: 1, decodeWork: 1 }]).bytes].map((b) => ({ tag: SECTION_OTHER_WORK, bytes: spoil(b, 16, 0) }))],
      ['work section length does not match its count', [{ tag: SECTION_OTHER_WORK, bytes: spoil(good.sections[1]!.bytes, 0, 9) }]],
      ['content section (tag 4) length does not match its count', [{ tag: SECTION_OTHER_CONTENT, bytes: spoil(good.sections[3]!.bytes, 0, 2) }]],
      ['content section (tag 4) length does not match its count', [{ tag: SECTION_OTHER_CONTENT, bytes: new Uint8Array(3) }]],
      ['content record (tag 4) names a replica outside the state, or one twice, or sets reserved bits', [{ tag: SECTION_OTHER_CONTENT, bytes: spoil(good.sections[3]!.bytes, 4, 2) }]],
      ['content record (tag 4) names a replica outside the state, or one twice, or sets reserved bits', [{ tag: SECTION_OTHER_CONTENT, bytes: spoil(good.sections[3]!.bytes, 7, 1) }]],
      ['content record (tag 4) names a replica outside the state, or one twice, or sets reserved bits',
        [{ tag: SECTION_OTHER_CONTENT, bytes: spoil(content([{ replica: 0, writtenUnits: 1 }, { replica: 1, writtenUnits: 1 }]).bytes, 12, 0) }]],
      ['fleet position section (tag 3) must be 4 bytes', [{ tag: SECTION_FLEET_POSITION, bytes: new Uint8Array([0, 0, 1, 0, 0]) }]],
      ['fleet position section (tag 3) must be 4 bytes', [{ tag: SECTION_FLEET_POSITION, bytes: new Uint8Array(0) }]],
      ['fleet position section (tag 3): index must be below a count of at least 1', [{ tag: SECTION_FLEET_POSITION, bytes: spoil(position.bytes, 0, 2) }]],
      ['fleet position section (tag 3): index must be below a count of at least 1', [{ tag: SECTION_FLEET_POSITION, bytes: new Uint8Array(4) }]],
    ];
    let version = 3n;
    for (const [why, sections] of bad) {
      cp.set({ version: version++, weights, replicas, sections });
      await waitFor(() => logs.some((l) => String(l.message).includes(`state rejected: ${why}`)), `rejection: ${why}`, 15_000);
      assert.equal(readStamp(host.sharedData).version, 2n, why);
      // Still routing on version 2.
      assert.ok(send(host, { body: completion('still') }).endpoint);
    }
  } finally {
    await host.close();
    await cp.close();
  }
});

test('a control plane that predates the exchange (405 to POST) is polled with GET from then on', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas });
  cp.refusePost = true;
  const url = await cp.listen();
  const { host, logs } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('x') }).endpoint !== undefined, 'state over GET', 15_000);
    assert.equal(cp.lastPoll!.method, 'GET');
    assert.equal(logs.filter((l) => String(l.message).includes('does not take fleet reports')).length, 1);
  } finally {
    await host.close();
    await cp.close();
  }
});

test('the report carries the content the gateway wrote per replica; the other gateways\' content (section 4) steers a new prompt away', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas });
  const url = await cp.listen();
  const { host } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion(text(1, 4000)) }).endpoint !== undefined, 'first state', 15_000);
    // Each new prompt writes its ~1000 tokens and its output into the replica it went to.
    const where = (version: bigint, sections: StateSection[]) => {
      cp.set({ version, weights, replicas, sections });
      return waitFor(() => readStamp(host.sharedData).version === version, `version ${version}`, 15_000);
    };
    await where(2n, [content([{ replica: 0, writtenUnits: 1_000_000 }])]);
    const toB = Array.from({ length: 3 }, (_, i) => send(host, { body: completion(text(100 + i, 4000)) }).endpoint);
    assert.deepEqual(toB, Array(3).fill(replicas[1]!.address), 'replica 0 holds the fleet\'s content');
    await where(3n, [content([{ replica: 1, writtenUnits: 1_000_000 }])]);
    const toA = Array.from({ length: 3 }, (_, i) => send(host, { body: completion(text(200 + i, 4000)) }).endpoint);
    assert.deepEqual(toA, Array(3).fill(replicas[0]!.address), 'replica 1 holds the fleet\'s content');
    // The next report names this gateway's own content, in 64-token units, per replica hash.
    const r = await (async () => {
      await waitFor(() => cp.lastPoll !== null && decodeReport(cp.lastPoll.body).content.length === 2, 'a report with content on both replicas', 15_000);
      return decodeReport(cp.lastPoll!.body);
    })();
    assert.equal(cp.lastPoll!.body[4], 2, 'report format 2');
    for (const c of r.content) assert.ok(c.writtenUnits >= 3 * 1000 / 64 - 1, `${c.writtenUnits} units`);
  } finally {
    await host.close();
    await cp.close();
  }
});

test('a control plane that refuses report format 2 (400) gets format 1 reports from then on', async () => {
  const cp = new StateServer({ version: 1n, weights, replicas });
  cp.refuseReportContent = true;
  const url = await cp.listen();
  const { host, logs } = await startHost(cpConfig, { clusters: { prefix_router_control_plane: url } });
  try {
    await waitFor(() => send(host, { body: completion('x') }).endpoint !== undefined, 'state over a format-1 report', 15_000);
    assert.equal(cp.lastPoll!.method, 'POST');
    assert.equal(cp.lastPoll!.body[4], 1);
    assert.deepEqual(decodeReport(cp.lastPoll!.body).content, []);
    assert.equal(logs.filter((l) => String(l.message).includes('refused a fleet report with content counts')).length, 1);
  } finally {
    await host.close();
    await cp.close();
  }
});

function spoil(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const b = bytes.slice();
  b[at] = value;
  return b;
}
