// Hostile and broken clients through the embedded gateway: aborted uploads, aborted
// streams, slow drips, garbage, oversized headers and bodies. Nothing may be lost: once
// they are gone the filter's in-flight counts (shared data, summed over worker VMs) are
// back to zero, so no replica stays looking busy, and the next request is served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, SharedDataStore } from '../../host/index.js';
import { startGateway } from '../../host/gateway.js';
import { startReplicas } from '../../simulator/server.js';
import { startStack } from '../../cli/start.js';
import { rawRequest } from './support.js';
import { inflightTotal } from '../../plugin/sharedData.js';

const wasm = readFileSync(fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url)));
const MODEL = 'Qwen/Qwen2.5-3B-Instruct';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


function socket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

test('aborted uploads and streams, slow drips, garbage and oversized headers leave no request counted in flight', async () => {
  const sims = await startReplicas({ replicas: 2, basePort: 0, host: '127.0.0.1', timeScale: 10, model: MODEL });
  const replicas = sims.replicas.map((r) => `${r.host}:${r.port}`);
  const store = new SharedDataStore();
  const host = await ProxyWasmHost.create({ wasm, workers: 2, sharedData: store, logLevel: 'warn', pluginConfig: JSON.stringify({ replicas, debugHeaders: true }) });
  const gw = await startGateway({ host, upstreamTimeoutMs: 10_000 });
  const sockets: net.Socket[] = [];
  try {
    const body = JSON.stringify({ model: MODEL, prompt: 'a hostile client says hello '.repeat(20), max_tokens: 400, stream: true });
    // 1. Upload cut short: declared 100000 bytes, sends 100, goes away.
    for (let i = 0; i < 10; i++) {
      const s = await socket(gw.port);
      s.write(`POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n${body.slice(0, 100)}`);
      sockets.push(s);
    }
    // 2. Chunked upload cut short.
    for (let i = 0; i < 10; i++) {
      const s = await socket(gw.port);
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n40\r\n${'x'.repeat(64)}\r\n`);
      sockets.push(s);
    }
    // 3. Streams abandoned after the first bytes of the answer (routed, counted, then gone).
    const streams: http.ClientRequest[] = [];
    const firstBytes = await Promise.all(Array.from({ length: 10 }, () => new Promise<number>((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => resolve(res.statusCode ?? 0));
      });
      streams.push(req);
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
      req.end(body);
    })));
    assert.deepEqual(firstBytes, Array(10).fill(200));
    // 3b. Uploads past maxBodyBytes are routed at the headers (counted), then cut short.
    for (let i = 0; i < 5; i++) {
      const s = await socket(gw.port);
      s.write(`POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n\r\n${body.slice(0, 100)}`);
      sockets.push(s);
    }
    await sleep(100);
    const counted = inflightTotal(store);
    assert.ok(counted >= 10, `the open streams are counted in flight (${counted})`);
    for (const r of streams) r.destroy();
    // 4. Slow drip of a body, a byte at a time, then gone.
    const drip = await socket(gw.port);
    drip.write(`POST /v1/completions HTTP/1.1\r\nhost: gw\r\ncontent-length: ${body.length}\r\n\r\n`);
    for (let i = 0; i < 20; i++) { drip.write(body[i]); await sleep(5); }
    sockets.push(drip);
    // 5. Garbage and oversized headers: refused by the HTTP parser before the filter.
    const garbage = await rawRequest(gw.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    assert.equal(garbage.status, 400);
    const bigHeader = await rawRequest(gw.port, `GET /v1/models HTTP/1.1\r\nhost: gw\r\nconnection: close\r\nx-big: ${'a'.repeat(200_000)}\r\n\r\n`).catch(() => ({ status: 431 }));
    assert.ok(bigHeader.status === 431 || bigHeader.status === 400, `oversized header: ${bigHeader.status}`);
    // Requests 1, 2 and 4 are still open (held by the filter or upstream): they may be counted now.
    for (const s of sockets) s.destroy();
    // Every abandoned exchange ends; then nothing may remain counted.
    const deadline = Date.now() + 10_000;
    while (inflightTotal(store) !== 0 && Date.now() < deadline) await sleep(20);
    assert.equal(inflightTotal(store), 0, 'requests of vanished clients are still counted in flight');
    // And the gateway still serves.
    const ok = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'still there?', max_tokens: 2 }) });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    assert.equal(host.traps, 0);
  } finally {
    for (const s of sockets) s.destroy();
    await gw.close();
    await host.close();
    await sims.close();
  }
});

test('npm start: a chunked prompt larger than maxBodyBytes is routed on load alone (README), not refused', async () => {
  const stack = await startStack({ port: 0, adminPort: 0, controlPlanePort: 0, simulatorBasePort: 0, timeScale: 50, replicasCount: 2, logLevel: 'error' });
  try {
    assert.ok(stack.ready, 'the stack did not become routable');
    const prompt = 'a very long prompt '.repeat(80_000); // 1.5 MB, past maxBodyBytes (1 MiB)
    const body = Buffer.from(JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }));
    const u = new URL(stack.gatewayUrl);
    const res = await new Promise<{ status: number; endpoint: string | undefined; replica: string | undefined }>((resolve, reject) => {
      // No content-length: the filter cannot know the size until it has buffered past its limit.
      const req = http.request({ host: u.hostname, port: u.port, path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (r) => {
        r.resume();
        r.on('end', () => resolve({ status: r.statusCode ?? 0, endpoint: r.headers['x-prefix-router-endpoint'] as string | undefined, replica: r.headers['x-simulator-replica'] as string | undefined }));
      });
      req.on('error', reject);
      for (let o = 0; o < body.length; o += 16384) req.write(body.subarray(o, o + 16384));
      req.end();
    });
    // The proxy does not refuse it (no 413): the filter routes it and the replica answers. The
    // simulated replica, like vLLM, may then reject a prompt longer than its context (400).
    assert.notEqual(res.status, 413, 'refused by the proxy');
    assert.ok(res.endpoint, 'routed to a replica');
    assert.ok(res.replica, 'answered by the replica');
  } finally {
    await stack.close();
  }
});
