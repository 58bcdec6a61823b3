// The weights API only takes writes with the right bearer token, refuses oversized and
// malformed bodies, and the token shows nowhere: not in logs (captured), not in error
// answers, not through the state endpoint, /v1/replicas or any other read endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { startReplicas } from '../../simulator/server.js';
import { rawRequest } from './support.js';

const TOKEN = 'tok-3f9a1c77e0b24d5a9c1e-SECRET';
/** Wrong tokens are often a typo of the real one: they must not be echoed either. */
const WRONG = ['tok-3f9a1c77e0b24d5a9c1e-SECRE', `${TOKEN}x`, TOKEN.toUpperCase()];

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

function request(url: string, method: string, headers: Record<string, string | number> = {}, body?: Buffer | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function containsSecret(text: string): string | null {
  for (const s of [TOKEN, ...WRONG]) if (text.includes(s)) return s;
  // a prefix long enough to identify the token counts as a leak too
  if (text.includes(TOKEN.slice(0, 16))) return TOKEN.slice(0, 16);
  return null;
}

test('weights writes: missing, wrong, misplaced tokens, oversized and malformed bodies are refused; the token never shows', async () => {
  const sims = await startReplicas({ replicas: 1, basePort: 0, host: '127.0.0.1', timeScale: 50 });
  const logger = memoryLogger();
  const cp = await startControlPlane({ host: '127.0.0.1', replicas: [sims.replicas[0].url], token: TOKEN, logger, logLevel: 'debug' });
  const w = `${cp.url}/v1/weights`;
  const json = { 'content-type': 'application/json' };
  const good = JSON.stringify({ prefix: 2, queue: 1, kvCache: 1, inflight: 1 });
  const replies: Array<[string, Reply]> = [];
  const put = async (what: string, headers: Record<string, string | number>, body: Buffer | string, expect: number) => {
    const r = await request(w, 'PUT', headers, body);
    replies.push([what, r]);
    assert.equal(r.status, expect, `${what}: ${r.body.toString().slice(0, 200)}`);
    return r;
  };
  try {
    // The state version in the answer moves with every scrape: compare the weights alone.
    const weightsNow = async () => {
      const j = JSON.parse((await request(w, 'GET')).body.toString()) as Record<string, unknown>;
      return JSON.stringify([j.prefix, j.queue, j.kvCache, j.inflight, j.profile]);
    };
    const before = await weightsNow();
    await put('no token', json, good, 401);
    for (const t of WRONG) await put(`wrong token ${t}`, { ...json, authorization: `Bearer ${t}` }, good, 401);
    await put('empty bearer', { ...json, authorization: 'Bearer ' }, good, 401);
    await put('token without scheme', { ...json, authorization: TOKEN }, good, 401);
    await put('basic scheme', { ...json, authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }, good, 401);
    await put('token in another header', { ...json, 'x-api-token': TOKEN }, good, 401);
    const q = await request(`${w}?token=${TOKEN}&access_token=${TOKEN}`, 'PUT', json, good);
    replies.push(['token in query', q]);
    assert.equal(q.status, 401);
    // Not authorised: the answer comes before the body, however big it claims to be.
    const early = await new Promise<Reply>((resolve, reject) => {
      const req = http.request(w, { method: 'PUT', headers: { ...json, 'content-length': 50 * 1024 * 1024 } }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (d: Buffer) => c.push(d));
        res.on('end', () => { req.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(c) }); });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024, 0x20)); // and never the rest
    });
    replies.push(['no token, huge body', early]);
    assert.equal(early.status, 401);
    assert.equal(await weightsNow(), before, 'weights changed without a valid token');

    const auth = { ...json, authorization: `Bearer ${TOKEN}` };
    await put('oversized (declared)', auth, Buffer.alloc(64 * 1024, 0x20), 413);
    // oversized without a declared length: chunked
    const chunked = await new Promise<Reply>((resolve, reject) => {
      const req = http.request(w, { method: 'PUT', headers: auth }, (res) => {
        const c: Buffer[] = [];
        res.on('data', (d: Buffer) => c.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(c) }));
      });
      req.on('error', () => resolve({ status: 413, headers: {}, body: Buffer.alloc(0) })); // the server may close mid-upload after answering
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(8 * 1024, 0x20));
      req.end();
      void reject;
    });
    replies.push(['oversized (chunked)', chunked]);
    assert.equal(chunked.status, 413);
    await put('malformed JSON', auth, `{"prefix": ${TOKEN}`, 400);
    await put('truncated JSON', auth, '{"prefix": 2, "queue"', 400);
    await put('not UTF-8', auth, Buffer.from([0xff, 0xfe, 0x7b, 0x00]), 400);
    await put('array', auth, '[1,2,3]', 400);
    await put('unknown field', auth, JSON.stringify({ prefix: 1, token: TOKEN }), 400);
    await put('negative', auth, JSON.stringify({ prefix: -1 }), 400);
    await put('all zero', auth, JSON.stringify({ prefix: 0, queue: 0, kvCache: 0, inflight: 0 }), 400);
    await put('string weight', auth, JSON.stringify({ prefix: '3' }), 400);
    await put('wrong content type', { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, good, 415);
    await put('deeply nested', auth, '['.repeat(8000) + ']'.repeat(8000), 400);
    assert.equal(await weightsNow(), before, 'a refused write changed the weights');
    await put('right token', auth, good, 200);
    assert.equal(JSON.parse((await request(w, 'GET')).body.toString()).prefix, 2);

    // Raw bytes: a header the parser refuses is a 400 from node, with nothing echoed.
    const raw = await rawRequest(cp.port, `PUT /v1/weights HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${TOKEN}\r\nauthorization: Bearer ${WRONG[0]}\r\ncontent-type: application/json\r\ncontent-length: ${good.length}\r\n\r\n${good}`);
    assert.ok(raw.status === 200 || raw.status === 401 || raw.status === 400, `duplicate authorization: ${raw.status}`);
    assert.equal(containsSecret(raw.raw), null, 'duplicate authorization answer shows a token');

    for (const [what, r] of replies) {
      assert.equal(containsSecret(r.body.toString('latin1')), null, `${what}: the answer body shows a token`);
      assert.equal(containsSecret(JSON.stringify(r.headers)), null, `${what}: the answer headers show a token`);
    }
    // Reads anyone can make show no token.
    for (const path of ['/v1/state', '/v1/replicas', '/v1/weights', '/v1/weights/profiles', '/metrics', '/healthz', '/readyz', '/v1/state?after=0&waitMs=0', '/nope']) {
      const r = await request(`${cp.url}${path}`, 'GET');
      assert.equal(containsSecret(r.body.toString('latin1') + JSON.stringify(r.headers)), null, `${path} shows a token`);
    }
    assert.ok(logger.entries.some((e) => e.msg === 'write refused'), 'refused writes are logged');
    assert.ok(logger.entries.some((e) => e.msg === 'weights changed'), 'the accepted write is logged');
  } finally {
    await cp.close();
    await sims.close();
  }
  const logs = JSON.stringify(logger.entries);
  assert.equal(containsSecret(logs), null, `the logs show a token: ${logs.slice(0, 300)}`);
});

test('without a configured token, writes are refused (403) unless explicitly opened', async () => {
  const logger = memoryLogger();
  const cp = await startControlPlane({ host: '127.0.0.1', replicas: ['http://127.0.0.1:1'], logger });
  try {
    const r = await request(`${cp.url}/v1/weights`, 'PUT', { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, '{"prefix":1}');
    assert.equal(r.status, 403);
    assert.equal(containsSecret(r.body.toString()), null);
  } finally {
    await cp.close();
  }
  assert.equal(containsSecret(JSON.stringify(logger.entries)), null);
});
