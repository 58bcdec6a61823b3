// The admin listener: the gateway's own stats and the filter's metrics in Prometheus text, as
// Envoy's admin /stats/prometheus shows them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway } from '../../host/gateway.js';
import { startAdmin } from '../../host/admin.js';
import { StatsStore, renderPrometheus } from '../../host/statsStore.js';
import { probeHost, until } from '../host/support.js';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
}

test('GET /stats/prometheus: the filter metrics summed over worker VMs (wasmcustom namespace stripped) and the gateway stats named as Envoy names them', async () => {
  const up = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const upPort = (up.address() as AddressInfo).port;
  const { host } = await probeHost({ workers: 2, pluginConfig: 'metrics' });
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  const admin = await startAdmin({ host, stats: gw.stats, listen: { host: '127.0.0.1', port: 0 } });
  try {
    // Two requests, one per worker VM, each counting once in the module's counter.
    for (let i = 0; i < 2; i++) assert.equal((await get(`${gw.url}/x`, { 'x-probe': `metric;add=x-gateway-destination-endpoint:127.0.0.1:${upPort}` })).status, 200);
    assert.equal((await get(`${gw.url}/x`, { 'x-probe': 'local=429' })).status, 429);
    // A dead replica: a connect failure, one retry, a second failure, then the router's 503.
    assert.equal((await get(`${gw.url}/x`, { 'x-probe': 'add=x-gateway-destination-endpoint:127.0.0.1:1' })).status, 503);
    const hcm = 'envoy_http_conn_manager_prefix="prefix_router"';
    const cluster = 'envoy_cluster_name="vllm_original_dst"';
    // A request completes when its response has been written out, which the client may see first.
    await until(() => gw.stats.list('counter').some((s) => s.name === 'http.downstream_rq_completed' && s.value === 4), 'four completed requests');
    const r = await get(`${admin.url}/stats/prometheus`);
    const text = r.body;
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain/);
    const lines = text.split('\n');
    const has = (line: string) => assert.ok(lines.includes(line), `missing line: ${line}\n${text}`);
    has('# TYPE probe_requests counter');
    has('probe_requests{} 2');
    has('# TYPE probe_gauge gauge');
    has('# TYPE probe_hist histogram');
    has('probe_hist_bucket{le="5"} 0');
    has('probe_hist_bucket{le="10"} 2');
    has('probe_hist_bucket{le="+Inf"} 2');
    has('probe_hist_sum{} 14');
    has('probe_hist_count{} 2');
    has('# TYPE envoy_http_downstream_rq_total counter');
    has(`envoy_http_downstream_rq_total{${hcm}} 4`);
    has(`envoy_http_downstream_rq_xx{envoy_response_code_class="2",${hcm}} 2`);
    has(`envoy_http_downstream_rq_xx{envoy_response_code_class="4",${hcm}} 1`);
    has(`envoy_http_downstream_rq_xx{envoy_response_code_class="5",${hcm}} 1`);
    has(`envoy_http_downstream_rq_active{${hcm}} 0`);
    has(`envoy_cluster_upstream_rq{envoy_response_code="200",${cluster}} 2`);
    has(`envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",${cluster}} 2`);
    has(`envoy_cluster_upstream_cx_connect_fail{${cluster}} 2`);
    has(`envoy_cluster_upstream_rq_retry{${cluster}} 1`);
    has(`envoy_cluster_upstream_rq_total{${cluster}} 4`);
    assert.ok(lines.some((l) => l.startsWith(`envoy_http_downstream_cx_total{${hcm}} `)));
    // Counters, then gauges, then histograms; one TYPE line per name.
    const types = lines.filter((l) => l.startsWith('# TYPE')).map((l) => l.split(' ')[3]);
    assert.deepEqual(types, [...types].sort((a, b) => ['counter', 'gauge', 'histogram'].indexOf(a) - ['counter', 'gauge', 'histogram'].indexOf(b)));
    assert.equal(new Set(lines.filter((l) => l.startsWith('# TYPE'))).size, types.length);
    assert.equal((await get(`${admin.url}/ready`)).body, 'LIVE\n');
    assert.equal((await get(`${admin.url}/nope`)).status, 404);
  } finally {
    await admin.close();
    await gw.close();
    await host.close();
    await new Promise<void>((r) => up.close(() => r()));
  }
});

test("module metric names as Envoy's Prometheus formatter exports them: sanitized, never starting with a digit", () => {
  const text = renderPrometheus(new StatsStore(), new Map([
    ['prefix_router.replica_requests.10_0_0_1_8000', { type: 'counter' as const, value: 3 }],
    ['9lives', { type: 'counter' as const, value: 1 }],
    ['a-b', { type: 'gauge' as const, value: -2 }],
  ]));
  assert.equal(text, '# TYPE prefix_router_replica_requests_10_0_0_1_8000 counter\nprefix_router_replica_requests_10_0_0_1_8000{} 3\n# TYPE a_b gauge\na_b{} -2\n');
});
