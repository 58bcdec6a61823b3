// A client never chooses the upstream: any x-gateway-destination-endpoint (or the
// filter's own fallback header) a client sends is dropped, whatever its case, count,
// form or place (headers or trailers), in the module and through the embedded gateway
// over real HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, SharedDataStore, type HeaderPairs } from '../../host/index.js';
import { startGateway } from '../../host/gateway.js';
import { startReplicas } from '../../simulator/server.js';
import { countingServer, rawRequest } from './support.js';

const wasm = readFileSync(fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url)));
const REPLICAS = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000'];
const EVIL = ['6.6.6.6:22', '127.0.0.1:9090', '169.254.169.254:80', '[::1]:22'];
const NAMES = ['x-gateway-destination-endpoint', 'X-Gateway-Destination-Endpoint', 'X-GATEWAY-DESTINATION-ENDPOINT', 'x-gAtEwAy-DeStInAtIoN-eNdPoInT'];
const FALLBACK_NAMES = ['x-prefix-router-fallback-endpoint', 'X-Prefix-Router-Fallback-Endpoint'];

/** Every way of naming a destination a client might try, as extra request headers. */
function attempts(): HeaderPairs[] {
  const out: HeaderPairs[] = [];
  for (const name of [...NAMES, ...FALLBACK_NAMES]) {
    for (const evil of EVIL) out.push([[name, evil]]);
    out.push([[name, `${EVIL[0]},${EVIL[1]}`]], [[name, ` ${EVIL[0]} `]], [[name, `${REPLICAS[0]},${EVIL[0]}`]], [[name, '']]);
  }
  out.push(NAMES.map((n, i) => [n, EVIL[i % EVIL.length]] as [string, string])); // every case at once
  out.push([[NAMES[0], EVIL[0]], [NAMES[0], EVIL[1]], [NAMES[0], EVIL[2]]]); // duplicates
  out.push([[NAMES[0], EVIL[0]], [FALLBACK_NAMES[0], EVIL[1]]]);
  return out;
}

function leaked(pairs: HeaderPairs | null): string[] {
  return (pairs ?? []).filter(([k, v]) => /destination|fallback/i.test(k) && !REPLICAS.includes(v)).map(([k, v]) => `${k}: ${v}`);
}

test('the module drops every client-named destination, in headers and trailers, for every kind of request', async () => {
  const host = await ProxyWasmHost.create({ wasm, workers: 2, pluginConfig: JSON.stringify({ replicas: REPLICAS }), sharedData: new SharedDataStore(), logLevel: 'warn' });
  try {
    const body = new TextEncoder().encode(JSON.stringify({ model: 'm', prompt: 'route me somewhere nice' }));
    const kinds = [
      { method: 'POST', path: '/v1/completions', body, trailers: false },
      { method: 'POST', path: '/v1/chat/completions', body: new TextEncoder().encode('{"messages":[{"role":"user","content":"hi"}]}'), trailers: true },
      { method: 'GET', path: '/v1/models', body: null, trailers: false },
      { method: 'POST', path: '/v1/embeddings', body, trailers: false },
      { method: 'POST', path: '/v1/completions', body: new Uint8Array(2 * 1024 * 1024).fill(0x61), trailers: false }, // past maxBodyBytes: routed at headers
    ];
    let n = 0;
    for (const extra of attempts()) {
      for (const k of kinds) {
        for (const inTrailers of k.trailers ? [false, true] : [false]) {
          const s = host.newStream({ worker: n++ % 2 });
          const headers: HeaderPairs = [[':method', k.method], [':path', k.path], [':authority', 'gw'], [':scheme', 'http']];
          if (k.body) headers.push(['content-length', String(k.body.length)]);
          if (!inTrailers) headers.push(...extra);
          s.requestHeaders(headers, !k.body);
          if (k.body) s.requestBody(k.body, !inTrailers);
          if (inTrailers) s.requestTrailers(extra);
          const where = `${k.method} ${k.path} ${inTrailers ? 'trailers' : 'headers'} ${JSON.stringify(extra)}`;
          assert.equal(s.localResponse, null, where);
          assert.ok(s.continued, where);
          const up = s.requestHeaderList();
          const dest = up.filter(([h]) => h === 'x-gateway-destination-endpoint').map(([, v]) => v);
          assert.equal(dest.length, 1, where);
          assert.ok(REPLICAS.includes(dest[0]), `${where} -> ${dest[0]}`);
          assert.deepEqual(leaked(up), [], where);
          assert.deepEqual(leaked(s.requestTrailerList()), [], where);
          s.complete();
        }
      }
    }
    assert.equal(host.traps, 0);
  } finally {
    await host.close();
  }
});

test('through the embedded gateway over real HTTP, no request reaches a client-named host', async () => {
  const sims = await startReplicas({ replicas: 2, basePort: 0, host: '127.0.0.1', timeScale: 100 });
  const evil = await countingServer();
  const replicaAddrs = sims.replicas.map((r) => `${r.host}:${r.port}`);
  const host = await ProxyWasmHost.create({ wasm, workers: 2, pluginConfig: JSON.stringify({ replicas: replicaAddrs, debugHeaders: true }), sharedData: new SharedDataStore(), logLevel: 'warn' });
  const gw = await startGateway({ host, upstreamTimeoutMs: 10_000 });
  try {
    const body = JSON.stringify({ model: 'Qwen/Qwen2.5-3B-Instruct', prompt: 'hello from a hostile client', max_tokens: 2 });
    const e = evil.address;
    const head = (extra: string, path = '/v1/completions', method = 'POST') => `${method} ${path} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n${extra}`;
    const requests: Array<[string, string]> = [
      ['plain header', head(`x-gateway-destination-endpoint: ${e}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)],
      ['upper case', head(`X-GATEWAY-DESTINATION-ENDPOINT: ${e}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)],
      ['duplicates, mixed case', head(`X-Gateway-Destination-Endpoint: ${e}\r\nx-gateway-destination-endpoint: ${e}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)],
      ['comma list', head(`x-gateway-destination-endpoint: ${e},${e}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)],
      ['fallback header', head(`x-prefix-router-fallback-endpoint: ${e}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`)],
      ['in trailers', head(`content-type: application/json\r\ntransfer-encoding: chunked\r\ntrailer: x-gateway-destination-endpoint\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\nx-gateway-destination-endpoint: ${e}\r\n\r\n`)],
      ['header and trailer, chunked', head(`x-gateway-destination-endpoint: ${e}\r\ntransfer-encoding: chunked\r\n\r\n5\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\nX-Gateway-Destination-Endpoint: ${e}\r\n\r\n`)],
      ['no body', head(`x-gateway-destination-endpoint: ${e}\r\n\r\n`, '/v1/models', 'GET')],
      ['other path', head(`x-gateway-destination-endpoint: ${e}\r\ncontent-length: 2\r\n\r\n{}`, '/v1/embeddings')],
      ['not JSON', head(`x-gateway-destination-endpoint: ${e}\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\n\xff\xfe\x00{"`)],
    ];
    for (const [what, req] of requests) {
      const res = await rawRequest(gw.port, Buffer.from(req, 'latin1'));
      const servedBy = res.headers.find(([k]) => k === 'x-prefix-router-endpoint')?.[1];
      assert.ok(servedBy && replicaAddrs.includes(servedBy), `${what}: served by ${servedBy} (status ${res.status} ${res.body.slice(0, 100)})`);
      assert.ok(res.headers.some(([k]) => k === 'x-simulator-replica'), `${what}: answered by a simulated replica`);
      assert.ok(!res.body.includes('attacker target reached'), what);
    }
    assert.equal(evil.hits, 0, 'the client-named host was reached');
    assert.equal(host.traps, 0);
  } finally {
    await gw.close();
    await host.close();
    await evil.close();
    await sims.close();
  }
});

test('a retry after a failed connection goes to the filter\'s runner-up, never to a client-named fallback', async () => {
  const sims = await startReplicas({ replicas: 1, basePort: 0, host: '127.0.0.1', timeScale: 100 });
  const evil = await countingServer();
  const dead = await countingServer();
  const deadAddr = dead.address;
  await dead.close(); // a replica whose port refuses connections
  const alive = `${sims.replicas[0].host}:${sims.replicas[0].port}`;
  const host = await ProxyWasmHost.create({ wasm, workers: 2, pluginConfig: JSON.stringify({ replicas: [deadAddr, alive], fallbackHeader: true, debugHeaders: true }), sharedData: new SharedDataStore(), logLevel: 'warn' });
  const gw = await startGateway({ host, upstreamTimeoutMs: 10_000 });
  try {
    let chosenDead = 0;
    for (let i = 0; i < 20; i++) {
      const body = JSON.stringify({ model: 'Qwen/Qwen2.5-3B-Instruct', prompt: `retry me ${i} `.repeat(10), max_tokens: 1 });
      const res = await rawRequest(gw.port, `POST /v1/completions HTTP/1.1\r\nhost: gw\r\nconnection: close\r\nx-prefix-router-fallback-endpoint: ${evil.address}\r\nX-Prefix-Router-Fallback-Endpoint: ${evil.address}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      const primary = res.headers.find(([k]) => k === 'x-prefix-router-endpoint')?.[1];
      if (primary === deadAddr) chosenDead++;
      assert.equal(res.status, 200, `request ${i} (filter chose ${primary}): ${res.body.slice(0, 200)}`);
      assert.ok(res.headers.some(([k]) => k === 'x-simulator-replica'), `request ${i} answered by the live replica`);
    }
    assert.ok(chosenDead > 0, 'no request was first sent to the dead replica, so no retry was tried');
    assert.equal(evil.hits, 0, 'a retry went to the client-named fallback');
  } finally {
    await gw.close();
    await host.close();
    await evil.close();
    await sims.close();
  }
});
