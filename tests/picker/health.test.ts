// The picker's gRPC health port and metrics port, as a kubelet grpc probe, the gateway's health
// checks and Prometheus see them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { HealthClientConstructor, ServingStatus, EXT_PROC_SERVICE_NAME } from '../../picker/health.js';
import { REPLICAS, text } from '../filter/support.js';
import { BodySendMode, POST_HEADERS, ProxyStream, completionBody, startTestPicker } from './support.js';

test('health: liveness and readiness SERVING while up, readiness NOT_SERVING once draining, unknown services NOT_FOUND', async () => {
  const p = await startTestPicker({ replicas: REPLICAS });
  const health = new HealthClientConstructor(p.picker.healthAddress!, grpc.credentials.createInsecure());
  const check = (service: string) => new Promise<number>((resolve, reject) => health.Check({ service }, (e, r) => (e ? reject(e) : resolve(r!.status))));
  try {
    for (const s of ['', 'liveness', 'readiness', EXT_PROC_SERVICE_NAME]) assert.equal(await check(s), ServingStatus.SERVING, s);
    await assert.rejects(check('nope'), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND);
    const watch = health.Watch({ service: 'readiness' });
    const seen: number[] = [];
    watch.on('data', (m: { status: number }) => seen.push(m.status));
    watch.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));
    p.picker.health.setReady(false);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(seen, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    assert.equal(await check('liveness'), ServingStatus.SERVING, 'draining is not dead');
    watch.cancel();
  } finally {
    health.close();
    await p.close();
  }
});

test('metrics: the picker\'s decisions and the filter\'s own counters on one page', async () => {
  const p = await startTestPicker({ replicas: REPLICAS });
  try {
    const s = new ProxyStream(p.client);
    s.headers(POST_HEADERS, false, { request: BodySendMode.FULL_DUPLEX_STREAMED, response: BodySendMode.NONE });
    s.body(completionBody(text(9, 700)), true);
    await s.next();
    s.finish();
    // The filter hands its counters to the host on its next tick (100 ms).
    let page = '';
    for (let i = 0; i < 30 && !/^prefix_router_requests_routed\{\} 1$/m.test(page); i++) {
      await new Promise((r) => setTimeout(r, 50));
      page = await (await fetch(p.picker.metricsUrl!)).text();
    }
    assert.match(page, /^prefix_router_picker_decisions_total\{outcome="picked",status=""\} 1$/m);
    assert.match(page, /^prefix_router_picker_streams_total 1$/m);
    assert.match(page, /^prefix_router_requests_routed\{\} 1$/m);
    assert.equal((await fetch(p.picker.metricsUrl!.replace('/metrics', '/other'))).status, 404);
  } finally {
    await p.close();
  }
});
