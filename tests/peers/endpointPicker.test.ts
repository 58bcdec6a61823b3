// The gateway's Endpoint Picker Protocol mode against a stand-in picker: a grpc-js ext_proc server
// written here that answers as the inference extension's picker does in FULL_DUPLEX_STREAMED mode
// (nothing until the request body ends, then a headers response with the destination header and
// envoy.lb metadata, then the body streamed back), and two echoing upstreams on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { EXT_PROC_SERVICE, headerValueOf, structStrings, toHeaderMap, type ProcessingRequest, type ProcessingResponse } from '../../host/endpointPicker/protocol.js';
import {
  startPickerGateway, applyHeaderMutation, metadataEndpoints, LB_METADATA_NAMESPACE, SERVED_KEY, type PickerGatewayOptions, type PickerAccessLogEntry,
} from '../../host/endpointPicker/pickerGateway.js';

type Decision =
  | { kind: 'route'; metadata?: string; header?: string; rewriteModel?: string }
  | { kind: 'immediate'; status: number; body: string }
  | { kind: 'silent' };

interface StandIn {
  address: string;
  seen: ProcessingRequest[][];
  decide: (body: Record<string, unknown>) => Decision;
  close(): Promise<void>;
}

async function startStandInPicker(): Promise<StandIn> {
  const server = new grpc.Server();
  const state: StandIn = { address: '', seen: [], decide: () => ({ kind: 'silent' }), close: async () => {} };
  server.addService(EXT_PROC_SERVICE, {
    Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
      const seen: ProcessingRequest[] = [];
      state.seen.push(seen);
      const chunks: Buffer[] = [];
      let headersEnd = false;
      const route = (body: Buffer) => {
        let parsed: Record<string, unknown> = {};
        try { parsed = JSON.parse(body.toString() || '{}'); } catch { /* not JSON: decide on nothing */ }
        const d = state.decide(parsed);
        if (d.kind === 'silent') return;
        if (d.kind === 'immediate') {
          call.write({ immediate_response: { status: { code: d.status }, body: Buffer.from(d.body), details: 'stand-in' } });
          return;
        }
        let out = body;
        if (d.rewriteModel) out = Buffer.from(JSON.stringify({ ...parsed, model: d.rewriteModel }));
        const set = d.header ? [{ header: { key: 'x-gateway-destination-endpoint', raw_value: Buffer.from(d.header) } }] : [];
        call.write({
          request_headers: { response: { header_mutation: { set_headers: [...set, { header: { key: 'content-length', raw_value: Buffer.from(String(out.length)) } }] }, clear_route_cache: true } },
          ...(d.metadata ? { dynamic_metadata: { fields: { 'envoy.lb': { structValue: { fields: { 'x-gateway-destination-endpoint': { stringValue: d.metadata } } } } } } as never } : {}),
        });
        if (!headersEnd) call.write({ request_body: { response: { body_mutation: { streamed_response: { body: out, end_of_stream: true } } } } });
      };
      call.on('data', (m: ProcessingRequest) => {
        seen.push(m);
        if (m.request_headers) {
          headersEnd = m.request_headers.end_of_stream === true;
          if (headersEnd) route(Buffer.alloc(0));
        } else if (m.request_body) {
          chunks.push(Buffer.from(m.request_body.body ?? []));
          if (m.request_body.end_of_stream) route(Buffer.concat(chunks));
        } else if (m.response_headers) {
          call.write({ response_headers: { response: { header_mutation: { set_headers: [{ header: { key: 'x-went-into-resp-headers', raw_value: Buffer.from('true') } }] } } } });
        } else if (m.response_body) {
          call.write({ response_body: { response: { body_mutation: { streamed_response: { body: m.response_body.body ?? Buffer.alloc(0), end_of_stream: m.response_body.end_of_stream === true } } } } });
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  state.address = `127.0.0.1:${port}`;
  state.close = () => new Promise<void>((r) => server.tryShutdown(() => r()));
  return state;
}

interface Upstream { name: string; endpoint: string; server: http.Server }
async function startUpstream(name: string): Promise<Upstream> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ name, method: req.method, path: req.url, body: Buffer.concat(chunks).toString(), headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { name, endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function closedPort(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `127.0.0.1:${port}`;
}

let picker: StandIn;
let a: Upstream;
let b: Upstream;

before(async () => {
  picker = await startStandInPicker();
  a = await startUpstream('a');
  b = await startUpstream('b');
});
after(async () => {
  await picker.close();
  a.server.close();
  b.server.close();
});

async function withGateway<T>(opts: Partial<PickerGatewayOptions>, fn: (url: string, log: PickerAccessLogEntry[]) => Promise<T>): Promise<T> {
  const log: PickerAccessLogEntry[] = [];
  const gw = await startPickerGateway({ picker: picker.address, onAccessLog: (e) => log.push(e), ...opts });
  try {
    return await fn(gw.url, log);
  } finally {
    await gw.close();
  }
}

/** The endpoint the gateway reported as having served the stream's request, with its response headers. */
function servedReport(msgs: ProcessingRequest[]): string[] | null {
  const m = msgs.find((x) => x.response_headers);
  return structStrings(m?.metadata_context?.filter_metadata?.[LB_METADATA_NAMESPACE], SERVED_KEY);
}

async function post(url: string, body: unknown, path = '/v1/completions') {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

test('routes to the endpoint in envoy.lb metadata, with the body the picker streamed back', async () => {
  picker.decide = () => ({ kind: 'route', metadata: b.endpoint, rewriteModel: 'rewritten' });
  picker.seen.length = 0;
  await withGateway({}, async (url, log) => {
    const r = await post(url, { model: 'm', prompt: 'hello' });
    assert.equal(r.status, 200);
    const echoed = JSON.parse(r.text);
    assert.equal(echoed.name, 'b');
    assert.deepEqual(JSON.parse(echoed.body), { model: 'rewritten', prompt: 'hello' });
    assert.equal(echoed.headers['x-gateway-destination-endpoint'], undefined, 'metadata only: no header was set');
    assert.equal(r.headers.get('x-went-into-resp-headers'), 'true', 'the response went through the picker');
    assert.equal(log[0]!.endpoint, b.endpoint);
    assert.equal(log[0]!.details, 'picked');
    assert.ok(log[0]!.pickMs !== null && log[0]!.pickMs >= 0);
  });
  // What the picker saw: headers first with the protocol configuration, body chunks, end_of_stream; then the response.
  const msgs = picker.seen[0]!;
  const first = msgs[0]!;
  assert.ok(first.request_headers);
  assert.equal(first.protocol_config?.request_body_mode, 4, 'FULL_DUPLEX_STREAMED');
  const hs = new Map((first.request_headers!.headers.headers ?? []).map((h) => [h.key, headerValueOf(h)]));
  assert.equal(hs.get(':path'), '/v1/completions');
  assert.equal(hs.get(':method'), 'POST');
  assert.equal(hs.get('content-type'), 'application/json');
  assert.ok(hs.get('x-request-id'));
  const bodyMsgs = msgs.filter((m) => m.request_body);
  assert.ok(bodyMsgs.length >= 1);
  assert.equal(bodyMsgs.at(-1)!.request_body!.end_of_stream, true);
  assert.ok(msgs.some((m) => m.response_headers));
  assert.deepEqual(servedReport(msgs), [b.endpoint], 'the served endpoint, in the response headers\' metadata_context');
  assert.equal(msgs.filter((m) => m.response_body).at(-1)!.response_body!.end_of_stream, true);
});

test('an ordered fallback list: a dead first endpoint moves on to the next', async () => {
  const dead = await closedPort();
  picker.decide = () => ({ kind: 'route', metadata: `${dead},${a.endpoint}` });
  picker.seen.length = 0;
  await withGateway({}, async (url, log) => {
    const r = await post(url, { prompt: 'x' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).name, 'a');
    assert.equal(log[0]!.endpoint, a.endpoint);
  });
  assert.deepEqual(servedReport(picker.seen[0]!), [a.endpoint], 'the picker hears which endpoint of the list answered');
});

test('the destination header alone routes too, and reaches the upstream as the picker set it', async () => {
  picker.decide = () => ({ kind: 'route', header: a.endpoint });
  await withGateway({ processResponse: false }, async (url) => {
    const r = await post(url, { prompt: 'y' });
    assert.equal(JSON.parse(r.text).name, 'a');
    assert.equal(JSON.parse(r.text).headers['x-gateway-destination-endpoint'], a.endpoint);
    assert.equal(r.headers.get('x-went-into-resp-headers'), null, 'response processing off');
  });
});

test('a GET without a body is decided on its headers', async () => {
  picker.decide = () => ({ kind: 'route', metadata: b.endpoint });
  await withGateway({}, async (url) => {
    const r = await fetch(url + '/v1/models');
    assert.equal(r.status, 200);
    const echoed = JSON.parse(await r.text());
    assert.equal(echoed.name, 'b');
    assert.equal(echoed.method, 'GET');
  });
});

test('an ImmediateResponse (429 shed, 503 no endpoint) reaches the client as it is', async () => {
  for (const status of [429, 503]) {
    picker.decide = () => ({ kind: 'immediate', status, body: `shed ${status}` });
    await withGateway({}, async (url, log) => {
      const r = await post(url, { prompt: 'z' });
      assert.equal(r.status, status);
      assert.equal(r.text, `shed ${status}`);
      assert.equal(log[0]!.details, 'immediate_response');
    });
  }
});

test('a decision without any endpoint is a 503', async () => {
  picker.decide = () => ({ kind: 'route' });
  await withGateway({}, async (url) => {
    const r = await post(url, { prompt: 'z' });
    assert.equal(r.status, 503);
    assert.match(r.text, /no healthy upstream/);
  });
});

test('a picker that cannot be reached: FailClose answers 500, FailOpen uses the pool with the original body', async () => {
  const nowhere = await closedPort();
  const log: PickerAccessLogEntry[] = [];
  const closeGw = await startPickerGateway({ picker: nowhere, failureMode: 'FailClose', onAccessLog: (e) => log.push(e) });
  try {
    const r = await post(closeGw.url, { prompt: 'q' });
    assert.equal(r.status, 500);
    assert.match(log[0]!.details, /^ext_proc_error_gRPC_error_/);
  } finally {
    await closeGw.close();
  }
  const openGw = await startPickerGateway({ picker: nowhere, failureMode: 'FailOpen', poolEndpoints: [a.endpoint, b.endpoint] });
  try {
    const names: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await post(openGw.url, { prompt: `q${i}` });
      assert.equal(r.status, 200);
      const echoed = JSON.parse(r.text);
      assert.deepEqual(JSON.parse(echoed.body), { prompt: `q${i}` });
      names.push(echoed.name);
    }
    assert.deepEqual(names.sort(), ['a', 'b'], 'the pool is used in turn');
  } finally {
    await openGw.close();
  }
});

test('a picker that does not answer within the message timeout: 504 (FailClose), the pool (FailOpen)', async () => {
  picker.decide = () => ({ kind: 'silent' });
  await withGateway({ messageTimeoutMs: 150 }, async (url, log) => {
    const r = await post(url, { prompt: 'slow' });
    assert.equal(r.status, 504);
    assert.equal(log[0]!.details, 'ext_proc_error_timeout');
  });
  await withGateway({ messageTimeoutMs: 150, failureMode: 'FailOpen', poolEndpoints: [b.endpoint] }, async (url, log) => {
    const r = await post(url, { prompt: 'slow' });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).name, 'b');
    assert.equal(log[0]!.details, 'fail_open');
  });
});

test('upstream: requests share one kept-open connection; no response head in time is 504; a response cut mid-body cuts the client\'s', async () => {
  const connections = new Set<net.Socket>();
  let mode: 'ok' | 'silent' | 'cut' = 'ok';
  const server = http.createServer((req, res) => {
    connections.add(req.socket);
    req.resume();
    req.on('end', () => {
      if (mode === 'silent') return;
      if (mode === 'cut') { res.writeHead(200, { 'content-length': '100' }); res.write('only part'); setTimeout(() => req.socket.destroy(), 20); return; }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'c' });
      res.end('fine');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  picker.decide = () => ({ kind: 'route', metadata: endpoint });
  try {
    for (const processResponse of [true, false]) {
      await withGateway({ processResponse, upstreamTimeoutMs: 200 }, async (url, log) => {
        connections.clear();
        mode = 'ok';
        for (let i = 0; i < 4; i++) {
          const r = await post(url, { prompt: `keep ${i}` });
          assert.equal(r.status, 200);
          assert.equal(r.text, 'fine');
        }
        assert.equal(connections.size, 1, 'four requests, one upstream connection');
        mode = 'silent';
        const slow = await post(url, { prompt: 'slow upstream' });
        assert.equal(slow.status, 504);
        assert.equal(log.at(-1)!.details, 'upstream_response_timeout');
        mode = 'cut';
        await assert.rejects(post(url, { prompt: 'cut' }), 'the client sees the response cut, not a whole one');
      });
    }
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('header mutations keep pseudo-headers and host, honour append actions', () => {
  const base: [string, string][] = [[':path', '/a'], ['host', 'h'], ['x-a', '1']];
  const hv = (key: string, v: string) => ({ key, raw_value: Buffer.from(v) });
  const out = applyHeaderMutation(base, {
    set_headers: [{ header: hv(':path', '/evil') }, { header: hv('host', 'evil') }, { header: hv('x-a', '2') }, { header: hv('x-b', '3'), append_action: 0 }, { header: hv('x-b', '4'), append_action: 0 }, { header: hv('x-c', '5'), append_action: 3 }],
    remove_headers: [':path'],
  });
  assert.deepEqual(out, [[':path', '/a'], ['host', 'h'], ['x-a', '2'], ['x-b', '3'], ['x-b', '4']]);
  assert.deepEqual(metadataEndpoints({ fields: { 'envoy.lb': { structValue: { fields: { 'x-gateway-destination-endpoint': { stringValue: ' 1.2.3.4:80 , 5.6.7.8:81' } } } } } }), ['1.2.3.4:80', '5.6.7.8:81']);
  assert.deepEqual(metadataEndpoints(undefined), []);
  assert.deepEqual(toHeaderMap([['X-Up', 'v']]).headers![0]!.key, 'x-up');
});
