// Admission under overload: requests are held while every replica is past the
// saturation bound, let go on a tick once one has room, refused with 429 and
// retry-after once their wait is over; priorities decide who waits and who is
// shed; nothing is held while a replica has room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, type ProxyWasmHost, type Stream } from '../../host/index.js';
import { completion, startHost, text } from './support.js';
import { EPOCH_NS, StateDriver, replicaState } from './stateDriver.js';

const A = '10.2.0.1:8000', B = '10.2.0.2:8000';
const config = {
  controlPlane: { cluster: 'absent_cluster' },
  admission: { enabled: true, waitMs: 1000, highPriorityWaitMs: 3000, maxHeld: 2, retryAfterS: 2, objectives: { batch: -1, chat: 1 } },
};

async function setup(over: object = {}): Promise<{ host: ProxyWasmHost; state: StateDriver }> {
  const clock = new ManualClock(EPOCH_NS);
  const { host } = await startHost({ ...config, ...over }, { clock, workers: 1 });
  const state = new StateDriver([host], clock);
  return { host, state };
}

/** Opens a request (headers + whole body) and leaves it open. */
function open(host: ProxyWasmHost, prompt: string, headers: Array<[string, string]> = []): Stream {
  const body = new TextEncoder().encode(completion(prompt));
  const s = host.newStream({});
  s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-length', String(body.length)], ...headers], false);
  if (!s.localResponse) s.requestBody(body, true);
  return s;
}

const status = (s: Stream): number | undefined => s.localResponse?.status;
const destination = (s: Stream) => s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')?.[1];
const saturated = (a: string) => replicaState(a, { waiting: 9, kvUsage: 0.5 });

test('every replica saturated: the request is held, then let go on a tick once one has room', async () => {
  const { host, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const s = open(host, text(1, 300));
    assert.equal(s.localResponse, null);
    assert.equal(s.continued, false, 'held, not forwarded');
    assert.equal(destination(s), undefined);
    state.advance(200);
    assert.equal(s.continued, false, 'still held while both are saturated');
    state.publish([saturated(A), replicaState(B, { waiting: 1 })]);
    state.advance(100);
    assert.equal(s.continued, true);
    assert.equal(destination(s), B);
    assert.equal(s.drainRequestData().length > 0, true, 'the held body goes on to the replica');
    s.complete();
    const m = host.metrics();
    assert.equal(m.get('prefix_router.admission_held')?.value, 1);
    assert.equal(m.get('prefix_router.admission_released')?.value, 1);
  } finally {
    await host.close();
  }
});

test('a held request is refused with 429, retry-after and an OpenAI error once its wait is over', async () => {
  const { host, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const s = open(host, text(2, 300));
    state.advance(900);
    assert.equal(s.localResponse, null);
    state.advance(200);
    const r = s.localResponse!;
    assert.equal(r.status, 429);
    assert.equal(r.headers.find(([k]) => k === 'retry-after')?.[1], '2');
    const err = JSON.parse(new TextDecoder().decode(r.body)).error;
    assert.equal(err.type, 'rate_limit_exceeded');
    assert.equal(err.code, 'replicas_saturated');
    assert.equal(host.metrics().get('prefix_router.admission_refused')?.value, 1);
  } finally {
    await host.close();
  }
});

test('never held while a replica has room; nothing is held without admission enabled', async () => {
  const { host, state } = await setup();
  try {
    state.publish([saturated(A), replicaState(B, { waiting: 4, kvUsage: 0.79 })]);
    for (let i = 0; i < 3; i++) {
      const s = open(host, text(10 + i, 300));
      assert.equal(s.continued, true);
      assert.equal(destination(s), B);
      s.complete();
    }
  } finally {
    await host.close();
  }
  const off = await setup({ admission: { enabled: false } });
  try {
    off.state.publish([saturated(A), saturated(B)]);
    const s = open(off.host, text(20, 300));
    assert.equal(s.continued, true);
    assert.ok(destination(s));
  } finally {
    await off.host.close();
  }
});

test('priorities: sheddable refused at once, high priority takes a low one\'s place and waits longest', async () => {
  const { host, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const shed = open(host, text(30, 300), [['x-gateway-inference-objective', 'batch']]);
    assert.equal(shed.localResponse?.status, 429, 'negative priority is shed at once');
    const low1 = open(host, text(31, 300));
    const low2 = open(host, text(32, 300));
    assert.equal(low1.localResponse, null);
    assert.equal(low2.localResponse, null);
    // The list holds 2: a priority-1 request takes the place of the newest priority-0 one.
    const high = open(host, text(33, 300), [['X-Gateway-Inference-Objective', 'chat']]);
    assert.equal(high.localResponse, null);
    assert.equal(status(low2), 429);
    // Another priority-0 request finds the list full of requests of at least its priority.
    const low3 = open(host, text(34, 300));
    assert.equal(low3.localResponse?.status, 429);
    state.advance(1100);
    assert.equal(status(low1), 429, 'priority 0 waits waitMs');
    assert.equal(high.localResponse, null, 'priority 1 waits highPriorityWaitMs');
    // Room for one: the high-priority request goes first.
    state.publish([saturated(A), replicaState(B, { waiting: 4 })]);
    state.advance(100);
    assert.equal(high.continued, true);
    assert.equal(destination(high), B);
  } finally {
    await host.close();
  }
});

test('a client that goes away while held leaves the list', async () => {
  const { host, state } = await setup();
  try {
    state.publish([saturated(A), saturated(B)]);
    const gone = open(host, text(40, 300));
    gone.complete();
    const s = open(host, text(41, 300));
    const t = open(host, text(42, 300));
    assert.equal(s.localResponse, null);
    assert.equal(t.localResponse, null, 'the departed one no longer takes a place');
    state.publish([replicaState(A), replicaState(B)]);
    state.advance(100);
    assert.equal(s.continued && t.continued, true);
  } finally {
    await host.close();
  }
});

test('admission needs shared state; bad settings of the new sections are rejected naming the field', async () => {
  for (const [cfg, field] of [
    [{ replicas: [A], sharedState: false, admission: { enabled: true } }, "'admission' needs 'sharedState'"],
    [{ replicas: [A], admission: { waitMs: -1 } }, "'admission.waitMs'"],
    [{ replicas: [A], admission: { objectives: { x: 1.5 } } }, "'admission.objectives.x'"],
    [{ replicas: [A], admission: { objectiveHeader: 'bad header' } }, "'admission.objectiveHeader'"],
    [{ replicas: [A], saturation: { kvUsage: 2 } }, "'saturation.kvUsage'"],
    [{ replicas: [A], sessionAffinity: { header: '' } }, "'sessionAffinity.header'"],
    [{ replicas: [A], lora: { weight: -1 } }, "'lora.weight'"],
    [{ replicas: [A], admission: { what: 1 } }, "'admission.what'"],
  ] as const) {
    const logs: Array<{ message: string }> = [];
    await assert.rejects(async () => {
      const { host } = await startHost(cfg, { workers: 1, onLog: (e: { message: string }) => logs.push(e) } as never);
      await host.close();
    });
    assert.ok(logs.some((l) => String(l.message).includes(field)), `${JSON.stringify(cfg)}: ${logs.map((l) => l.message).join(' | ')}`);
  }
});

test('accepts the documented admission, session and LoRA settings', async () => {
  const { host } = await startHost({
    replicas: [A],
    saturation: { waiting: 5, kvUsage: 0.8 },
    admission: { enabled: true, maxHeld: 256, waitMs: 1000, highPriorityWaitMs: 4000, retryAfterS: 1, objectiveHeader: 'x-gateway-inference-objective', objectives: { batch: -1, interactive: 1 } },
    sessionAffinity: { enabled: true, header: 'x-session-id', bodyUser: true },
    lora: { weight: 3 },
  }, { workers: 1 });
  await host.close();
});
