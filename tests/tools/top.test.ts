// `prefix-router top`'s pieces without a terminal: the admin text it reads and the frame it draws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilterStats, renderTop, statSuffix, type TopSample } from '../../cli/top.js';

const A = '10.0.0.1:8000', B = '10.0.0.2:8000', V6 = '[fd00::1]:8000';

function adminText(a: [number, number, number, number], b: [number, number, number, number], routed: number, spills: number): string {
  const lines = ['# TYPE prefix_router_requests_routed counter', `prefix_router_requests_routed{} ${routed}`, `prefix_router_load_bound_spills{} ${spills}`,
    'prefix_router_state_version{} 42', 'prefix_router_control_plane_age_ms{} 120', 'envoy_cluster_upstream_rq{envoy_response_code="200"} 9'];
  for (const [addr, [req, m, t, p]] of [[A, a], [B, b]] as const) {
    const s = statSuffix(addr);
    lines.push(`prefix_router_replica_requests_${s}{} ${req}`, `prefix_router_replica_prefix_blocks_matched_${s}{} ${m}`,
      `prefix_router_replica_prefix_blocks_total_${s}{} ${t}`, `prefix_router_replica_load_bound_passed_over_${s}{} ${p}`);
  }
  return lines.join('\n') + '\n';
}

function sample(atMs: number, text: string | null, errors: string[] = []): TopSample {
  return {
    atMs, controlPlaneVersion: '42', errors, filter: text === null ? null : parseFilterStats(text),
    replicas: [
      { address: A, ready: true, stale: false, waiting: 3, running: 7, kvUsage: 0.5, hitRate: 0.8 },
      { address: B, ready: false, stale: true, waiting: null, running: null, kvUsage: null, hitRate: null },
    ],
  };
}

test('the admin text: totals, gauges and per-replica stats keyed as Envoy names them', () => {
  const f = parseFilterStats(adminText([30, 100, 200, 1], [10, 0, 50, 0], 40, 1));
  assert.equal(f.routed, 40);
  assert.equal(f.spills, 1);
  assert.equal(f.stateVersion, 42);
  assert.equal(f.controlPlaneAgeMs, 120);
  assert.deepEqual(f.replicas.get('10_0_0_1_8000'), { requests: 30, matched: 100, total: 200, passedOver: 1 });
  assert.equal(statSuffix(V6), '_fd00__1__8000');
  assert.equal(parseFilterStats('garbage\n{}\n').routed, 0);
});

test('a frame: share, rate, queue, KV, hit rate and match over the last refresh; "-" for what is not known', () => {
  const prev = sample(1_000, adminText([30, 100, 200, 1], [10, 0, 50, 0], 40, 1));
  const now = sample(3_000, adminText([60, 300, 400, 3], [20, 0, 100, 0], 80, 3));
  const frame = renderTop(now, prev);
  const row = (addr: string) => frame.split('\n').find((l) => l.startsWith(addr))!.trim().split(/\s{2,}/);
  // A: 30 of the last 40 requests (75%), 15/s over 2 s, queue 3, running 7, KV 50%, hit 80%, matched 200/200 blocks, passed over twice.
  assert.deepEqual(row(A), [A, 'ready', '75.0%', '15.0', '3', '7', '50.0%', '80.0%', '100.0%', '2']);
  assert.deepEqual(row(B), [B, 'stale', '25.0%', '5.0', '-', '-', '-', '-', '0.0%', '0']);
  assert.match(frame, /last 2\.0 s/);
  assert.match(frame, /requests: 40 \(20\.0\/s\), guard spills 2/);
  assert.match(frame, /gateway routes on v42, control plane heard 120 ms ago/);
});

test('the first frame counts since the gateway started; an unreadable source is shown, not fatal', () => {
  const first = renderTop(sample(1_000, adminText([3, 0, 0, 0], [1, 0, 0, 0], 4, 0)), null);
  assert.match(first, /since the gateway started/);
  assert.match(first.split('\n').find((l) => l.startsWith(A))!, /75\.0%\s+-\s+3/);
  const blind = renderTop(sample(2_000, null, ['http://127.0.0.1:9901/stats/prometheus: fetch failed']), null);
  assert.match(blind, /gateway stats not readable/);
  assert.match(blind, /^! http:\/\/127\.0\.0\.1:9901\/stats\/prometheus: fetch failed$/m);
  assert.match(blind.split('\n').find((l) => l.startsWith(A))!, /ready\s+-\s+-\s+3\s+7\s+50\.0%\s+80\.0%/);
});

test('a replica the filter counted that the control plane no longer lists is shown as gone', () => {
  const now = sample(1_000, adminText([3, 0, 0, 0], [1, 0, 0, 0], 5, 0) + 'prefix_router_replica_requests_10_0_0_9_8000{} 1\n');
  assert.match(renderTop(now, null), /^10_0_0_9_8000\s+gone\s+20\.0%/m);
});
