// Header maps, bodies and buffering, local responses: as Envoy presents them to a filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePairs, serializePairs } from '../../host/index.js';
import { REQ, header, headersAll, probeHost } from './support.js';

const enc = new TextEncoder();

test('serialized header maps: layout and round trip, malformed input gives no pairs (as cpp-host)', () => {
  const pairs: Array<[string, string]> = [[':path', '/a'], ['x', ''], ['k', 'v\u00e9']];
  const b = serializePairs(pairs);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  assert.equal(dv.getUint32(0, true), 3);
  assert.equal(dv.getUint32(4, true), 5); // ':path'
  assert.equal(dv.getUint32(8, true), 2); // '/a'
  assert.equal(Buffer.from(b.subarray(28, 37)).toString('latin1'), ':path\0/a\0');
  assert.deepEqual(parsePairs(b), pairs);
  assert.deepEqual(parsePairs(b.subarray(0, b.length - 1)), []);
  const trailing = new Uint8Array(b.length + 1);
  trailing.set(b);
  assert.deepEqual(parsePairs(trailing), []);
  assert.deepEqual(parsePairs(new Uint8Array([255, 255, 255, 255])), []);
});

test('the module round-trips the map through get/set_header_map_pairs; size is the byte size of keys and values', async () => {
  const { host } = await probeHost();
  try {
    const s = host.newStream();
    const hs: Array<[string, string]> = [...REQ, ['x-a', '1'], ['x-a', '2'], ['x-probe', 'roundtrip;size']];
    s.requestHeaders(hs, true);
    const out = s.requestHeaderList();
    const bytes = serializePairs(hs).length;
    assert.equal(header(out, 'x-roundtrip'), `${hs.length} ${bytes} 0`);
    const byteSize = [...hs, ['x-roundtrip', header(out, 'x-roundtrip')!]].reduce((n, [k, v]) => n + k.length + v.length, 0);
    assert.equal(header(out, 'x-size'), String(byteSize));
    assert.deepEqual(headersAll(out, 'x-a'), ['1', '2']);
    s.complete();
  } finally {
    await host.close();
  }
});

test('get/add/replace/remove: keys case-insensitive (stored lowercase), duplicates, Envoy first-value get', async () => {
  const { host } = await probeHost();
  try {
    const run = (probe: string, extra: Array<[string, string]> = []) => {
      const s = host.newStream();
      s.requestHeaders([...REQ, ['X-Dup', 'one'], ['x-dup', 'two'], ...extra, ['x-probe', probe]], true);
      const out = s.requestHeaderList();
      s.complete();
      return out;
    };
    // Envoy's get_header_map_value answers the first value of a repeated header.
    assert.equal(header(run('get=X-DUP'), 'x-got'), 'one');
    assert.equal(header(run('get=x-missing'), 'x-got'), 'status 1');
    let out = run('add=X-New:v1;add=x-new:v2');
    assert.deepEqual(headersAll(out, 'x-new'), ['v1', 'v2']);
    assert.ok(!out.some(([k]) => k === 'X-New'));
    out = run('replace=X-DUP:only');
    assert.deepEqual(headersAll(out, 'x-dup'), ['only']);
    out = run('replace=x-fresh:f');
    assert.deepEqual(headersAll(out, 'x-fresh'), ['f']);
    out = run('remove=X-Dup');
    assert.deepEqual(headersAll(out, 'x-dup'), []);
  } finally {
    await host.close();
  }
});

test('StopIteration from headers holds them; body offered with the total buffered size; headers changed during body go upstream with the whole body', async () => {
  const { host, logs } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'body=buffer'], ['content-length', '9']], false), 'stop');
    assert.equal(s.continued, false);
    assert.equal(s.requestBody(enc.encode('abc'), false), 'stop');
    assert.equal(s.requestBody(enc.encode('def'), false), 'stop');
    assert.equal(s.drainRequestData().length, 0);
    assert.equal(s.requestBody(enc.encode('ghi'), true), 'continue');
    assert.equal(s.continued, true);
    const out = s.requestHeaderList();
    assert.equal(header(out, 'x-body'), 'abcdefghi');
    assert.equal(header(out, 'x-body-size'), '9');
    assert.equal(Buffer.from(s.drainRequestData()).toString(), 'abcdefghi');
    const sizes = logs.filter((l) => l.message.startsWith('request_body')).map((l) => l.message);
    assert.deepEqual(sizes, ['request_body 2 3 0', 'request_body 2 6 0', 'request_body 2 9 1']);
    s.complete();
  } finally {
    await host.close();
  }
});

test('buffered body past the buffer limit: 413 Payload Too Large, through the filter response hooks', async () => {
  const { host } = await probeHost({ workers: 1, bufferLimitBytes: 10 });
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'body=buffer']], false);
    assert.equal(s.requestBody(new Uint8Array(6), false), 'stop');
    assert.equal(s.requestBody(new Uint8Array(6), false), 'local');
    assert.equal(s.localResponse!.status, 413);
    assert.equal(Buffer.from(s.localResponse!.body).toString(), 'Payload Too Large');
    assert.equal(s.localResponse!.details, 'request_payload_too_large');
    assert.ok(header(s.localResponse!.headers, 'x-probe-resp'));
    assert.equal(s.requestBody(new Uint8Array(1), true), 'local');
    s.complete();
    // Exactly at the limit is fine.
    const ok = host.newStream();
    ok.requestHeaders([...REQ, ['x-probe', 'body=buffer']], false);
    ok.requestBody(new Uint8Array(4), false);
    assert.equal(ok.requestBody(new Uint8Array(6), true), 'continue');
    ok.complete();
  } finally {
    await host.close();
  }
});

test('allowOnHeadersStopIteration false (Envoy < 1.35 / default): the body is NOT offered until the filter continues', async () => {
  const { host, logs } = await probeHost({ workers: 1, allowOnHeadersStopIteration: false, pluginConfig: 'tick=10' });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'continue-on-tick'], ['content-length', '4']], false), 'stop');
    assert.equal(s.requestBody(enc.encode('wxyz'), true), 'stop');
    assert.equal(logs.filter((l) => l.message.startsWith('request_body')).length, 0, 'body not offered while stopped');
    host.tick(0); // the probe calls proxy_continue_stream from its tick
    assert.equal(s.continued, true);
    assert.deepEqual(logs.filter((l) => l.message.startsWith('request_body')).map((l) => l.message), ['request_body 2 4 1']);
    assert.equal(Buffer.from(s.drainRequestData()).toString(), 'wxyz');
    s.complete();
  } finally {
    await host.close();
  }
});

test('proxy_continue_stream from a later callback releases held headers as modified during the body', async () => {
  const { host } = await probeHost({ workers: 1, pluginConfig: 'tick=10' });
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'body=buffer-hold']], false);
    assert.equal(s.requestBody(enc.encode('hold me'), true), 'stop');
    assert.equal(s.continued, false);
    host.tick(0);
    assert.equal(s.continued, true);
    assert.equal(header(s.requestHeaderList(), 'x-body'), 'hold me');
    assert.equal(Buffer.from(s.drainRequestData()).toString(), 'hold me');
    s.complete();
  } finally {
    await host.close();
  }
});

test('proxy_set_buffer_bytes replaces the body that goes upstream', async () => {
  const { host } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'body=rewrite']], false);
    assert.equal(s.requestBody(enc.encode('original'), true), 'continue');
    assert.equal(Buffer.from(s.drainRequestData()).toString(), 'REWRITTEN');
    s.complete();
  } finally {
    await host.close();
  }
});

test('local response: status, details, body, extra headers; the response hooks see it; nothing goes upstream', async () => {
  const { host, logs } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'local=403']], false), 'local');
    const r = s.localResponse!;
    assert.equal(r.status, 403);
    assert.equal(r.details, 'probe_denied');
    assert.equal(Buffer.from(r.body).toString(), 'denied by probe');
    assert.equal(header(r.headers, 'x-probe-local'), 'yes');
    assert.equal(header(r.headers, 'content-type'), 'text/plain');
    // Envoy sends a filter's local reply through the encoder filters, this one included.
    assert.equal(header(r.headers, 'x-probe-resp'), 'req-map-status 2');
    assert.equal(s.continued, false);
    assert.equal(s.requestBody(new Uint8Array(3), true), 'local');
    assert.equal(logs.filter((l) => l.message.startsWith('request_body')).length, 0);
    s.complete();
  } finally {
    await host.close();
  }
});

test('response hooks: headers added by the filter; request headers are gone for the filter once continued (BAD_ARGUMENT, as Envoy)', async () => {
  const { host } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'add=a:b']], true);
    assert.equal(s.responseHeaders([[':status', '200'], ['content-type', 'text/event-stream']], false), 'continue');
    assert.equal(header(s.responseHeaderList(), 'x-probe-resp'), 'req-map-status 2');
    assert.equal(s.responseBody(enc.encode('data: 1\n\n'), false), 'continue');
    assert.equal(Buffer.from(s.drainResponseData()).toString(), 'data: 1\n\n');
    s.complete();
  } finally {
    await host.close();
  }
});

test('properties: plugin ids, request attributes, given connection attributes (ints as 8-byte LE), unknown -> NOT_FOUND', async () => {
  const { host } = await probeHost({ workers: 1, rootId: 'root_a', vmId: 'vm_a', pluginName: 'plug_a' });
  try {
    const prop = (name: string) => {
      const s = host.newStream({ properties: { 'source.address': '10.9.8.7:4321', 'source.port': 4321n } });
      s.requestHeaders([...REQ, ['x-request-id', 'rid-1'], ['x-probe', `prop=${name}`]], true);
      const v = header(s.requestHeaderList(), 'x-prop');
      s.complete();
      return v;
    };
    assert.equal(prop('plugin_root_id'), 'root_a');
    assert.equal(prop('plugin_vm_id'), 'vm_a');
    assert.equal(prop('plugin_name'), 'plug_a');
    assert.equal(prop('request.path'), '/v1/completions');
    assert.equal(prop('request.method'), 'POST');
    assert.equal(prop('request.id'), 'rid-1');
    assert.equal(prop('request.headers.x-request-id'), 'rid-1');
    assert.equal(prop('source.address'), '10.9.8.7:4321');
    assert.equal(prop('source.port'), '4321');
    assert.equal(prop('no.such.thing'), 'status 1');
  } finally {
    await host.close();
  }
});

test("local response headers as Envoy's sendLocalReply makes them: text/plain only when the filter named no content-type; one content-length", async () => {
  const { host } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'local-json=503']], false), 'local');
    const r = s.localResponse!;
    assert.equal(r.status, 503);
    assert.deepEqual(headersAll(r.headers, 'content-type'), ['application/json']);
    assert.deepEqual(headersAll(r.headers, 'content-length'), [String(r.body.length)]);
    assert.equal(header(r.headers, 'x-probe-local'), 'yes');
    s.complete();
    const plain = host.newStream();
    plain.requestHeaders([...REQ, ['x-probe', 'local=403']], false);
    assert.deepEqual(headersAll(plain.localResponse!.headers, 'content-type'), ['text/plain']);
    plain.complete();
  } finally {
    await host.close();
  }
});

test("the stop flag of a local reply belongs to the hook that sent it (read as it returns, cleared before the reply's own hooks), never to a later hook", async () => {
  const { host } = await probeHost({ workers: 1, pluginConfig: 'tick=10' });
  try {
    // Stream b's hook sends a local reply for stream a and returns Continue: cpp-host's flag is
    // VM-wide and read as b's hook returns, so b is stopped too (before a's reply runs a's hooks).
    const a = host.newStream({ worker: 0 });
    assert.equal(a.requestHeaders([...REQ, ['content-length', '4']], false), 'continue');
    const b = host.newStream({ worker: 0 });
    assert.equal(b.requestHeaders([...REQ, ['x-probe', `local-for=${a.id}`]], true), 'stop');
    assert.equal(a.localResponse?.status, 403);
    assert.equal(header(a.localResponse!.headers, 'x-probe-resp'), 'req-map-status 2', "a's reply passed a's response hook");
    // The flag does not outlive the hook: the next stream's Continue is a Continue.
    const c = host.newStream({ worker: 0 });
    assert.equal(c.requestHeaders(REQ, true), 'continue');
    // A local reply sent where no stream is current (the root context, from a tick) stops nothing later.
    const d = host.newStream({ worker: 0 });
    d.requestHeaders([...REQ, ['x-probe', 'root-local-on-tick']], true);
    host.tick(0);
    const e = host.newStream({ worker: 0 });
    assert.equal(e.requestHeaders(REQ, true), 'continue');
    for (const s of [a, b, c, d, e]) s.complete();
  } finally {
    await host.close();
  }
});
