// The state long poll as an in-process proxy_http_call cluster (what prefix-router start's gateway
// polls): the same answers as GET/POST /v1/state over HTTP, delivered after the call returns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { addressHasher } from '../../control-plane/app.js';
import { decodeState, STATE_CONTENT_TYPE, STATE_VERSION_HEADER } from '../../control-plane/stateWire.js';
import { decodePlacementsSection, encodeReport, REPORT_CONTENT_TYPE, SECTION_PLACEMENTS, type PollReport } from '../../control-plane/fleetWire.js';
import type { HttpCallResponse } from '../../host/httpCaller.js';
import { waitFor } from './support.js';

const TOKEN = 'test-token-0123456789';

async function withCp(fn: (cp: RunningControlPlane) => Promise<void>, opts: Parameters<typeof startControlPlane>[0] = {}) {
  const cp = await startControlPlane({ replicas: ['10.0.0.1:8000', '10.0.0.2:8000'], scrapeIntervalMs: 1000, scrapeTimeoutMs: 500, stalenessMs: 60_000, logger: memoryLogger(), token: TOKEN, ...opts });
  try { await fn(cp); } finally { await cp.close(); }
}

interface Answer { status: number; header(name: string): string | undefined; body: Uint8Array }

/** One call through the cluster handler; fails if the answer comes inside the call. */
function call(cp: RunningControlPlane, method: string, path: string, body: Uint8Array = new Uint8Array(0), contentType?: string): { answer: Promise<Answer>; cancel(): void } {
  let returned = false;
  let handle: { cancel(): void } | null = null;
  const answer = new Promise<Answer>((resolve, reject) => {
    const headers: Array<[string, string]> = [[':method', method], [':path', path], [':authority', 'control-plane']];
    if (contentType) headers.push(['content-type', contentType]);
    handle = cp.app.stateCall({ cluster: 'prefix_router_control_plane', headers, body, trailers: [], timeoutMs: 60_000 }, (res: HttpCallResponse | 'reset') => {
      if (!returned) reject(new Error('answered inside proxy_http_call'));
      if (res === 'reset') return reject(new Error('reset'));
      resolve({ status: Number(res.headers[0]![1]), header: (n) => res.headers.find(([k]) => k === n)?.[1], body: res.body });
    });
    returned = true;
  });
  return { answer, cancel: () => handle!.cancel() };
}

const json = (a: Answer) => JSON.parse(new TextDecoder().decode(a.body)) as { error: string; field?: string };

test('in process: 200 at once when the version differs, the bytes HTTP serves, with content type and version header', async () => {
  await withCp(async (cp) => {
    const a = await call(cp, 'GET', '/v1/state?after=0&waitMs=5000').answer;
    assert.equal(a.status, 200);
    assert.equal(a.header('content-type'), STATE_CONTENT_TYPE);
    assert.equal(a.header(STATE_VERSION_HEADER), cp.state().version.toString());
    assert.equal(a.header('content-length'), String(a.body.length));
    const overHttp = new Uint8Array(await (await fetch(`${cp.url}/v1/state?after=0`)).arrayBuffer());
    assert.deepEqual(a.body, overHttp);
    assert.deepEqual(decodeState(a.body).replicas.map((r) => r.address), ['10.0.0.1:8000', '10.0.0.2:8000']);
  });
});

test('in process: held until a change, then 200; 304 after waitMs; a cancelled poll stops waiting and hears nothing', async () => {
  await withCp(async (cp) => {
    const v = cp.state().version.toString();
    const held = call(cp, 'GET', `/v1/state?after=${v}&waitMs=20000`);
    await waitFor('poll waiting', () => cp.app.store.waiting === 1);
    await cp.setWeights({ profile: 'latency' });
    const a = await held.answer;
    assert.equal(a.status, 200);
    assert.deepEqual(decodeState(a.body).weights, { prefix: 5, queue: 1, kvCache: 1, inflight: 1 });
    const v2 = cp.state().version.toString();
    const quiet = await call(cp, 'GET', `/v1/state?after=${v2}&waitMs=30`).answer;
    assert.equal(quiet.status, 304);
    assert.equal(quiet.header(STATE_VERSION_HEADER), v2);
    assert.equal(quiet.body.length, 0);
    let heard = false;
    const gone = call(cp, 'GET', `/v1/state?after=${v2}&waitMs=20000`);
    gone.answer.then(() => { heard = true; }, () => { heard = true; });
    await waitFor('poll waiting', () => cp.app.store.waiting === 1);
    gone.cancel();
    assert.equal(cp.app.store.waiting, 0);
    await cp.setWeights({ profile: 'throughput' });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(heard, false);
    const metrics = await (await fetch(`${cp.url}/metrics`)).text();
    assert.match(metrics, /prefix_router_cp_state_deliveries_total\{status="200"\} [1-9]/);
    assert.match(metrics, /prefix_router_cp_state_deliveries_total\{status="304"\} [1-9]/);
  });
});

test('in process: what HTTP refuses is refused alike (400 naming the parameter, 405, 415, a bad report, 404 elsewhere)', async () => {
  await withCp(async (cp) => {
    for (const [q, field] of [['after=-1', 'after'], ['after=abc', 'after'], ['after=1&waitMs=x', 'waitMs']]) {
      const a = await call(cp, 'GET', `/v1/state?${q}`).answer;
      assert.equal(a.status, 400, q);
      assert.equal(json(a).field, field);
    }
    const put = await call(cp, 'PUT', '/v1/state').answer;
    assert.equal(put.status, 405);
    assert.equal(put.header('allow'), 'GET, POST');
    const putOverHttp = await fetch(`${cp.url}/v1/state`, { method: 'PUT' });
    assert.equal(new TextDecoder().decode(put.body), await putOverHttp.text());
    assert.equal((await call(cp, 'POST', '/v1/state', new Uint8Array([120]), 'text/plain').answer).status, 415);
    const bad = await call(cp, 'POST', '/v1/state', new Uint8Array(40), REPORT_CONTENT_TYPE).answer;
    assert.equal(bad.status, 400);
    assert.match(json(bad).error, /fleet report rejected: bad report magic/);
    assert.equal((await call(cp, 'GET', '/v1/replicas').answer).status, 404);
  });
});

test('in process: a placement one gateway reports reaches another gateway\'s held poll, with its sections', async () => {
  await withCp(async (cp) => {
    const hash = await addressHasher();
    const report = (r: PollReport) => encodeReport(r);
    const before = cp.state().version.toString();
    assert.equal((await call(cp, 'POST', '/v1/state?after=0&waitMs=0', report({ gatewayId: 2n, placementsSeen: 0n, work: [], content: [], placements: [] }), REPORT_CONTENT_TYPE).answer).status, 200);
    await waitFor('B\'s join published', () => cp.state().version.toString() !== before);
    const v = cp.state().version.toString();
    const held = call(cp, 'POST', `/v1/state?after=${v}&waitMs=10000`, report({ gatewayId: 2n, placementsSeen: 0n, work: [], content: [], placements: [] }), REPORT_CONTENT_TYPE);
    await waitFor('B waiting', () => cp.app.store.waiting === 1);
    const placed = { gatewayId: 1n, placementsSeen: 0n, work: [], content: [], placements: [{ hash: 42n, replica: hash('10.0.0.2:8000'), depth: 3 }] };
    assert.equal((await call(cp, 'POST', '/v1/state?after=0&waitMs=0', report(placed), REPORT_CONTENT_TYPE).answer).status, 200);
    const b = await held.answer;
    assert.equal(b.status, 200);
    const s = decodeState(b.body);
    const sec = decodePlacementsSection(s.sections!.find((x) => x.tag === SECTION_PLACEMENTS)!.bytes, s.replicas.length);
    assert.deepEqual(sec.placements, [{ hash: 42n, replica: 1, depth: 3 }]);
  });
});
