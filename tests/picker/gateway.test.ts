// The embedded gateway in Endpoint Picker Protocol mode (the ext_proc client, as Envoy's filter)
// in front of `prefix-router picker` replicas: routing with affinity through the picker, one of
// three pickers killed with requests open (only those fail), and the pool's failureMode when no
// picker answers at all.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SharedDataStore } from '../../host/index.js';
import { startPickerGateway, type FailureMode, type PickerGateway } from '../../host/endpointPicker/pickerGateway.js';
import { text } from '../filter/support.js';
import { completionBody, startTestPicker, until, type PickerUnderTest } from './support.js';

interface Upstream { name: string; endpoint: string; hold: boolean; received: number; pending: http.ServerResponse[]; release(): void; server: http.Server }

async function startUpstream(name: string): Promise<Upstream> {
  const u: Upstream = {
    name, endpoint: '', hold: false, received: 0, pending: [],
    release: () => { for (const res of u.pending.splice(0)) res.end(JSON.stringify({ served_by: name })); },
    server: http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        u.received++;
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name });
        if (u.hold) { res.flushHeaders(); u.pending.push(res); } else res.end(JSON.stringify({ served_by: name }));
      });
    }),
  };
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.endpoint = `127.0.0.1:${(u.server.address() as AddressInfo).port}`;
  return u;
}

const upstreams = await Promise.all(['a', 'b', 'c'].map(startUpstream));
const endpoints = upstreams.map((u) => u.endpoint);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const u of upstreams) { u.release(); u.server.closeAllConnections(); u.server.close(); }
});

/** A picker with shared data of its own, as a picker replica in its own pod. */
async function picker(): Promise<PickerUnderTest> {
  const p = await startTestPicker({ replicas: endpoints, debugHeaders: true }, {}, { sharedData: new SharedDataStore() });
  cleanups.push(() => p.close());
  return p;
}

async function gateway(pickerAddress: string, failureMode: FailureMode = 'FailClose'): Promise<PickerGateway> {
  const gw = await startPickerGateway({ picker: pickerAddress, failureMode, poolEndpoints: endpoints, messageTimeoutMs: 1000 });
  cleanups.push(() => gw.close());
  return gw;
}

async function complete(gw: PickerGateway, prompt: string): Promise<{ status: number; upstream: string | null; routedBy: string | null }> {
  const r = await fetch(`${gw.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: completionBody(prompt) });
  await r.arrayBuffer();
  return { status: r.status, upstream: r.headers.get('x-upstream'), routedBy: r.headers.get('x-prefix-router-endpoint') };
}

test('through the picker: 200, the filter\'s debug headers on the response, one prompt start on one replica', async () => {
  const p = await picker();
  const gw = await gateway(p.picker.address);
  const prompt = text(41, 2500);
  const first = await complete(gw, prompt);
  assert.equal(first.status, 200);
  assert.ok(first.upstream);
  assert.equal(first.routedBy, upstreams.find((u) => u.name === first.upstream)!.endpoint);
  for (let i = 0; i < 4; i++) assert.equal((await complete(gw, prompt + ` turn ${i}`)).upstream, first.upstream);
  const served = (await p.picker.metrics.served.get()).values;
  assert.equal(served.find((v) => v.labels.served === 'picked')?.value, 5, 'the gateway reported each picked endpoint as the one that served');
});

test('killing one of three pickers loses the requests it had open and no other', async () => {
  const pickers = [await picker(), await picker(), await picker()];
  const gw = await gateway(pickers.map((p) => p.picker.address).join(','));
  // Warm every subchannel so the round robin spreads the held requests over all three.
  for (let i = 0; i < 6; i++) assert.equal((await complete(gw, text(100 + i, 300))).status, 200);
  for (const u of upstreams) u.hold = true;
  const before = upstreams.reduce((n, u) => n + u.received, 0);
  const held = Array.from({ length: 9 }, (_, i) => complete(gw, text(200 + i, 600)).catch(() => ({ status: 0, upstream: null, routedBy: null })));
  await until(() => upstreams.reduce((n, u) => n + u.received, 0) === before + 9);
  const open = pickers[0]!.picker.openStreams();
  assert.ok(open > 0, 'the killed picker had requests open');
  pickers[0]!.picker.kill();
  for (const u of upstreams) { u.hold = false; u.release(); }
  const outcomes = await Promise.all(held);
  assert.equal(outcomes.filter((o) => o.status !== 200).length, open, 'exactly the killed picker\'s open requests failed');
  const afterKill = await Promise.all(Array.from({ length: 9 }, (_, i) => complete(gw, text(300 + i, 400))));
  assert.deepEqual(afterKill.map((o) => o.status), Array(9).fill(200), 'new requests go to the pickers left');
});

test('no picker answers: FailOpen sends the request to the pool, FailClose answers 500', async () => {
  const p = await picker();
  const address = p.picker.address;
  p.picker.kill();
  const open = await gateway(address, 'FailOpen');
  const served = await complete(open, text(500, 300));
  assert.equal(served.status, 200);
  assert.ok(endpoints.includes(upstreams.find((u) => u.name === served.upstream)!.endpoint));
  const closed = await gateway(address, 'FailClose');
  assert.equal((await complete(closed, text(501, 300))).status, 500);
});
