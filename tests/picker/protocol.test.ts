// The picker as Envoy's ext_proc filter sees it: what it answers, in what order, for each body
// mode; immediate responses; protocol errors; resets; the filter's stream ending with the proxy's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { inflightTotal } from '../../plugin/sharedData.js';
import { REPLICAS, text } from '../filter/support.js';
import {
  BodySendMode, POST_HEADERS, ProxyStream, completionBody, metadataEndpoints, setValue, startTestPicker, until, type PickerUnderTest,
} from './support.js';

let p: PickerUnderTest;
before(async () => { p = await startTestPicker({ replicas: REPLICAS, debugHeaders: true }); });
after(async () => { await p.close(); });

const FULL_DUPLEX = { request: BodySendMode.FULL_DUPLEX_STREAMED, response: BodySendMode.FULL_DUPLEX_STREAMED };

test('FULL_DUPLEX_STREAMED: nothing until the filter has the prompt, then the choice in the header and envoy.lb, then the body streamed back', async () => {
  const s = new ProxyStream(p.client);
  const body = completionBody(text(1, 3000));
  s.headers([...POST_HEADERS, ['content-length', String(body.length)]], false, FULL_DUPLEX);
  s.body(body.slice(0, 10), false);
  assert.equal(await s.silentFor(150), true, 'the picker answered before the filter could route');
  s.body(body.slice(10), true);
  const h = await s.next();
  assert.ok(h.request_headers, `first answer is ${Object.keys(h)}`);
  const chosen = setValue(h.request_headers!.response!.header_mutation, 'x-gateway-destination-endpoint');
  assert.ok(chosen && REPLICAS.includes(chosen));
  const list = metadataEndpoints(h.dynamic_metadata);
  assert.equal(list.length, 2, 'chosen and runner-up');
  assert.equal(list[0], chosen);
  assert.notEqual(list[1], chosen);
  assert.equal(h.request_headers!.response!.clear_route_cache, true);
  assert.equal(setValue(h.request_headers!.response!.header_mutation, 'x-prefix-router-fallback-endpoint'), undefined, 'the runner-up header is the picker\'s, not the upstream\'s');
  const streamed: Buffer[] = [];
  for (;;) {
    const m = await s.next();
    assert.ok(m.request_body, `expected body answers, got ${Object.keys(m)}`);
    const sr = m.request_body!.response!.body_mutation!.streamed_response!;
    if (sr.body) streamed.push(Buffer.from(sr.body));
    if (sr.end_of_stream) break;
  }
  assert.equal(Buffer.concat(streamed).toString(), body, 'the body goes on as the client sent it');
  s.finish();
});

test('the same prompt start goes to the same replica; a client-sent destination is overwritten', async () => {
  const prompt = text(7, 2000);
  const pick = async (extra: [string, string][]) => {
    const s = new ProxyStream(p.client);
    s.headers([...POST_HEADERS, ...extra], false, FULL_DUPLEX);
    s.body(completionBody(prompt), true);
    const h = await s.next();
    s.finish();
    return setValue(h.request_headers!.response!.header_mutation, 'x-gateway-destination-endpoint');
  };
  const first = await pick([]);
  const second = await pick([['x-gateway-destination-endpoint', '192.0.2.1:80'], ['x-prefix-router-fallback-endpoint', '192.0.2.1:80']]);
  assert.equal(second, first);
});

test('a request without a body is decided on its headers', async () => {
  const s = new ProxyStream(p.client);
  s.headers([[':method', 'GET'], [':path', '/v1/models'], [':authority', 'gw'], [':scheme', 'http']], true, FULL_DUPLEX);
  const h = await s.next();
  assert.ok(REPLICAS.includes(setValue(h.request_headers!.response!.header_mutation, 'x-gateway-destination-endpoint')!));
  s.finish();
});

test('BUFFERED: the headers are answered at once, the choice rides on the body\'s answer', async () => {
  const s = new ProxyStream(p.client);
  s.headers(POST_HEADERS, false, { request: BodySendMode.BUFFERED, response: BodySendMode.NONE });
  const h = await s.next();
  assert.ok(h.request_headers);
  assert.equal(setValue(h.request_headers!.response?.header_mutation, 'x-gateway-destination-endpoint'), undefined);
  s.body(completionBody(text(3, 1500)), true);
  const b = await s.next();
  assert.ok(b.request_body);
  assert.ok(REPLICAS.includes(setValue(b.request_body!.response!.header_mutation, 'x-gateway-destination-endpoint')!));
  assert.equal(metadataEndpoints(b.dynamic_metadata).length, 2);
  assert.equal(b.request_body!.response!.body_mutation, undefined, 'a buffered body is left as the proxy holds it');
  s.finish();
});

test('the response passes the filter: its headers come back with the filter\'s additions, the body streamed back, the served endpoint read', async () => {
  const s = new ProxyStream(p.client);
  s.headers(POST_HEADERS, false, FULL_DUPLEX);
  s.body(completionBody(text(5, 500)), true);
  const h = await s.next();
  const targets = metadataEndpoints(h.dynamic_metadata);
  while (!(await s.next()).request_body?.response?.body_mutation?.streamed_response?.end_of_stream) { /* the body's answers */ }
  const served = () => p.picker.metrics.served.get().then((m) => m.values.find((v) => v.labels.served === 'runner_up')?.value ?? 0);
  const before = await served();
  s.send({
    response_headers: { headers: { headers: [{ key: ':status', raw_value: Buffer.from('200') }, { key: 'content-type', raw_value: Buffer.from('application/json') }] }, end_of_stream: false },
    metadata_context: { filter_metadata: { 'envoy.lb': { fields: { 'x-gateway-destination-endpoint-served': { stringValue: targets[1] } } } } },
  });
  const rh = await s.next();
  assert.ok(rh.response_headers);
  assert.equal(setValue(rh.response_headers!.response!.header_mutation, 'x-prefix-router-endpoint'), targets[0]);
  s.send({ response_body: { body: Buffer.from('{"ok":'), end_of_stream: false } });
  s.send({ response_body: { body: Buffer.from('true}'), end_of_stream: true } });
  const out: string[] = [];
  for (;;) {
    const m = await s.next();
    const sr = m.response_body!.response!.body_mutation!.streamed_response!;
    out.push(Buffer.from(sr.body ?? []).toString());
    if (sr.end_of_stream) break;
  }
  assert.equal(out.join(''), '{"ok":true}');
  assert.equal(await served(), before + 1, 'the runner-up served it, and the picker counted that');
  s.finish();
});

test('no replica to route to: the filter\'s 503 becomes an ImmediateResponse', async () => {
  // The control plane never answers: the filter knows no replica.
  const empty = await startTestPicker({ controlPlane: {} }, {}, { clusters: { prefix_router_control_plane: 'http://127.0.0.1:9' } });
  try {
    const s = new ProxyStream(empty.client);
    s.headers(POST_HEADERS, false, FULL_DUPLEX);
    s.body(completionBody('hello'), true);
    const m = await s.next();
    assert.equal(m.immediate_response?.status?.code, 503);
    assert.match(Buffer.from(m.immediate_response!.body!).toString(), /error/);
    s.finish();
  } finally {
    await empty.close();
  }
});

test('past --max-open-streams a new request is shed with 429', async () => {
  const small = await startTestPicker({ replicas: REPLICAS }, { maxOpenStreams: 1 });
  try {
    const held = new ProxyStream(small.client);
    held.headers(POST_HEADERS, false, FULL_DUPLEX);
    await until(() => small.picker.openStreams() === 1);
    const shed = new ProxyStream(small.client);
    shed.headers(POST_HEADERS, false, FULL_DUPLEX);
    assert.equal((await shed.next()).immediate_response?.status?.code, 429);
    shed.finish();
    held.reset();
    await until(() => small.picker.openStreams() === 0);
    const next = new ProxyStream(small.client);
    next.headers([[':method', 'GET'], [':path', '/'], [':authority', 'gw'], [':scheme', 'http']], true, FULL_DUPLEX);
    assert.ok((await next.next()).request_headers, 'admitted again once the held stream went');
    next.finish();
  } finally {
    await small.close();
  }
});

test('a subset hint restricts the choice; an empty one is a 503', async () => {
  const inside = new ProxyStream(p.client);
  inside.headers(POST_HEADERS, false, FULL_DUPLEX, { filter_metadata: { 'envoy.lb.subset_hint': { fields: { 'x-gateway-destination-endpoint-subset': { listValue: { values: [{ stringValue: REPLICAS[2] }] } } } } } });
  inside.body(completionBody(text(11, 800)), true);
  const h = await inside.next();
  assert.deepEqual(metadataEndpoints(h.dynamic_metadata), [REPLICAS[2]]);
  inside.finish();
  const empty = new ProxyStream(p.client);
  empty.headers(POST_HEADERS, false, FULL_DUPLEX, { filter_metadata: { 'envoy.lb.subset_hint': { fields: { 'x-gateway-destination-endpoint-subset': { listValue: { values: [] } } } } } });
  assert.equal((await empty.next()).immediate_response?.status?.code, 503);
  empty.finish();
});

test('the filter scores within the subset: a prompt start held outside it goes to the subset\'s best, the runner-up from it too', async () => {
  const prompt = text(13, 2000);
  const route = async (metadata?: object) => {
    const s = new ProxyStream(p.client);
    s.headers(POST_HEADERS, false, FULL_DUPLEX, metadata);
    s.body(completionBody(prompt), true);
    const h = await s.next();
    s.finish();
    return { chosen: setValue(h.request_headers!.response!.header_mutation, 'x-gateway-destination-endpoint'), list: metadataEndpoints(h.dynamic_metadata), mutation: h.request_headers!.response!.header_mutation };
  };
  const holder = (await route()).chosen!;
  const others = REPLICAS.filter((r) => r !== holder);
  const hint = { filter_metadata: { 'envoy.lb.subset_hint': { fields: { 'x-gateway-destination-endpoint-subset': { listValue: { values: others.map((r) => ({ stringValue: r })) } } } } } };
  const within = await route(hint);
  assert.ok(others.includes(within.chosen!), `chose ${within.chosen}, outside the subset ${others.join(',')}`);
  assert.deepEqual([...within.list].sort(), [...others].sort(), 'chosen and runner-up both from the subset, not the subset\'s own order');
  assert.equal(setValue(within.mutation, 'x-prefix-router-endpoint-subset'), undefined, 'the subset header never goes upstream');
});

test('a client-sent subset header restricts nothing and is removed', async () => {
  const chosen = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const s = new ProxyStream(p.client);
    s.headers([...POST_HEADERS, ['x-prefix-router-endpoint-subset', REPLICAS[0]!]], false, FULL_DUPLEX);
    s.body(completionBody(text(40 + i, 600)), true);
    const h = await s.next();
    s.finish();
    const m = h.request_headers!.response!.header_mutation;
    chosen.add(setValue(m, 'x-gateway-destination-endpoint')!);
    assert.ok(m?.remove_headers?.includes('x-prefix-router-endpoint-subset'), 'the client\'s subset header is removed');
  }
  assert.ok(chosen.size > 1, `every request went to ${[...chosen].join(',')}`);
});

test('protocol errors end the stream with a gRPC status the proxy applies its failure mode to', async () => {
  const bodyFirst = new ProxyStream(p.client);
  bodyFirst.body('x', true);
  await assert.rejects(bodyFirst.next(), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION);
  const streamed = new ProxyStream(p.client);
  streamed.headers(POST_HEADERS, false, { request: BodySendMode.STREAMED });
  await assert.rejects(streamed.next(), (e: grpc.ServiceError) => e.code === grpc.status.UNIMPLEMENTED && /FULL_DUPLEX_STREAMED/.test(e.details));
});

test('the filter\'s in-flight count follows the proxy\'s streams: up while open, down at the end or at a reset', async () => {
  const base = inflightTotal(p.host.sharedData, p.host.vmId);
  const baseStreams = p.picker.openStreams();
  const open: ProxyStream[] = [];
  for (let i = 0; i < 3; i++) {
    const s = new ProxyStream(p.client);
    s.headers(POST_HEADERS, false, FULL_DUPLEX);
    s.body(completionBody(text(20 + i, 400)), true);
    await s.next();
    open.push(s);
  }
  assert.equal(inflightTotal(p.host.sharedData, p.host.vmId), base + 3);
  open[0]!.finish();
  open[1]!.reset();
  await until(() => inflightTotal(p.host.sharedData, p.host.vmId) === base + 1);
  // A reset in the middle of the body: the filter's context ends too.
  const mid = new ProxyStream(p.client);
  mid.headers(POST_HEADERS, false, FULL_DUPLEX);
  mid.body('{"model":"qwen","prompt":"', false);
  await until(() => p.picker.openStreams() === baseStreams + 2);
  mid.reset();
  open[2]!.finish();
  await until(() => inflightTotal(p.host.sharedData, p.host.vmId) === base && p.picker.openStreams() === baseStreams);
});
