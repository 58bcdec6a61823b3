// Envoy before 1.35 (or without allow_on_headers_stop_iteration) turns the
// filter's StopIteration on request headers into StopAll and never delivers
// the body. The filter must not hang such requests: it routes them on load
// alone from its tick, and after a few stalls stops waiting for bodies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Stream } from '../../host/index.js';
import { REPLICAS, completion, startHost, text } from './support.js';

test('without body delivery, paused requests are released on load alone and the filter stops pausing', async () => {
  const { host, logs } = await startHost({ replicas: REPLICAS }, { allowOnHeadersStopIteration: false });
  try {
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const s = host.newStream({ worker: 0 });
      const body = new TextEncoder().encode(completion(text(i, 500)));
      s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-length', String(body.length)]], false);
      s.requestBody(body, true); // buffered by the host, never shown to the filter
      streams.push(s);
    }
    const endpoint = (s: Stream) => s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')?.[1];
    const deadline = Date.now() + 3000;
    while (streams.some((s) => !s.continued) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const s of streams) {
      assert.ok(s.continued, 'request released');
      assert.ok(REPLICAS.includes(endpoint(s)!), `endpoint ${endpoint(s)}`);
      s.complete();
    }
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(logs.some((l) => String(l.message).includes('allow_on_headers_stop_iteration')), 'warning names the fix');
    // From now on this worker routes at the headers: nothing waits for a tick.
    const s = host.newStream({ worker: 0 });
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-length', '10']], false);
    assert.ok(REPLICAS.includes(endpoint(s)!));
    assert.ok(s.continued);
    s.complete();
  } finally {
    await host.close();
  }
});

test('with body delivery, a slow first chunk is not mistaken for a host that withholds bodies', async () => {
  const { host, logs } = await startHost({ replicas: REPLICAS });
  try {
    const s = host.newStream({ worker: 0 });
    const body = new TextEncoder().encode(completion(text(7, 2000)));
    s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], ['content-length', String(body.length)]], false);
    s.requestBody(body.subarray(0, 100), false);
    await new Promise((r) => setTimeout(r, 400)); // several ticks between chunks
    s.requestBody(body.subarray(100), true);
    const [matchedTotal] = [s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')?.[1]];
    assert.ok(REPLICAS.includes(matchedTotal!));
    s.complete();
    assert.ok(!logs.some((l) => String(l.message).includes('allow_on_headers_stop_iteration')));
  } finally {
    await host.close();
  }
});
