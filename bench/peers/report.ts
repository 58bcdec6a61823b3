// The bench:peers result as a text table and a self-contained HTML page: goodput under the TTFT
// SLO, the per-load-point table, and per workload one chart of TTFT p95 against offered load
// with every router.
import { escapeHtml, htmlPage, lineChart, type Series } from '../report/svg.js';
import type { PeersResult } from './main.js';
import type { PeerShape } from './shapes.js';

const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));
/** The router's cores, and the control plane's part of them where it has one off the request path. */
const cores = (x: { routerCpuCores: number; controlPlaneCpuCores?: number }) =>
  f(x.routerCpuCores, 3) + (x.controlPlaneCpuCores !== undefined ? ` (control plane ${f(x.controlPlaneCpuCores, 3)})` : '');

/** The nominal rate, and the one the requests arrived at over their span where recorded (below it while sessions ramp up). */
const rates = (x: { offeredRps: number; arrivedRps?: number }) => `${x.offeredRps}${x.arrivedRps !== undefined ? ` (${f(x.arrivedRps, 2)})` : ''}`;

export function renderTable(r: PeersResult): string {
  const lines: string[] = [];
  for (const s of r.routers.filter((x) => x.status !== 'ran')) lines.push(`${s.name}: ${s.status}: ${s.detail}`);
  if (r.addedLatency?.length) {
    lines.push('', 'added latency at idle (one-token requests through the router minus straight to a replica, one pair at a time, after a warm-up)');
    lines.push(['router', 'replicas', 'warm-up', 'pairs', 'p50 ms', 'p95 ms', 'idle CPU cores (control plane)'].join('\t'));
    for (const a of r.addedLatency) {
      const idle = a.idleCpuCores === undefined ? '-' : `${f(a.idleCpuCores, 4)} (${f(a.idleControlCpuCores, 4)})`;
      lines.push([a.router, a.replicas, a.warmupRequests, a.pairs, f(a.p50, 3), f(a.p95, 3), idle].join('\t'));
    }
  }
  lines.push('', 'goodput (the highest offered req/s meeting the TTFT p95 SLO with <= 1% failed)');
  lines.push(['router', 'shape', 'replicas', 'SLO ms', 'goodput', 'at load', 'TTFT p95 @0.7', 'added p50 ms'].join('\t'));
  for (const g of r.goodput) lines.push([g.router, g.shape, g.replicas, g.sloMs, f(g.goodputRps, 2), f(g.atLoad, 2), f(g.ttftP95At70, 0), f(g.addedLatencyP50Ms, 2)].join('\t'));
  lines.push('', ['router', 'shape', 'replicas', 'load', 'req/s offered (arrived)', 'ok/sent', 'TTFT p50', 'p95', 'p99', 'e2e p95', 'req/s out', 'tok/s', 'hit rate', 'shares', 'router cores', 'added p50/p95 ms'].join('\t'));
  for (const x of r.runs) {
    lines.push([x.router, x.shape, x.replicas, x.load, rates(x), `${x.ok}/${x.sent}`, f(x.ttftMs.p50, 0), f(x.ttftMs.p95, 0), f(x.ttftMs.p99, 0), f(x.e2eP95Ms, 0),
      f(x.throughputRps, 2), f(x.outputTokensPerS, 0), f(x.hitRate, 3), x.replicaShare.map((s) => f(s, 2)).join('/'), cores(x),
      x.addedLatencyMs ? `${f(x.addedLatencyMs.p50, 2)}/${f(x.addedLatencyMs.p95, 2)}` : '-'].join('\t'));
  }
  if (r.inferencePerf) {
    const c = r.inferencePerf;
    lines.push('', `inference-perf cross-check (${c.point}): ${c.status}${c.detail ? `: ${c.detail}` : ''}`);
    for (const m of c.metrics) lines.push(`  ${m.name}${m.compared ? '' : ' (not compared)'}: ours ${f(m.ours, 2)}, inference-perf ${f(m.theirs, 2)}, difference ${f(m.differencePct, 1)}%`);
  }
  return lines.join('\n') + '\n';
}

export function renderHtml(r: PeersResult, shapes: PeerShape[]): string {
  const parts: string[] = [`<h1>bench:peers</h1><p class="muted">${escapeHtml(r.startedAt)}, ${r.durationS} s, ${r.machine.cpus} cores (${escapeHtml(r.machine.note)})</p>`];
  parts.push('<h2>Routers</h2><table><tr><th>router</th><th>status</th><th>detail</th></tr>');
  for (const s of r.routers) parts.push(`<tr><td>${escapeHtml(s.name)}</td><td class="${s.status === 'ran' ? 'ok' : 'bad'}">${s.status}</td><td>${escapeHtml(s.detail)}</td></tr>`);
  parts.push('</table><h2>Goodput under the TTFT p95 SLO</h2><table><tr><th>router</th><th>shape</th><th>replicas</th><th>SLO ms</th><th>goodput req/s</th><th>at load</th><th>TTFT p95 at 0.7</th><th>added latency p50 ms</th></tr>');
  for (const g of r.goodput) parts.push(`<tr><td>${escapeHtml(g.router)}</td><td>${escapeHtml(g.shape)}</td><td>${g.replicas}</td><td>${g.sloMs}</td><td>${f(g.goodputRps, 2)}</td><td>${f(g.atLoad, 2)}</td><td>${f(g.ttftP95At70, 0)}</td><td>${f(g.addedLatencyP50Ms, 2)}</td></tr>`);
  parts.push('</table><h2>Latency against load</h2><div class="charts">');
  const groups = [...new Set(r.runs.map((x) => `${x.shape}@${x.replicas}`))];
  for (const g of groups) {
    const rs = r.runs.filter((x) => `${x.shape}@${x.replicas}` === g);
    const routers = [...new Set(rs.map((x) => x.router))];
    const series = (pick: (x: typeof rs[number]) => number): Series[] => routers.map((name) => ({ name, points: rs.filter((x) => x.router === name).map((x) => [x.offeredRps, pick(x)] as [number, number]).filter((p) => Number.isFinite(p[1])) }));
    const label = shapes.find((s) => `${s.name}` === g.split('@')[0])?.label ?? g;
    parts.push(lineChart(series((x) => x.ttftMs.p95), { title: `${g}: TTFT p95`, xLabel: `offered load, req/s (${label})`, yLabel: 'ms' }));
    parts.push(lineChart(series((x) => x.e2eP95Ms), { title: `${g}: end-to-end p95`, xLabel: 'offered load, req/s', yLabel: 'ms' }));
  }
  parts.push('</div><h2>Every load point</h2><table><tr><th>router</th><th>shape</th><th>replicas</th><th>load</th><th>req/s offered (arrived)</th><th>ok/sent</th><th>TTFT p50/p95/p99 ms</th><th>e2e p95 ms</th><th>req/s out</th><th>hit rate</th><th>replica shares</th><th>router cores</th><th>added ms p50/p95</th></tr>');
  for (const x of r.runs) {
    parts.push(`<tr><td>${escapeHtml(x.router)}</td><td>${escapeHtml(x.shape)}</td><td>${x.replicas}</td><td>${x.load}</td><td>${rates(x)}</td><td>${x.ok}/${x.sent}</td><td>${f(x.ttftMs.p50, 0)}/${f(x.ttftMs.p95, 0)}/${f(x.ttftMs.p99, 0)}</td><td>${f(x.e2eP95Ms, 0)}</td><td>${f(x.throughputRps, 2)}</td><td>${f(x.hitRate, 3)}</td><td>${x.replicaShare.map((s) => f(s, 2)).join(' / ')}</td><td>${escapeHtml(cores(x))}</td><td>${x.addedLatencyMs ? `${f(x.addedLatencyMs.p50, 2)} / ${f(x.addedLatencyMs.p95, 2)}` : '-'}</td></tr>`);
  }
  parts.push('</table>');
  if (r.inferencePerf) {
    const c = r.inferencePerf;
    parts.push(`<h2>inference-perf cross-check</h2><p>${escapeHtml(c.point)}: ${escapeHtml(c.status)} ${escapeHtml(c.detail)}</p><table><tr><th>metric</th><th>ours</th><th>inference-perf</th><th>difference %</th><th>compared</th></tr>`);
    for (const m of c.metrics) parts.push(`<tr><td>${escapeHtml(m.name)}</td><td>${f(m.ours, 2)}</td><td>${f(m.theirs, 2)}</td><td>${f(m.differencePct, 1)}</td><td>${m.compared ? 'yes (within 10%)' : 'no (explains)'}</td></tr>`);
    parts.push('</table>');
  }
  return htmlPage('bench:peers', parts.join('\n'));
}
