// The HTTP API: state long poll, weights (validation, auth, persistence), health.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type RunningControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { decodeState, STATE_CONTENT_TYPE } from '../../control-plane/stateWire.js';
import { addressHasher } from '../../control-plane/app.js';
import { decodePlacementsSection, encodeReport, REPORT_CONTENT_TYPE, SECTION_PLACEMENTS, type PollReport } from '../../control-plane/fleetWire.js';
import { getState, standInReplica, waitFor } from './support.js';

const TOKEN = 'test-token-0123456789';

async function withCp(opts: Parameters<typeof startControlPlane>[0], fn: (cp: RunningControlPlane, log: ReturnType<typeof memoryLogger>) => Promise<void>) {
  const log = memoryLogger();
  const cp = await startControlPlane({ replicas: ['10.0.0.1:8000', '10.0.0.2:8000'], scrapeIntervalMs: 1000, scrapeTimeoutMs: 500, stalenessMs: 60_000, logger: log, ...opts });
  try { await fn(cp, log); } finally { await cp.close(); }
}

function put(cp: RunningControlPlane, body: string | object, headers: Record<string, string> = {}) {
  return fetch(`${cp.url}/v1/weights`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

test('GET /v1/state: 200 at once when the version differs, with content type and version header', async () => {
  await withCp({}, async (cp) => {
    const r = await getState(cp.url, '0', 5000);
    assert.equal(r.status, 200);
    assert.equal(r.contentType, STATE_CONTENT_TYPE);
    assert.equal(r.version, cp.state().version.toString());
    assert.equal(r.state!.version, cp.state().version);
    assert.deepEqual(r.state!.replicas.map((x) => x.address), ['10.0.0.1:8000', '10.0.0.2:8000']);
    const stale = await getState(cp.url, '12345', 5000);
    assert.equal(stale.status, 200, 'any different version, older or unknown, gets the state at once');
  });
});

test('GET /v1/state: held until a change, then 200 with the new state', async () => {
  await withCp({ token: TOKEN }, async (cp) => {
    const v = cp.state().version.toString();
    let answered = false;
    const poll = getState(cp.url, v, 20_000).then((r) => { answered = true; return r; });
    await waitFor('poll waiting', () => cp.app.store.waiting === 1);
    assert.equal(answered, false);
    await cp.setWeights({ profile: 'latency' });
    const r = await poll;
    assert.equal(r.status, 200);
    assert.ok(r.state!.version > BigInt(v));
    assert.deepEqual(r.state!.weights, { prefix: 5, queue: 1, kvCache: 1, inflight: 1 });
    assert.equal(cp.app.store.waiting, 0);
  });
});

test('GET /v1/state: 304 with no body after waitMs without a change; waitMs is capped', async () => {
  await withCp({ maxLongPollMs: 300 }, async (cp) => {
    const v = cp.state().version.toString();
    const r = await fetch(`${cp.url}/v1/state?after=${v}&waitMs=50`);
    assert.equal(r.status, 304);
    assert.equal(r.headers.get('x-prefix-router-state-version'), v);
    assert.equal((await r.arrayBuffer()).byteLength, 0);
    // waitMs far above the cap still answers (after the 300 ms cap).
    const capped = await fetch(`${cp.url}/v1/state?after=${v}&waitMs=999999`);
    assert.equal(capped.status, 304);
    const zero = await fetch(`${cp.url}/v1/state?after=${v}`);
    assert.equal(zero.status, 304, 'no waitMs: answers at once');
  });
});

test('GET /v1/state: bad parameters are 400 naming the parameter; a POST body must be a fleet report; other methods 405', async () => {
  await withCp({}, async (cp) => {
    for (const [q, field] of [['after=-1', 'after'], ['after=abc', 'after'], ['after=99999999999999999999', 'after'], ['after=1&waitMs=x', 'waitMs'], ['after=1&waitMs=-5', 'waitMs']]) {
      const r = await fetch(`${cp.url}/v1/state?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(((await r.json()) as { field: string }).field, field);
    }
    const r = await fetch(`${cp.url}/v1/state`, { method: 'PUT' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, POST');
    assert.equal((await fetch(`${cp.url}/v1/state`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })).status, 415);
    const bad = await fetch(`${cp.url}/v1/state`, { method: 'POST', body: new Uint8Array(40), headers: { 'content-type': REPORT_CONTENT_TYPE } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /fleet report rejected: bad report magic/);
  });
});

test('many concurrent long polls are all answered by one change, from one encoding', async () => {
  await withCp({ token: TOKEN }, async (cp) => {
    const v = cp.state().version.toString();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
    const N = 1000;
    const polls = Array.from({ length: N }, () => new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      http.get(`${cp.url}/v1/state?after=${v}&waitMs=60000`, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    }));
    await waitFor('all polls waiting', () => cp.app.store.waiting === N, 30_000);
    const metrics = await (await fetch(`${cp.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`prefix_router_cp_long_polls_waiting ${N}`));
    const bytesBefore = cp.app.store.bytes;
    await cp.setWeights({ queue: 7 });
    const results = await Promise.all(polls);
    assert.ok(results.every((r) => r.status === 200));
    const first = results[0].body;
    assert.ok(results.every((r) => r.body.equals(first)), 'every poller got the same bytes');
    assert.notEqual(cp.app.store.bytes, bytesBefore);
    assert.equal(cp.app.store.bytes, cp.app.store.bytes, 'bytes cached per version');
    assert.equal(cp.app.store.waiting, 0);
    agent.destroy();
  });
});

test('a poll whose client goes away stops waiting', async () => {
  await withCp({}, async (cp) => {
    const v = cp.state().version.toString();
    const ac = new AbortController();
    const p = fetch(`${cp.url}/v1/state?after=${v}&waitMs=60000`, { signal: ac.signal }).catch(() => null);
    await waitFor('waiting', () => cp.app.store.waiting === 1);
    ac.abort();
    await p;
    await waitFor('released', () => cp.app.store.waiting === 0);
  });
});

test('PUT /v1/weights: profiles, partial updates, and the state carries the new weights', async () => {
  await withCp({ token: TOKEN }, async (cp) => {
    let r = await put(cp, { profile: 'throughput' });
    assert.equal(r.status, 200);
    let j = await r.json() as Record<string, unknown>;
    assert.deepEqual([j.prefix, j.queue, j.kvCache, j.inflight, j.profile], [1, 3, 2, 1, 'throughput']);
    assert.deepEqual(cp.state().weights, { prefix: 1, queue: 3, kvCache: 2, inflight: 1 });
    r = await put(cp, { prefix: 2.5 });
    j = await r.json() as Record<string, unknown>;
    assert.deepEqual([j.prefix, j.queue, j.kvCache, j.inflight, j.profile], [2.5, 3, 2, 1, null], 'fields left out keep their value');
    r = await fetch(`${cp.url}/v1/weights`);
    j = await r.json() as Record<string, unknown>;
    assert.equal(j.prefix, 2.5);
    assert.equal(j.version, cp.state().version.toString());
    const profiles = await (await fetch(`${cp.url}/v1/weights/profiles`)).json() as { profiles: Record<string, Record<string, number>> };
    assert.deepEqual(Object.keys(profiles.profiles).sort(), ['capacity', 'default', 'latency', 'throughput']);
    assert.deepEqual([profiles.profiles.capacity.prefix, profiles.profiles.capacity.queue, profiles.profiles.capacity.kvCache], [1, 1, 5]);
  });
});

test('PUT /v1/weights: every bad input is refused with the right status, naming the field, state unchanged', async () => {
  await withCp({ token: TOKEN, maxBodyBytes: 1024 }, async (cp) => {
    const v0 = cp.state().version;
    const w0 = cp.state().weights;
    const cases: Array<[string, string | object, Record<string, string>, number, string | null]> = [
      ['unknown scorer', { prefix: 1, latency: 2 }, {}, 400, 'latency'],
      ['negative', { queue: -1 }, {}, 400, 'queue'],
      ['string number', { kvCache: '2' }, {}, 400, 'kvCache'],
      ['null', { inflight: null }, {}, 400, 'inflight'],
      ['too large for f32', { prefix: 1e300 }, {}, 400, 'prefix'],
      ['above the filter bound', { kvCache: 1.5e6 }, {}, 400, 'kvCache'],
      ['all zero', { prefix: 0, queue: 0, kvCache: 0, inflight: 0 }, {}, 400, '(weights)'],
      // 1e-320 is 0 as the filter's 32-bit float: the filter would refuse every state from then on.
      ['all zero as 32-bit floats', { prefix: 1e-320, queue: 0, kvCache: 0, inflight: 0 }, {}, 400, 'prefix'],
      ['unknown profile', { profile: 'fastest' }, {}, 400, 'profile'],
      ['profile and weights', { profile: 'latency', prefix: 2 }, {}, 400, 'profile'],
      ['empty object', {}, {}, 400, '(body)'],
      ['array', [1, 2], {}, 400, '(body)'],
      ['not JSON', '{"prefix": 3,', {}, 400, '(body)'],
      ['NaN literal', '{"prefix": NaN}', {}, 400, '(body)'],
      ['wrong content type', { prefix: 2 }, { 'content-type': 'text/plain' }, 415, null],
      ['too large', { prefix: 2, pad: 'x'.repeat(2000) }, {}, 413, null],
      ['no token', { prefix: 2 }, { authorization: '' }, 401, null],
      ['wrong token', { prefix: 2 }, { authorization: 'Bearer nope' }, 401, null],
      ['token of the right length but wrong', { prefix: 2 }, { authorization: `Bearer ${'x'.repeat(TOKEN.length)}` }, 401, null],
      ['not bearer', { prefix: 2 }, { authorization: `Basic ${TOKEN}` }, 401, null],
    ];
    for (const [name, body, headers, status, field] of cases) {
      const r = await put(cp, body, headers);
      assert.equal(r.status, status, name);
      const j = await r.json() as { error: string; field?: string };
      assert.equal(typeof j.error, 'string', name);
      if (field) assert.equal(j.field, field, name);
      assert.ok(!JSON.stringify(j).includes(TOKEN), 'the token is never echoed');
      assert.equal(cp.state().version, v0, `${name}: state unchanged`);
      assert.deepEqual(cp.state().weights, w0);
    }
    const r = await fetch(`${cp.url}/v1/weights`, { method: 'DELETE' });
    assert.equal(r.status, 405);
  });
});

test('401 carries WWW-Authenticate and the token never appears in logs', async () => {
  await withCp({ token: TOKEN }, async (cp, log) => {
    const r = await put(cp, { prefix: 2 }, { authorization: 'Bearer wrong-secret-guess' });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.ok((await put(cp, { prefix: 2 })).ok);
    const all = JSON.stringify(log.entries);
    assert.ok(!all.includes(TOKEN) && !all.includes('wrong-secret-guess'));
    assert.ok(log.entries.some((e) => e.msg === 'write refused' && e.reason === 'wrong token'));
  });
});

test('without a token writes are refused (403) unless unauthenticated writes are allowed (and logged)', async () => {
  await withCp({}, async (cp, log) => {
    const r = await put(cp, { prefix: 2 }, { authorization: '' });
    assert.equal(r.status, 403);
    assert.match(((await r.json()) as { error: string }).error, /no API token/);
    assert.ok(log.entries.some((e) => String(e.msg).includes('weight changes are refused')));
  });
  await withCp({ allowUnauthenticatedWrites: true }, async (cp, log) => {
    const r = await put(cp, { prefix: 2 }, { authorization: '' });
    assert.equal(r.status, 200);
    assert.ok(log.entries.some((e) => e.level === 'warn' && String(e.msg).includes('ANYONE')));
  });
});

test('weights survive a restart through the weights file (atomic write); a corrupt file stops start-up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-weights-'));
  const file = join(dir, 'sub', 'weights.json');
  try {
    await withCp({ token: TOKEN, weightsFile: file }, async (cp) => {
      assert.equal((await put(cp, { profile: 'capacity' })).status, 200);
      assert.equal((await put(cp, { inflight: 2 })).status, 200);
    });
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).weights, { prefix: 1, queue: 1, kvCache: 5, inflight: 2 });
    await withCp({ token: TOKEN, weightsFile: file }, async (cp) => {
      assert.deepEqual(cp.state().weights, { prefix: 1, queue: 1, kvCache: 5, inflight: 2 });
      const j = await (await fetch(`${cp.url}/v1/weights`)).json() as Record<string, unknown>;
      assert.equal(j.inflight, 2);
    });
    writeFileSync(file, '{"weights": {"prefix": -1, "queue": 1, "kvCache": 1, "inflight": 1}}');
    await assert.rejects(startControlPlane({ replicas: ['10.0.0.1:8000'], weightsFile: file, logger: memoryLogger() }), /weights\.prefix must be >= 0/);
    // A value the filter cannot hold, persisted before the rule covered it, is refused too.
    writeFileSync(file, '{"weights": {"prefix": 0, "queue": 1e-320, "kvCache": 0, "inflight": 0}}');
    await assert.rejects(startControlPlane({ replicas: ['10.0.0.1:8000'], weightsFile: file, logger: memoryLogger() }), (e: Error) => e.message.includes(file) && /weights\.queue \(1e-320\) is 0 as a 32-bit float/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed save leaves the weights unchanged (500)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-weights-'));
  try {
    await withCp({ token: TOKEN, weightsFile: join(dir, 'sub', 'weights.json') }, async (cp) => {
      // The weights file's directory turns into a file: every save fails.
      writeFileSync(join(dir, 'sub'), 'x');
      const v = cp.state().version;
      const r = await put(cp, { prefix: 9 });
      assert.equal(r.status, 500);
      assert.match(((await r.json()) as { error: string }).error, /weights unchanged/);
      assert.equal(cp.state().version, v);
      assert.equal(cp.state().weights.prefix, 3);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('healthz, readyz (explains), metrics, 404', async () => {
  const replica = await standInReplica();
  try {
    await withCp({ replicas: [replica.address], scrapeIntervalMs: 20, token: TOKEN }, async (cp) => {
      assert.equal((await fetch(`${cp.url}/healthz`)).status, 200);
      await waitFor('scraped', () => cp.state().replicas[0].metricsKnown);
      await waitFor('ready', async () => (await fetch(`${cp.url}/readyz`)).status === 200);
      await cp.setWeights({ profile: 'latency' });
      const m = await (await fetch(`${cp.url}/metrics`)).text();
      for (const name of ['prefix_router_cp_scrape_duration_seconds_bucket', 'prefix_router_cp_state_version', 'prefix_router_cp_state_deliveries_total', 'prefix_router_cp_long_polls_waiting', 'prefix_router_cp_weight_changes_total 1', 'prefix_router_cp_replicas{state="ready"} 1']) {
        assert.ok(m.includes(name), `${name} in\n${m.split('\n').filter((l) => l.startsWith('prefix_router_cp_') && !l.includes('_bucket')).join('\n')}`);
      }
      const nf = await fetch(`${cp.url}/nope`);
      assert.equal(nf.status, 404);
    });
  } finally {
    await replica.close();
  }
  await withCp({ replicas: ['127.0.0.1:1'], stalenessMs: 200, scrapeTimeoutMs: 100, scrapeIntervalMs: 20 }, async (cp) => {
    await waitFor('not ready', async () => (await fetch(`${cp.url}/readyz`)).status === 503);
    const j = await (await fetch(`${cp.url}/readyz`)).json() as { ready: boolean; reason: string };
    assert.equal(j.ready, false);
    assert.match(j.reason, /none of 1 replicas is ready/);
  });
});

test('reads never write: GETs leave the version and weights alone', async () => {
  await withCp({ token: TOKEN }, async (cp) => {
    const v = cp.state().version;
    for (const p of ['/v1/state?after=0', '/v1/replicas', '/v1/weights', '/v1/weights/profiles', '/healthz', '/readyz', '/metrics']) {
      await (await fetch(cp.url + p)).arrayBuffer();
    }
    assert.equal(cp.state().version, v);
  });
});

test('POST /v1/state: a placement one gateway reports reaches another gateway\'s held poll within the fleet publish period', async () => {
  await withCp({}, async (cp) => {
    const hash = await addressHasher();
    const post = async (r: PollReport, after: string, waitMs: number) => {
      const res = await fetch(`${cp.url}/v1/state?after=${after}&waitMs=${waitMs}`, { method: 'POST', body: Buffer.from(encodeReport(r)), headers: { 'content-type': REPORT_CONTENT_TYPE } });
      return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
    };
    // Gateway B joins first: a join moves every gateway's position, so the version moves at the next publish.
    const before = cp.state().version.toString();
    assert.equal((await post({ gatewayId: 2n, placementsSeen: 0n, work: [], content: [], placements: [] }, '0', 0)).status, 200);
    await waitFor('B\'s join published', () => cp.state().version.toString() !== before);
    const v = cp.state().version.toString();
    // Gateway B's poll is held: nothing changed for it since.
    const held = post({ gatewayId: 2n, placementsSeen: 0n, work: [], content: [], placements: [] }, v, 10_000);
    await waitFor('B waiting', () => cp.app.store.waiting === 1);
    const a = await post({ gatewayId: 1n, placementsSeen: 0n, work: [], content: [], placements: [{ hash: 42n, replica: hash('10.0.0.2:8000'), depth: 3 }] }, '0', 0);
    assert.equal(a.status, 200);
    const b = await held;
    assert.equal(b.status, 200);
    const s = decodeState(b.bytes);
    const sec = decodePlacementsSection(s.sections!.find((x) => x.tag === SECTION_PLACEMENTS)!.bytes, s.replicas.length);
    assert.deepEqual(sec.placements, [{ hash: 42n, replica: 1, depth: 3 }]);
    // An old filter's GET still gets format 1.
    const old = await getState(cp.url, '0', 0);
    assert.equal(old.status, 200);
    assert.equal(old.state!.sections, undefined);
  });
});

test('POST /v1/state: many reports with news inside one fleet publish period make one version', async () => {
  await withCp({}, async (cp) => {
    const hash = await addressHasher();
    // Through the in-process cluster: the reports are all taken in within one turn of the event loop.
    const post = (r: PollReport) => new Promise<void>((resolve) => {
      cp.app.stateCall({ cluster: 'cp', headers: [[':method', 'POST'], [':path', '/v1/state?after=0&waitMs=0'], ['content-type', REPORT_CONTENT_TYPE]], body: encodeReport(r), trailers: [], timeoutMs: 1000 }, () => resolve());
    });
    await post({ gatewayId: 2n, placementsSeen: 0n, work: [], content: [], placements: [] });
    await post({ gatewayId: 1n, placementsSeen: 0n, work: [], content: [], placements: [] });
    const joined = cp.state().version;
    await waitFor('the joins published', () => cp.state().version !== joined);
    await new Promise((r) => setTimeout(r, 50));
    const versions: bigint[] = [];
    cp.app.store.onPublish((s) => versions.push(s.version));
    await Promise.all(Array.from({ length: 10 }, (_, i) => post({ gatewayId: 1n, placementsSeen: 0n, work: [], content: [], placements: [{ hash: BigInt(100 + i), replica: hash('10.0.0.1:8000'), depth: 1 }] })));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(versions.length, 1, `versions ${versions.join(', ')}`);
  });
});
