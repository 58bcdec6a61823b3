import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsConnection, ResponseReader, type FetchResult } from '../../control-plane/metricsClient.js';

/** Feeds `raw` split at every given cut point; returns the final progress. */
function feedSplit(raw: Buffer, cuts: number[], max = 1 << 20) {
  const r = new ResponseReader(max);
  let last = 0;
  let out = r.feed(Buffer.alloc(0));
  for (const c of [...cuts, raw.length]) {
    if (c <= last) continue;
    out = r.feed(raw.subarray(last, c));
    last = c;
    if (out.state !== 'more') return { out, reader: r };
  }
  return { out, reader: r };
}

const body = 'vllm:num_requests_running 3\nvllm:num_requests_waiting 1\n';

test('Content-Length response, split at every byte boundary', () => {
  const raw = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  for (let cut = 0; cut <= raw.length; cut++) {
    const { out } = feedSplit(raw, [cut]);
    assert.equal(out.state, 'done', `cut at ${cut}`);
    if (out.state === 'done') {
      assert.equal(out.status, 200);
      assert.equal(out.body.toString(), body);
      assert.equal(out.keepAlive, true);
    }
  }
});

test('chunked response with extensions and trailers, split at every byte boundary', () => {
  const a = body.slice(0, 10), b = body.slice(10);
  const raw = Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${a.length.toString(16)};ext=1\r\n${a}\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\nX-Trailer: y\r\n\r\n`);
  for (let cut = 0; cut <= raw.length; cut++) {
    const { out } = feedSplit(raw, [cut, cut + 7]);
    assert.equal(out.state, 'done', `cut at ${cut}`);
    if (out.state === 'done') assert.equal(out.body.toString(), body);
  }
});

test('close-delimited body completes at end of connection; HTTP/1.0 and Connection: close are not kept alive', () => {
  const r = new ResponseReader(1 << 20);
  assert.equal(r.feed(Buffer.from(`HTTP/1.0 200 OK\r\n\r\n${body}`)).state, 'more');
  const end = r.end();
  assert.equal(end.state, 'done');
  if (end.state === 'done') { assert.equal(end.body.toString(), body); assert.equal(end.keepAlive, false); }
  const c = new ResponseReader(1 << 20).feed(Buffer.from(`HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok`));
  assert.equal(c.state, 'done');
  if (c.state === 'done') assert.equal(c.keepAlive, false);
});

test('errors: not HTTP, bad length, bad chunk size, oversize body, truncated body', () => {
  assert.equal(new ResponseReader(100).feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')).state, 'error');
  assert.equal(new ResponseReader(100).feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n')).state, 'error');
  assert.equal(new ResponseReader(100).feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')).state, 'error');
  const big = new ResponseReader(10).feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n'));
  assert.equal(big.state, 'error');
  if (big.state === 'error') assert.match(big.error, /larger/);
  const chunkedBig = new ResponseReader(10).feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n01234567890\r\n'));
  assert.equal(chunkedBig.state, 'error');
  const trunc = new ResponseReader(100);
  trunc.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc'));
  assert.equal(trunc.end().state, 'error');
  assert.equal(new ResponseReader(100).feed(Buffer.alloc(20 * 1024, 65)).state, 'error', 'endless headers');
});

function get(c: MetricsConnection): Promise<FetchResult> {
  return new Promise((r) => c.get(r));
}

test('keeps one connection open across requests (node:http server, chunked and sized bodies)', async () => {
  const sockets = new Set<unknown>();
  let n = 0;
  const server = http.createServer((req, res) => {
    sockets.add(req.socket);
    n++;
    if (n % 2) res.end(body); // small body: Content-Length
    else { res.write(body.slice(0, 5)); setImmediate(() => res.end(body.slice(5))); } // chunked
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const c = new MetricsConnection('127.0.0.1', port, '/metrics', `127.0.0.1:${port}`, 1 << 20);
  try {
    for (let i = 0; i < 6; i++) {
      const r = await get(c);
      assert.ok(r.ok, JSON.stringify(r));
      if (r.ok) { assert.equal(r.status, 200); assert.equal(r.body.toString(), body); }
    }
    assert.equal(sockets.size, 1, 'one kept-open connection');
  } finally {
    c.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a kept-open connection the server closed is retried once on a new one; refused connections fail', async () => {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      // Close the idle connection shortly after answering, like a server's keep-alive timeout.
      setTimeout(() => s.end(), 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const c = new MetricsConnection('127.0.0.1', port, '/metrics', 'x', 1 << 20);
  try {
    assert.ok((await get(c)).ok);
    await new Promise((r) => setTimeout(r, 100));
    const second = await get(c);
    assert.ok(second.ok, JSON.stringify(second));
    assert.equal(connections, 2);
  } finally {
    c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
  const refused = new MetricsConnection('127.0.0.1', port, '/metrics', 'x', 1 << 20);
  const r = await get(refused);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.kind, 'connect');
});
