// The embedded gateway with the probe filter: the client's x-probe header tells
// the filter what to do (including which ip:port to route to).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, SharedDataStore } from '../../host/index.js';
import { startGateway, parseDestination } from '../../host/gateway.js';
import { parseGatewayArgs, runGatewayCli } from '../../host/main.js';
import { probeHost, until } from '../host/support.js';

interface Upstream {
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

async function upstream(handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (handler) handler(req, res, body);
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echo: body }));
    });
  });
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const dest = (port: number) => `add=x-gateway-destination-endpoint:127.0.0.1:${port}`;

test('proxies to the endpoint the filter chose, with the filter-modified headers and body; response hooks apply', async () => {
  const up = await upstream();
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  const log: Array<{ status: number; endpoint: string | null }> = [];
  try {
    const r = await request(`${gw.url}/v1/completions?x=1`, {
      method: 'POST',
      headers: { 'x-probe': `${dest(up.port)};body=buffer;add=x-extra:1`, 'content-type': 'application/json' },
      body: '{"prompt":"hello"}',
    });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).echo, '{"prompt":"hello"}');
    // Released by the body callback, not by Continue from headers: Envoy keeps the request map reachable (status 0).
    assert.equal(r.headers['x-probe-resp'], 'req-map-status 0');
    const seen = up.requests[0];
    assert.equal(seen.method, 'POST');
    assert.equal(seen.url, '/v1/completions?x=1');
    assert.equal(seen.headers['x-extra'], '1');
    assert.equal(seen.headers['x-body'], '{"prompt":"hello"}', 'a header added during the body callback goes upstream');
    assert.equal(seen.headers['x-gateway-destination-endpoint'], `127.0.0.1:${up.port}`);
    assert.ok(seen.headers['x-request-id']);
    assert.equal(seen.headers.host, `127.0.0.1:${gw.port}`);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
  void log;
});

test('a body the filter rewrote goes upstream with its own length; Expect: 100-continue is answered by the gateway, not forwarded', async () => {
  const up = await upstream();
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const rewritten = await request(`${gw.url}/v1/completions`, {
      method: 'POST',
      headers: { 'x-probe': `${dest(up.port)};body=rewrite`, 'content-type': 'application/json', 'content-length': '18' },
      body: '{"prompt":"hello"}',
    });
    assert.equal(rewritten.status, 200);
    assert.equal(JSON.parse(rewritten.body).echo, 'REWRITTEN');
    assert.equal(up.requests[0].headers['content-length'], '9');
    const expecting = await request(`${gw.url}/v1/completions`, {
      method: 'POST',
      headers: { 'x-probe': dest(up.port), 'content-type': 'application/json', expect: '100-continue' },
      body: '{"prompt":"hello"}',
    });
    assert.equal(expecting.status, 200);
    assert.equal(JSON.parse(expecting.body).echo, '{"prompt":"hello"}');
    assert.equal(up.requests[1].headers.expect, undefined);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('SSE: each upstream chunk reaches the client before the next one is sent (no buffering)', async () => {
  let sendNext: (() => void) | null = null;
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    const next = () => {
      i++;
      if (i > 3) return void res.end('data: [DONE]\n\n');
      res.write(`data: ${i}\n\n`);
      sendNext = next;
    };
    next();
  });
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-probe': dest(up.port) } }, (res) => {
        assert.equal(res.headers['content-type'], 'text/event-stream');
        assert.equal(res.headers['x-probe-resp'], 'req-map-status 2');
        res.on('data', (c: Buffer) => {
          received.push(c.toString());
          // Only once the client holds chunk i does the upstream send chunk i+1.
          const n = sendNext;
          sendNext = null;
          n?.();
        });
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.deepEqual(received.join('').split('\n\n').filter(Boolean), ['data: 1', 'data: 2', 'data: 3', 'data: [DONE]']);
    assert.ok(received.length >= 4, `chunks arrived separately: ${received.length}`);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('the response head reaches the client before the first body byte exists (an SSE stream before its first token)', async () => {
  let sendBody: (() => void) | null = null;
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    sendBody = () => res.end('data: [DONE]\n\n');
  });
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'x-probe': dest(up.port) } }, (res) => {
        // Only once the client holds the head does the upstream send any body.
        assert.equal(res.headers['content-type'], 'text/event-stream');
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve(text));
        until(() => sendBody !== null, 'the upstream request').then(() => sendBody!(), reject);
      });
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(body, 'data: [DONE]\n\n');
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('a response whose body and end came with its head leaves the gateway in one socket write, not one for each', async () => {
  const up = await upstream();
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  // The client shares this process's event loop, so what it reads cannot tell the writes apart: count
  // the writes the gateway hands its client socket (net.Socket's _write and _writev each become one syscall).
  const writes: number[] = [];
  gw.server.on('connection', (socket: net.Socket) => {
    const s = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = s._write.bind(socket);
    const writev = s._writev.bind(socket);
    s._write = (...a) => { writes.push(1); write(...a); };
    s._writev = (chunks, cb) => { writes.push((chunks as unknown[]).length); writev(chunks, cb); };
  });
  try {
    const r = await request(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'x-probe': dest(up.port), connection: 'close' }, body: '{}' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).echo, '{}');
    assert.equal(writes.length, 1, `socket writes (buffers in each): ${JSON.stringify(writes)}`);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('upstream connections are kept alive across requests; a reset after the response head resets the client, one before it is retried', async () => {
  let resetNext: 'before' | 'after' | null = null;
  const up = await upstream((_req, res) => {
    if (resetNext === 'before') {
      resetNext = null;
      res.socket!.resetAndDestroy();
      return;
    }
    if (resetNext === 'after') {
      resetNext = null;
      res.writeHead(200, { 'content-length': '100' }).write('partial');
      setTimeout(() => res.socket!.resetAndDestroy(), 20);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    for (let i = 0; i < 4; i++) assert.equal((await request(`${gw.url}/x`, { headers: { 'x-probe': dest(up.port) } })).body, 'ok');
    assert.equal(up.connections(), 1, 'one upstream connection for four sequential requests');
    resetNext = 'before';
    const retried = await request(`${gw.url}/x`, { headers: { 'x-probe': dest(up.port) } });
    assert.deepEqual([retried.status, retried.body], [200, 'ok']);
    assert.equal(up.requests.length, 6, 'the reset request went again');
    resetNext = 'after';
    // The client sees the head, part of the body, then its connection reset.
    const cut = await new Promise<{ status: number; body: string; complete: boolean }>((resolve) => {
      http.get(`${gw.url}/x`, { headers: { 'x-probe': dest(up.port) } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('error', () => {});
        res.on('close', () => resolve({ status: res.statusCode!, body, complete: res.complete }));
      }).on('error', () => {});
    });
    assert.deepEqual(cut, { status: 200, body: 'partial', complete: false });
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('no destination, or one that is not ip:port: 503 no healthy upstream; dead endpoint: 503 upstream connect error', async () => {
  const { host } = await probeHost();
  const accessLog: Array<{ status: number; details: string }> = [];
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 }, onAccessLog: (e) => accessLog.push(e) });
  try {
    let r = await request(`${gw.url}/x`, {});
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    assert.equal(r.headers['x-probe-resp'], 'req-map-status 2', 'the router reply passes the response hooks');
    r = await request(`${gw.url}/x`, { headers: { 'x-probe': 'add=x-gateway-destination-endpoint:vllm-0:8000' } });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    r = await request(`${gw.url}/x`, { headers: { 'x-probe': 'add=x-gateway-destination-endpoint:127.0.0.1:1' } });
    assert.equal(r.status, 503);
    assert.match(r.body, /^upstream connect error or disconnect\/reset before headers/);
    await until(() => accessLog.length === 3, 'access log');
    assert.deepEqual(accessLog.map((e) => e.details), ['no_healthy_upstream', 'no_healthy_upstream', 'upstream_reset_before_response_started{connection_failure}']);
  } finally {
    await gw.close();
    await host.close();
  }
});

test('local responses from the filter and the 413 of the buffer limit are sent as given', async () => {
  const up = await upstream();
  // StopIteration from headers turns into StopAll here (Envoy's default), so the body is buffered by the
  // host and checked against the limit even when it arrives in one piece.
  const { host } = await probeHost({ bufferLimitBytes: 16, allowOnHeadersStopIteration: false });
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    let r = await request(`${gw.url}/x`, { headers: { 'x-probe': 'local=429' } });
    assert.equal(r.status, 429);
    assert.equal(r.body, 'denied by probe');
    assert.equal(r.headers['x-probe-local'], 'yes');
    r = await request(`${gw.url}/x`, { method: 'POST', headers: { 'x-probe': `${dest(up.port)};body=buffer` }, body: 'x'.repeat(100) });
    assert.equal(r.status, 413);
    assert.equal(r.body, 'Payload Too Large');
    assert.equal(up.requests.length, 0);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('a client that goes away mid-request: the stream still ends (on_done, on_log, on_delete)', async () => {
  let upstreamGotIt: () => void = () => {};
  const reached = new Promise<void>((r) => (upstreamGotIt = r));
  const up = await upstream(() => upstreamGotIt()); // never answers
  const { host, logs } = await probeHost({ workers: 1 });
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const req = http.request(`${gw.url}/x`, { method: 'POST', headers: { 'x-probe': dest(up.port) } });
    req.on('error', () => {});
    req.end('{}');
    await reached;
    req.destroy();
    await until(() => logs.some((l) => l.message === 'delete 2'), 'on_delete of the aborted stream');
    const ends = logs.map((l) => l.message).filter((m) => /^(done|log|delete) 2$/.test(m));
    assert.deepEqual(ends, ['done 2', 'log 2', 'delete 2']);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

test('ORIGINAL_DST destinations: literal ip:port only', () => {
  assert.deepEqual(parseDestination('10.0.0.1:8000'), { host: '10.0.0.1', port: 8000 });
  assert.deepEqual(parseDestination('[fd00::1]:8000'), { host: 'fd00::1', port: 8000 });
  for (const bad of [undefined, '', 'vllm:8000', '10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', '10.0.0.1:80,10.0.0.2:80', '300.0.0.1:80']) {
    assert.equal(parseDestination(bad), null, String(bad));
  }
});

test('gateway CLI: --help, clear errors on bad flags', async () => {
  assert.equal(parseGatewayArgs(['--help']), 'help');
  assert.throws(() => parseGatewayArgs(['--wasm', '/nope.wasm', '--config', '{}']), /--wasm: no file at '\/nope.wasm'/);
  const wasm = new URL('../../package.json', import.meta.url).pathname; // any existing file
  assert.throws(() => parseGatewayArgs(['--wasm', wasm]), /--config is required/);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--workers', 'two']), /--workers must be a whole number >= 1; got 'two'/);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--cluster', 'cp']), /--cluster must be NAME=URL/);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--cluster', 'cp=ftp://x']), /not an http:\/\/ URL/);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--bogus']), /Unknown option '--bogus'/);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', 'missing.json']), /neither inline JSON nor an existing file/);
  const cfg = parseGatewayArgs(['--wasm', wasm, '--config', '{"a":1}', '--cluster', 'cp=http://127.0.0.1:9', '--port', '0', '--log-level', 'warn']);
  assert.ok(cfg !== 'help');
  assert.deepEqual([cfg.pluginConfig, cfg.clusters, cfg.port, cfg.workers, cfg.logLevel, cfg.adminPort], ['{"a":1}', { cp: 'http://127.0.0.1:9' }, 0, 2, 'warn', null]);
  const withAdmin = parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--admin-port', '9901']);
  assert.ok(withAdmin !== 'help' && withAdmin.adminPort === 9901);
  assert.throws(() => parseGatewayArgs(['--wasm', wasm, '--config', '{}', '--admin-port', '70000']), /--admin-port must be 0..65535/);
  const err = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    assert.equal(await runGatewayCli(['--workers', '0', '--config', '{}']), 2);
  } finally {
    process.stderr.write = err;
  }
});

test('a header node refuses to send upstream is answered with a 503, not a crash', async () => {
  const up = await upstream();
  const { host } = await probeHost();
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    // A header name with a space is not an HTTP token: node will not send it.
    const r = await request(`${gw.url}/x`, { headers: { 'x-probe': `${dest(up.port)};add=bad name:v` } });
    assert.equal(r.status, 503);
    assert.match(r.body, /upstream request rejected/);
    assert.equal(up.requests.length, 0);
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});

const REAL_WASM = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));

test("the real filter's 503 for no ready replica carries its own content-type only (application/json), once", { skip: existsSync(REAL_WASM) ? false : 'plugin/prefix-router.wasm is absent: run npm run build:wasm first' }, async () => {
  // A control plane that never answers: the filter has no state, so no ready replica.
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(REAL_WASM), workers: 1, logLevel: 'critical', sharedData: new SharedDataStore(),
    pluginConfig: JSON.stringify({ controlPlane: { cluster: 'prefix_router_control_plane' } }),
    clusters: { prefix_router_control_plane: 'http://127.0.0.1:1' },
  });
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const r = await request(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"hi"}' });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).error.code, 'no_ready_replica');
    const named = (k: string) => r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i].toLowerCase() === k).length;
    assert.equal(named('content-type'), 1);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(named('content-length'), 1);
  } finally {
    await gw.close();
    await host.close();
  }
});

test('the upstream selector is where the gateway chooses the upstream: it may answer later (a promise), a rejection is no healthy upstream', async () => {
  const up = await upstream();
  const { host } = await probeHost();
  const attempts: number[] = [];
  const picker = {
    select: async (headers: Array<[string, string]>, attempt: number) => {
      attempts.push(attempt);
      await new Promise((r) => setTimeout(r, 5));
      if (headers.some(([k, v]) => k === 'x-pick' && v === 'fail')) throw new Error('picker unavailable');
      return { host: '127.0.0.1', port: up.port };
    },
  };
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 }, upstream: picker });
  try {
    // No destination header from the filter: the selector alone decides.
    let r = await request(`${gw.url}/v1/completions`, { method: 'POST', body: '{"prompt":"x"}' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).echo, '{"prompt":"x"}');
    assert.deepEqual(attempts, [0]);
    r = await request(`${gw.url}/x`, { headers: { 'x-pick': 'fail' } });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
  } finally {
    await gw.close();
    await host.close();
    await up.close();
  }
});
