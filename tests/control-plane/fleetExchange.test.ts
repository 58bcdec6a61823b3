// The gateway fleet's exchange: what each poller is answered (others' placements
// after its cursor, others' work), the LRU per replica, and the wire codecs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetExchange, GATEWAY_EXPIRY_MS, PLACEMENT_PUBLISH_MS, WORK_PUBLISH_MS } from '../../control-plane/fleetExchange.js';
import {
  decodeFleetPosition, decodeOtherContentSection, decodeOtherWorkSection, decodePlacementsSection, decodeReport, encodeFleetPosition,
  encodeOtherContentSection, encodeReport, FleetWireError, MAX_SECTION_PLACEMENTS, REPORT_FORMAT_WITHOUT_CONTENT, SECTION_FLEET_POSITION,
  SECTION_OTHER_CONTENT, SECTION_OTHER_WORK, SECTION_PLACEMENTS, fleetSectionsOf, type PollReport,
} from '../../control-plane/fleetWire.js';
import { addressHasher } from '../../control-plane/app.js';
import { decodeState, encodeState, fnv1a32, type ReplicaState, type RouterState } from '../../control-plane/stateWire.js';

const weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };
const hash = await addressHasher();

function replica(address: string, kvCapacityTokens = 150_000): ReplicaState {
  return { address, ready: true, metricsKnown: true, waiting: 0, running: 0, kvUsage: 0.1, kvCapacityTokens, metricsAgeMs: 5 };
}
const state = (replicas: ReplicaState[], version = 7n): RouterState => ({ version, weights, replicas });
const A = 0xaaaan, B = 0xbbbbn, C = 0xccccn;
const R0 = '10.0.0.1:8000', R1 = '10.0.0.2:8000';

function report(
  gatewayId: bigint, placementsSeen: bigint, placements: Array<[bigint, string, number]> = [], work: Array<[string, number, number]> = [], content: Array<[string, number]> = [],
): PollReport {
  return {
    gatewayId, placementsSeen,
    placements: placements.map(([h, a, depth]) => ({ hash: h, replica: hash(a), depth })),
    work: work.map(([a, queuedTokens, decodeWork]) => ({ replica: hash(a), queuedTokens, decodeWork })),
    content: content.map(([a, writtenUnits]) => ({ replica: hash(a), writtenUnits })),
  };
}

/** What `gateway` is answered, decoded as the filter would. */
function answer(x: FleetExchange, s: RouterState, r: PollReport) {
  const sections = x.sectionsFor(s, r);
  const decoded = decodeState(encodeState({ ...s, sections }));
  const placements = decodePlacementsSection(decoded.sections!.find((q) => q.tag === SECTION_PLACEMENTS)!.bytes, s.replicas.length);
  const workSec = decoded.sections!.find((q) => q.tag === SECTION_OTHER_WORK);
  const work = workSec ? decodeOtherWorkSection(workSec.bytes, s.replicas.length) : [];
  const positionSec = decoded.sections!.find((q) => q.tag === SECTION_FLEET_POSITION);
  const position = positionSec ? decodeFleetPosition(positionSec.bytes) : null;
  const contentSec = decoded.sections!.find((q) => q.tag === SECTION_OTHER_CONTENT);
  const content = contentSec ? decodeOtherContentSection(contentSec.bytes, s.replicas.length).sort((p, q) => p.replica - q.replica) : [];
  return { through: placements.through, placements: placements.placements, work, position, content };
}

test('a poller gets the placements the other gateways made after its cursor, never its own', () => {
  const x = new FleetExchange({ hashAddress: hash });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  x.ingest(report(A, 0n, [[1n, R0, 1], [2n, R0, 2], [3n, R1, 16]]));
  assert.equal(x.takeChanged(), true);
  assert.equal(x.takeChanged(), false);
  const first = answer(x, s, report(B, 0n));
  assert.deepEqual(first.placements, [{ hash: 1n, replica: 0, depth: 1 }, { hash: 2n, replica: 0, depth: 2 }, { hash: 3n, replica: 1, depth: 16 }]);
  assert.deepEqual(answer(x, s, report(A, 0n)).placements, [], 'its own placements are not sent back');
  // B has seen them: only what comes after its cursor.
  x.ingest(report(C, 0n, [[4n, R1, 32]]));
  const second = answer(x, s, report(B, first.through));
  assert.deepEqual(second.placements, [{ hash: 4n, replica: 1, depth: 32 }]);
  assert.deepEqual(answer(x, s, report(B, second.through)).placements, []);
  // A cursor from another control plane's numbering (ahead of this one's) starts over.
  assert.equal(answer(x, s, report(B, second.through + 1_000_000n)).placements.length, 4);
});

test('placements are kept per replica in an LRU sized by its KV cache; a placement made again moves to the end', () => {
  const x = new FleetExchange({ hashAddress: hash });
  // 16 * 4 * 20 tokens: room for 20 checkpoints.
  const s = state([replica(R0, 16 * 4 * 20)]);
  x.setReplicas(s.replicas);
  for (let i = 1n; i <= 20n; i++) x.ingest(report(A, 0n, [[i, R0, 1]]));
  x.ingest(report(A, 0n, [[1n, R0, 1]])); // again: now the newest
  x.ingest(report(A, 0n, [[21n, R0, 1]])); // evicts the oldest, 2
  assert.equal(x.placementCount, 20);
  const got = answer(x, s, report(B, 0n)).placements.map((p) => p.hash);
  assert.deepEqual(got, [...Array.from({ length: 18 }, (_, i) => BigInt(i + 3)), 1n, 21n]);
  // A replica that leaves takes its placements along; one the control plane does not know is ignored.
  x.ingest(report(A, 0n, [[99n, '10.9.9.9:8000', 1]]));
  assert.equal(x.placementCount, 20);
  x.setReplicas([replica(R1)]);
  assert.equal(x.placementCount, 0);
});

test('a long backlog comes in pages of a section each; the poller is answered at once while it has more', () => {
  const x = new FleetExchange({ hashAddress: hash });
  const s = state([replica(R0, 16 * 4 * 100_000)]);
  x.setReplicas(s.replicas);
  const total = MAX_SECTION_PLACEMENTS + 100;
  for (let i = 0; i < total; i += 8000) {
    const batch: Array<[bigint, string, number]> = [];
    for (let j = i; j < Math.min(total, i + 8000); j++) batch.push([BigInt(j + 1), R0, 16]);
    x.ingest(report(A, 0n, batch));
  }
  assert.equal(x.ingest(report(B, 0n)), false);
  const page1 = answer(x, s, report(B, 0n));
  assert.equal(page1.placements.length, MAX_SECTION_PLACEMENTS);
  assert.equal(x.ingest(report(B, page1.through)), true, 'behind: answer at once');
  const page2 = answer(x, s, report(B, page1.through));
  assert.equal(page2.placements.length, 100);
  assert.equal(page2.placements[0]!.hash, BigInt(MAX_SECTION_PLACEMENTS + 1));
  assert.equal(x.ingest(report(B, page2.through)), false);
});

test('each gateway is told the sum of the other gateways\' work per replica, not its own; a silent gateway expires', () => {
  let now = 1000;
  const x = new FleetExchange({ hashAddress: hash, now: () => now });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  x.ingest(report(A, 0n, [], [[R0, 100, 10], [R1, 5, 0]]));
  x.ingest(report(B, 0n, [], [[R0, 1000, 20]]));
  assert.equal(x.takeChanged(), true);
  x.ingest(report(B, 0n, [], [[R0, 1000, 20]]));
  assert.equal(x.takeChanged(), false, 'the same work again is no change');
  assert.deepEqual(answer(x, s, report(A, 0n)).work, [{ replica: 0, queuedTokens: 1000, decodeWork: 20 }]);
  assert.deepEqual(answer(x, s, report(B, 0n)).work.sort((p, q) => p.replica - q.replica), [{ replica: 0, queuedTokens: 100, decodeWork: 10 }, { replica: 1, queuedTokens: 5, decodeWork: 0 }]);
  assert.deepEqual(answer(x, s, report(C, 0n)).work.find((w) => w.replica === 0), { replica: 0, queuedTokens: 1100, decodeWork: 30 });
  now += GATEWAY_EXPIRY_MS + 1;
  x.ingest(report(A, 0n, [], [[R0, 100, 10], [R1, 5, 0]]));
  assert.equal(x.takeChanged(), true, 'B expired');
  assert.deepEqual(answer(x, s, report(A, 0n)).work, []);
});

test('the fleet report round-trips and every malformed one is refused with a reason', () => {
  const r = report(A, 123n, [[0xffffffffffffffffn, R0, 16384], [5n, R1, 3]], [[R0, 7, 8]], [[R0, 0xffffffff], [R1, 3]]);
  assert.deepEqual(decodeReport(encodeReport(r)), r);
  // Format 1 (a filter from before the content records) is still taken, with no content.
  const old = encodeReport(r, REPORT_FORMAT_WITHOUT_CONTENT);
  assert.equal(old.length, 32 + 16 + 2 * 20 + 4);
  assert.deepEqual(decodeReport(old), { ...r, content: [] });
  const good = encodeReport(r);
  const withChecksum = (b: Uint8Array) => { new DataView(b.buffer).setUint32(b.length - 4, fnv1a32(b, b.length - 4), true); };
  const bad: Array<[string, (b: Uint8Array) => Uint8Array | void, RegExp]> = [
    ['magic', (b) => { b[0] ^= 1; }, /magic/],
    ['checksum', (b) => { b[40] ^= 1; }, /checksum/],
    ['truncated', (b) => b.slice(0, b.length - 5), /checksum|length/],
    ['format 3', (b) => { b[4] = 3; withChecksum(b); }, /format/],
    ['reserved bytes after the content count', (b) => { b[36] = 1; withChecksum(b); }, /reserved/],
    ['content count past its records', (b) => { b[32] = 3; withChecksum(b); }, /length/],
    ['a replica with two content records', (b) => { b.copyWithin(40 + 16 + 12, 40 + 16, 40 + 16 + 8); withChecksum(b); }, /two content records/],
    ['format 1 header on a format 2 body', (b) => { b[4] = 1; withChecksum(b); }, /length/],
    ['format 2 shorter than its header', () => { const b = new Uint8Array(38); const dv = new DataView(b.buffer); dv.setUint32(0, 0x52465250, true); dv.setUint16(4, 2, true); withChecksum(b); return b; }, /shorter/],
  ];
  for (const [what, spoil, reason] of bad) {
    const b = good.slice();
    const spoilt = spoil(b) ?? b;
    assert.throws(() => decodeReport(spoilt), reason, what);
    assert.throws(() => decodeReport(spoilt), FleetWireError, what);
  }
  assert.throws(() => encodeReport(r, 3), /format/);
  assert.throws(() => encodeReport(report(A, 0n, [[1n, R0, 17]])), /checkpoint depth/);
  assert.throws(() => encodeReport(report(0n, 0n)), /gatewayId/);
});

test('each poller is told its index among the live gateways sorted by id, and their count; joining and expiring move the version', () => {
  let now = 1000;
  const x = new FleetExchange({ hashAddress: hash, now: () => now });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  x.ingest(report(B, 0n));
  assert.equal(x.takeChanged(), true, 'a gateway joined');
  assert.deepEqual(answer(x, s, report(B, 0n)).position, { index: 0, count: 1 });
  x.ingest(report(C, 0n));
  x.ingest(report(A, 0n));
  assert.equal(x.takeChanged(), true);
  x.ingest(report(A, 0n));
  assert.equal(x.takeChanged(), false, 'a gateway polling again moves nothing');
  assert.deepEqual(answer(x, s, report(A, 0n)).position, { index: 0, count: 3 });
  assert.deepEqual(answer(x, s, report(B, 0n)).position, { index: 1, count: 3 });
  assert.deepEqual(answer(x, s, report(C, 0n)).position, { index: 2, count: 3 });
  assert.equal(answer(x, s, report(0xddddn, 0n)).position, null, 'a gateway not taken in has no position');
  now += GATEWAY_EXPIRY_MS / 2;
  x.ingest(report(B, 0n));
  x.ingest(report(C, 0n));
  now += GATEWAY_EXPIRY_MS / 2 + 1;
  assert.equal(x.takeChanged(), true, 'A expired');
  assert.deepEqual(answer(x, s, report(B, 0n)).position, { index: 0, count: 2 });
  assert.deepEqual(answer(x, s, report(C, 0n)).position, { index: 1, count: 2 });
});

test('the fleet position section round-trips; a wrong length or an index not below a count of at least 1 is refused', () => {
  for (const p of [{ index: 0, count: 1 }, { index: 3, count: 4 }, { index: 65534, count: 65535 }]) {
    assert.deepEqual(decodeFleetPosition(encodeFleetPosition(p)), p);
  }
  for (const p of [{ index: 1, count: 1 }, { index: 0, count: 0 }, { index: -1, count: 2 }, { index: 0, count: 65536 }, { index: 0.5, count: 2 }]) {
    assert.throws(() => encodeFleetPosition(p), FleetWireError, JSON.stringify(p));
  }
  const bytes = (index: number, count: number) => new Uint8Array([index & 0xff, index >> 8, count & 0xff, count >> 8]);
  assert.throws(() => decodeFleetPosition(bytes(2, 2)), FleetWireError);
  assert.throws(() => decodeFleetPosition(bytes(0, 0)), FleetWireError);
  assert.throws(() => decodeFleetPosition(new Uint8Array(5)), FleetWireError);
  assert.throws(() => decodeFleetPosition(new Uint8Array(3)), FleetWireError);
  const s: RouterState = { ...state([replica(R0)]), sections: [{ tag: SECTION_FLEET_POSITION, bytes: bytes(1, 3) }] };
  assert.deepEqual(fleetSectionsOf(decodeState(encodeState(s))).position, { index: 1, count: 3 });
});

test('each gateway is told the sum of the other gateways\' content per replica, not its own; a format-1 report counts none, an expired gateway stops counting', () => {
  let now = 1000;
  const x = new FleetExchange({ hashAddress: hash, now: () => now });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  x.ingest(report(A, 0n, [], [], [[R0, 100], [R1, 7]]));
  x.ingest(report(B, 0n, [], [], [[R0, 1000], ['10.9.9.9:8000', 5]]));
  x.takeChanged();
  assert.deepEqual(answer(x, s, report(A, 0n)).content, [{ replica: 0, writtenUnits: 1000 }], 'a replica the control plane does not know is left out');
  assert.deepEqual(answer(x, s, report(B, 0n)).content, [{ replica: 0, writtenUnits: 100 }, { replica: 1, writtenUnits: 7 }]);
  assert.deepEqual(answer(x, s, report(C, 0n)).content, [{ replica: 0, writtenUnits: 1100 }, { replica: 1, writtenUnits: 7 }]);
  // Counts are totals: a report replaces the gateway's last, and content alone does not move the version.
  x.ingest(report(B, 0n, [], [], [[R0, 1500]]));
  assert.equal(x.takeChanged(), false, 'content rides along with other news');
  assert.deepEqual(answer(x, s, report(A, 0n)).content, [{ replica: 0, writtenUnits: 1500 }]);
  // A report without content (format 1, or nothing written) takes the gateway's out of the sums.
  x.ingest(decodeReport(encodeReport(report(B, 0n, [], [], [[R0, 1500]]), REPORT_FORMAT_WITHOUT_CONTENT)));
  assert.deepEqual(answer(x, s, report(A, 0n)).content, []);
  x.ingest(report(B, 0n, [], [], [[R0, 1500]]));
  now += GATEWAY_EXPIRY_MS + 1;
  x.ingest(report(A, 0n, [], [], [[R0, 100], [R1, 7]]));
  assert.equal(x.takeChanged(), true, 'B expired');
  assert.deepEqual(answer(x, s, report(A, 0n)).content, []);
  // A replica that leaves takes its content along; one that joins starts from what is reported for it.
  const s2 = state([replica(R1)], 8n);
  x.setReplicas(s2.replicas);
  x.ingest(report(A, 0n, [], [], [[R0, 100], [R1, 7]]));
  assert.deepEqual(answer(x, s2, report(C, 0n)).content, [{ replica: 0, writtenUnits: 7 }]);
});

test('the content section round-trips; a wrong length, a replica outside the state or listed twice, or reserved bits are refused', () => {
  const c = [{ replica: 1, writtenUnits: 0xffffffff }, { replica: 0, writtenUnits: 5 }];
  assert.deepEqual(decodeOtherContentSection(encodeOtherContentSection(c, 2), 2), c);
  assert.deepEqual(decodeOtherContentSection(encodeOtherContentSection([], 0), 0), []);
  assert.throws(() => encodeOtherContentSection([{ replica: 2, writtenUnits: 1 }], 2), FleetWireError);
  assert.throws(() => encodeOtherContentSection([{ replica: 0, writtenUnits: 1 }, { replica: 0, writtenUnits: 2 }], 2), FleetWireError);
  assert.throws(() => encodeOtherContentSection(c, 1), FleetWireError);
  const good = encodeOtherContentSection(c, 2);
  const spoilt = (at: number, v: number) => { const b = good.slice(); b[at] = v; return b; };
  for (const [what, b] of [
    ['short', good.slice(0, 3)], ['truncated', good.slice(0, good.length - 1)], ['count past its records', spoilt(0, 3)],
    ['replica outside', spoilt(4, 2)], ['listed twice', spoilt(12, 1)], ['reserved bits', spoilt(6, 1)],
  ] as Array<[string, Uint8Array]>) {
    assert.throws(() => decodeOtherContentSection(b, 2), FleetWireError, what);
  }
  const s: RouterState = { ...state([replica(R0), replica(R1)]), sections: [{ tag: SECTION_OTHER_CONTENT, bytes: good }] };
  assert.deepEqual(fleetSectionsOf(decodeState(encodeState(s))).otherContent, c);
});

test('a lone gateway\'s placements and work move no version (nobody else would hear them); with a second gateway they do, and it gets what came before', () => {
  let now = 1000;
  const x = new FleetExchange({ hashAddress: hash, now: () => now });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  x.ingest(report(A, 0n));
  assert.equal(x.takeChanged(), true, 'A joined');
  for (let i = 1n; i <= 10n; i++) x.ingest(report(A, 0n, [[i, R0, 1]], [[R0, Number(i) * 100, 0]]));
  x.ingest(report(A, 0n, [], []));
  assert.equal(x.takeChanged(), false, 'ten requests of a lone gateway: no version');
  x.ingest(report(B, 0n));
  assert.equal(x.takeChanged(), true, 'B joined');
  assert.deepEqual(answer(x, s, report(B, 0n)).placements.map((p) => p.hash), Array.from({ length: 10 }, (_, i) => BigInt(i + 1)));
  x.ingest(report(A, 0n, [[11n, R1, 1]]));
  assert.equal(x.takeChanged(), true, 'news for B');
  x.ingest(report(A, 0n, [], [[R1, 50, 0]]));
  assert.equal(x.takeChanged(), true, 'work B should hear of');
  now += GATEWAY_EXPIRY_MS + 1;
  x.ingest(report(A, 0n, [[12n, R1, 1]]));
  assert.equal(x.takeChanged(), true, 'B expired');
  x.ingest(report(A, 0n, [[13n, R1, 1]]));
  assert.equal(x.takeChanged(), false, 'alone again');
});

test('news is due PLACEMENT_PUBLISH_MS after the last fleet publish with a placement or a gateway joining or leaving, WORK_PUBLISH_MS with changed work alone', () => {
  let now = 1000;
  const x = new FleetExchange({ hashAddress: hash, now: () => now });
  const s = state([replica(R0), replica(R1)]);
  x.setReplicas(s.replicas);
  assert.ok(PLACEMENT_PUBLISH_MS < WORK_PUBLISH_MS);
  assert.equal(x.newsDelayMs, Infinity, 'no news');
  x.ingest(report(A, 0n));
  assert.equal(x.newsDelayMs, PLACEMENT_PUBLISH_MS, 'A joined');
  x.ingest(report(B, 0n));
  x.takeChanged();
  assert.equal(x.newsDelayMs, Infinity);
  x.ingest(report(A, 0n, [], [[R0, 500, 0]]));
  assert.equal(x.newsDelayMs, WORK_PUBLISH_MS, 'work alone');
  x.ingest(report(A, 0n, [[1n, R0, 1]], [[R0, 900, 0]]));
  assert.equal(x.newsDelayMs, PLACEMENT_PUBLISH_MS, 'a placement besides');
  assert.equal(x.takeChanged(), true);
  assert.equal(x.newsDelayMs, Infinity, 'taken');
  x.ingest(report(A, 0n, [], [[R0, 900, 0]]));
  assert.equal(x.newsDelayMs, Infinity, 'the same work again');
  now += GATEWAY_EXPIRY_MS + 1;
  x.ingest(report(A, 0n, [], [[R0, 900, 0]]));
  x.expire();
  assert.equal(x.newsDelayMs, PLACEMENT_PUBLISH_MS, 'B left');
});
