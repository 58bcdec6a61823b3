// Cross-VM state (shared data, queues), metrics, HTTP callouts, ticks in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock, SharedDataStore, WasmResult } from '../../host/index.js';
import { REQ, header, probeHost, until } from './support.js';

function probe(host: Awaited<ReturnType<typeof probeHost>>['host'], worker: number, cmd: string, name: string): string | undefined {
  const s = host.newStream({ worker });
  s.requestHeaders([...REQ, ['x-probe', cmd]], true);
  const v = header(s.requestHeaderList(), name);
  s.complete();
  return v;
}

test('shared data across 2 workers: NOT_FOUND, cas 0 unconditional, CAS_MISMATCH, one counter for every write', async () => {
  const { host } = await probeHost({ workers: 2 });
  try {
    assert.equal(probe(host, 0, 'sget=k', 'x-sget'), `status ${WasmResult.NotFound}`);
    assert.equal(probe(host, 0, 'sset=k:v1:0', 'x-sset'), '0');
    assert.equal(probe(host, 1, 'sget=k', 'x-sget'), 'v1 cas=1');
    assert.equal(probe(host, 1, 'sset=k:v2:7', 'x-sset'), String(WasmResult.CasMismatch));
    assert.equal(probe(host, 1, 'sset=k:v2:1', 'x-sset'), '0');
    assert.equal(probe(host, 0, 'sset=k:v3:1', 'x-sset'), String(WasmResult.CasMismatch));
    assert.equal(probe(host, 0, 'sset=other:x:0', 'x-sset'), '0');
    assert.equal(probe(host, 0, 'sget=k', 'x-sget'), 'v2 cas=2');
    assert.equal(probe(host, 0, 'sget=other', 'x-sget'), 'x cas=3');
  } finally {
    await host.close();
  }
});

test('the CAS counter skips 0 when it wraps; a missing key with a non-zero cas is simply written', () => {
  const store = new SharedDataStore();
  (store as unknown as { cas: number }).cas = 0xffffffff;
  assert.equal(store.set('vm', 'a', new Uint8Array([1]), 0), WasmResult.Ok);
  assert.equal(store.get('vm', 'a')!.cas, 0xffffffff);
  assert.equal(store.set('vm', 'a', new Uint8Array([2]), 0), WasmResult.Ok);
  assert.equal(store.get('vm', 'a')!.cas, 1);
  assert.equal(store.set('vm', 'b', new Uint8Array([3]), 12345), WasmResult.Ok);
});

test('a process-wide store is shared between hosts; an isolated store is not; data goes with the last VM of a vm_id', async () => {
  const store = new SharedDataStore();
  const a = await probeHost({ workers: 1, sharedData: store });
  const b = await probeHost({ workers: 1, sharedData: store });
  const c = await probeHost({ workers: 1 }); // its own store
  try {
    probe(a.host, 0, 'sset=g:from-a:0', 'x-sset');
    assert.equal(probe(b.host, 0, 'sget=g', 'x-sget'), 'from-a cas=1');
    assert.equal(probe(c.host, 0, 'sget=g', 'x-sget'), `status ${WasmResult.NotFound}`);
    await a.host.close();
    assert.equal(probe(b.host, 0, 'sget=g', 'x-sget'), 'from-a cas=1');
    await b.host.close();
    assert.equal(store.get('prefix_router', 'g'), null);
  } finally {
    await a.host.close();
    await b.host.close();
    await c.host.close();
  }
});

test('shared queues: registered on one VM, enqueued from another, proxy_on_queue_ready on the registering root', async () => {
  const { host, logs } = await probeHost({ workers: 2, pluginConfig: 'queue' });
  try {
    // Both workers registered the same name: one token, delivery goes to the last registrant (worker 1).
    assert.equal(probe(host, 0, 'enqueue=hello', 'x-enqueue'), '0 0');
    await until(() => logs.some((l) => l.message.startsWith('queue ready')), 'queue ready');
    const ready = logs.filter((l) => l.message.startsWith('queue ready'));
    assert.equal(ready.length, 1);
    assert.equal(ready[0].message, 'queue ready 1 0 hello');
    assert.equal(ready[0].worker, 1);
  } finally {
    await host.close();
  }
});

test('metrics: counter/gauge/histogram ids by type, negative counter increment refused, values shared by workers', async () => {
  const { host, logs } = await probeHost({ workers: 2, pluginConfig: 'metrics' });
  try {
    assert.ok(logs.some((l) => l.message === 'metric ids 4 5 6'));
    assert.equal(probe(host, 0, 'metric', 'x-metric'), `1 neg=${WasmResult.BadArgument} hist=${WasmResult.BadArgument}`);
    assert.equal(probe(host, 1, 'metric', 'x-metric'), `2 neg=${WasmResult.BadArgument} hist=${WasmResult.BadArgument}`);
    const m = host.metrics();
    assert.deepEqual(m.get('probe.requests'), { type: 'counter', value: 2 });
    assert.deepEqual(m.get('probe.gauge'), { type: 'gauge', value: -4 });
    assert.deepEqual(m.get('probe.hist'), { type: 'histogram', value: 2, samples: [7, 7] });
  } finally {
    await host.close();
  }
});

test('http call: real request to the cluster, response on the root context with :status; errors as Envoy gives them', async () => {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.host}`);
    if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
    if (req.url === '/reset') {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.writeHead(200, { 'x-upstream': 'yes' }).end('pong');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { host, logs } = await probeHost({ workers: 1, clusters: { cp: base, dead: 'http://127.0.0.1:1' } });
  const responses = () => logs.filter((l) => l.message.startsWith('http response')).map((l) => l.message);
  try {
    assert.equal(probe(host, 0, 'http=cp:/ping:1000', 'x-http'), '0 token=4');
    await until(() => responses().length === 1, 'response');
    // 3 headers: :status, x-upstream, date (connection and transfer-encoding are not part of the response).
    assert.equal(responses()[0], 'http response 1 4 3 4 0 status=200 body=pong get_status=0');
    assert.equal(seen[0], 'GET /ping probe.local');

    assert.equal(probe(host, 0, 'http=nope:/x:1000', 'x-http'), `${WasmResult.BadArgument} token=0`);
    assert.equal(probe(host, 0, 'http=cp:/x:1000:noauth', 'x-http'), `${WasmResult.BadArgument} token=0`);

    // Envoy's async client hands a timeout and a connect failure back as local-reply responses.
    assert.equal(probe(host, 0, 'http=cp:/slow:50', 'x-http'), '0 token=8');
    await until(() => responses().length === 2, 'timeout');
    assert.equal(responses()[1], 'http response 1 8 3 24 0 status=504 body=upstream request timeout get_status=0');
    assert.equal(probe(host, 0, 'http=dead:/x:1000', 'x-http'), '0 token=12');
    await until(() => responses().length === 3, 'connect failure');
    assert.match(responses()[2], /^http response 1 12 3 \d+ 0 status=503 body=upstream connect error or disconnect\/reset before headers/);
    // A reset after the response started is the one failure without headers (nheaders 0, status BrokenConnection).
    assert.equal(probe(host, 0, 'http=cp:/reset:1000', 'x-http'), '0 token=16');
    await until(() => responses().length === 4, 'reset');
    assert.equal(responses()[3], `http response 1 16 0 0 0 status=none body= get_status=${WasmResult.BrokenConnection}`);
  } finally {
    await host.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('ticks in manual (virtual) time: each worker its own period, fired only by advanceTo, clock read by the module', async () => {
  const clock = new ManualClock(1_000_000_000n);
  const { host, logs } = await probeHost({ workers: 2, pluginConfig: 'tick=100', clock });
  try {
    const ticks = () => logs.filter((l) => l.message.startsWith('tick')).map((l) => `${l.worker} ${l.message}`);
    assert.equal(host.nextTickAt(), 1_100_000_000n);
    host.advanceTo(1_099_999_999n);
    assert.deepEqual(ticks(), []);
    host.advanceTo(1_250_000_000n);
    assert.deepEqual(ticks(), ['0 tick 1 1100000000', '1 tick 1 1100000000', '0 tick 1 1200000000', '1 tick 1 1200000000']);
    assert.equal(clock.nowNs(), 1_250_000_000n);
    host.tick(1);
    assert.equal(ticks().at(-1), '1 tick 1 1250000000');
    assert.throws(() => clock.set(0n), /backwards/);
  } finally {
    await host.close();
  }
});

test('wasi fd_write goes to the log (stdout at info); log level filters module logs', async () => {
  const { host, logs } = await probeHost({ workers: 1, pluginConfig: 'stdout', logLevel: 'info' });
  try {
    assert.deepEqual(logs.filter((l) => l.worker === 0).map((l) => `${l.level} ${l.message}`), ['info hello from fd_write']);
    assert.equal(probe(host, 0, 'loglevel', 'x-loglevel'), '2');
  } finally {
    await host.close();
  }
});

test('wasmNs accumulates the time spent inside the module per stream', async () => {
  const { host } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    s.requestHeaders(REQ, true);
    const afterHeaders = s.wasmNs;
    assert.ok(afterHeaders > 0n);
    s.responseHeaders([[':status', '200']], true);
    assert.ok(s.wasmNs > afterHeaders);
    s.complete();
  } finally {
    await host.close();
  }
});
