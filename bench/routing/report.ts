// Output of a routing run: the JSON document, the targets check, the stdout
// table, and the self-contained HTML report (inline SVG, no scripts).
import type { WorkloadResult } from './runner.js';
import type { PolicyResult } from './simulation.js';

const r4 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
const r1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);

function policyJson(p: PolicyResult) {
  const out: Record<string, unknown> = {
    name: p.name,
    hitRate: r4(p.hitRate),
    firstAdmissionHitRate: r4(p.firstAdmissionHitRate),
    throughputRps: r4(p.throughputRps),
    ttftP50Ms: r1(p.ttftP50Ms),
    ttftP95Ms: r1(p.ttftP95Ms),
    e2eP95Ms: r1(p.e2eP95Ms),
    maxOverMeanLoad: r4(p.maxOverMeanLoad),
    shares: p.shares.map(r4),
    meanOutstanding: p.meanOutstanding.map(r1),
    completed: p.completed,
    rejected: p.rejected,
    makespanS: r1(p.makespanS),
    preemptions: p.preemptions,
  };
  if (p.routerTotalBlocks !== undefined) out.routerPrefixMatch = r4(p.routerTotalBlocks > 0 ? p.routerMatchedBlocks! / p.routerTotalBlocks : 0);
  if (p.crossGatewayAgreement !== undefined) out.crossGatewayAgreement = r4(p.crossGatewayAgreement);
  if (p.crossWorkerAgreement !== undefined) out.crossWorkerAgreement = r4(p.crossWorkerAgreement);
  if (p.sameEntryAgreement !== undefined) out.sameEntryAgreement = r4(p.sameEntryAgreement);
  if (p.routerStats) out.routerStats = p.routerStats;
  return out;
}

export interface TargetCheck {
  workload: string;
  target: string;
  /** The measured ratio or value, and the bound it is held to. */
  value: number;
  bound: number;
  pass: boolean;
  detail: string;
}

const find = (w: WorkloadResult, name: string) => w.policies.find((p) => p.name === name);

export function checkTargets(results: readonly WorkloadResult[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const add = (w: WorkloadResult, target: string, value: number, bound: number, atLeast: boolean, detail: string) =>
    out.push({ workload: w.name, target, value, bound, pass: atLeast ? value >= bound : value <= bound, detail });
  for (const w of results) {
    const pr = find(w, 'prefix-router');
    if (!pr) continue;
    const rr = find(w, 'round-robin'), gie = find(w, 'gie-style'), ll = find(w, 'least-load');
    if (w.kind === 'shared-prefix' || w.kind === 'trace') {
      if (rr) add(w, 'throughput >= 1.3x round robin', pr.throughputRps / rr.throughputRps, 1.3, true, `${pr.throughputRps.toFixed(3)} vs ${rr.throughputRps.toFixed(3)} req/s`);
      if (gie) add(w, 'TTFT p95 <= GIE-style', pr.ttftP95Ms / gie.ttftP95Ms, 1, false, `${pr.ttftP95Ms.toFixed(0)} vs ${gie.ttftP95Ms.toFixed(0)} ms`);
      // First-admission hits: the engines' counters also count recomputation after preemption, which can exceed any oracle.
      add(w, 'hit rate >= 90% of oracle', w.oracleHitRate > 0 ? pr.firstAdmissionHitRate / w.oracleHitRate : 1, 0.9, true, `${pr.firstAdmissionHitRate.toFixed(3)} at first admission (counters ${pr.hitRate.toFixed(3)}) vs oracle ${w.oracleHitRate.toFixed(3)}`);
    }
    if (w.kind === 'hot-spot') add(w, 'max/mean load <= 1.25', pr.maxOverMeanLoad, 1.25, false, `shares ${pr.shares.map((s) => s.toFixed(3)).join(' / ')}`);
    if (w.kind === 'unique' && ll) add(w, 'throughput within 5% of least load', pr.throughputRps / ll.throughputRps, 0.95, true, `${pr.throughputRps.toFixed(3)} vs ${ll.throughputRps.toFixed(3)} req/s`);
    for (const v of ['prefix-router/4-workers', 'prefix-router/2-gateways']) {
      const p = find(w, v);
      if (!p) continue;
      const across = p.crossGatewayAgreement !== undefined ? `gateways ${p.crossGatewayAgreement.toFixed(3)}` : `worker VMs ${p.crossWorkerAgreement!.toFixed(3)}`;
      const agree = `; same-group agreement across ${across} (same entry point ${p.sameEntryAgreement!.toFixed(3)})`;
      add(w, `${v.split('/')[1]}: hit rate >= 95% of one worker's`, pr.hitRate > 0 ? p.hitRate / pr.hitRate : 1, 0.95, true, `${p.hitRate.toFixed(3)} vs ${pr.hitRate.toFixed(3)}${agree}`);
    }
  }
  return out;
}

export function toJson(results: readonly WorkloadResult[], meta: { seed: number; quick: boolean; stateDelivery: string }) {
  return {
    seed: meta.seed,
    quick: meta.quick,
    stateDelivery: meta.stateDelivery,
    workloads: results.map((w) => ({
      name: w.name,
      kind: w.kind,
      description: w.description,
      replicas: w.replicas,
      requests: w.requests,
      offeredRps: r4(w.offeredRps),
      oracleHitRate: r4(w.oracleHitRate),
      policies: w.policies.map(policyJson),
      filterWarnings: w.filterWarnings,
    })),
    targets: checkTargets(results).map((t) => ({ ...t, value: r4(t.value) })),
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

export function table(results: readonly WorkloadResult[]): string {
  const lines: string[] = [];
  for (const w of results) {
    lines.push('');
    lines.push(`${w.name}  (${w.replicas} replicas, ${w.requests} requests, ${w.offeredRps.toFixed(2)} req/s offered, oracle hit rate ${(w.oracleHitRate * 100).toFixed(1)}%)`);
    lines.push(`  ${w.description}`);
    lines.push('  ' + [pad('policy', 26), lpad('hit%', 6), lpad('1st%', 6), lpad('req/s', 7), lpad('TTFT50', 8), lpad('TTFT95', 8), lpad('E2E95', 8), lpad('max/mean', 8), lpad('preempt', 7), '  shares'].join(' '));
    for (const p of w.policies) {
      lines.push('  ' + [
        pad(p.name, 26), lpad((p.hitRate * 100).toFixed(1), 6), lpad((p.firstAdmissionHitRate * 100).toFixed(1), 6), lpad(p.throughputRps.toFixed(3), 7), lpad(p.ttftP50Ms.toFixed(0), 8),
        lpad(p.ttftP95Ms.toFixed(0), 8), lpad(p.e2eP95Ms.toFixed(0), 8), lpad(p.maxOverMeanLoad.toFixed(3), 8), lpad(String(p.preemptions), 7),
        '  ' + p.shares.map((s) => (s * 100).toFixed(0)).join('/') + (p.crossGatewayAgreement !== undefined ? `  agree(gw) ${(p.crossGatewayAgreement * 100).toFixed(1)}%` : '')
          + (p.crossWorkerAgreement !== undefined ? `  agree(vm) ${(p.crossWorkerAgreement * 100).toFixed(1)}%` : '')
          + (p.routerStats ? `  spills ${p.routerStats.loadBoundSpills}` : ''),
      ].join(' '));
    }
    for (const m of w.filterWarnings.slice(0, 5)) lines.push(`  filter: ${m}`);
  }
  const targets = checkTargets(results);
  if (targets.length) {
    lines.push('', 'Targets (prefix-router against the others in this run):');
    for (const t of targets) lines.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${pad(t.workload, 24)} ${pad(t.target, 44)} ${lpad(t.value.toFixed(3), 7)} (bound ${t.bound})  ${t.detail}`);
  }
  return lines.join('\n') + '\n';
}

// ---- HTML ----

export const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
export const COLORS = ['#8c8c8c', '#b5a642', '#5b8bd0', '#d1495b', '#e07a5f', '#81b29a', '#3d405b', '#9d4edd', '#f2a541'];

/** Horizontal bar chart, one bar per policy; an optional reference line (e.g. the oracle). */
function barChart(title: string, names: string[], values: number[], fmt: (v: number) => string, ref?: { value: number; label: string }): string {
  const rowH = 18, labelW = 190, chartW = 300, top = 22, h = top + names.length * rowH + 8;
  const max = Math.max(...values.filter(Number.isFinite), ref?.value ?? 0) || 1;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + chartW + 80}" height="${h}" font-family="sans-serif" font-size="11">`;
  s += `<text x="0" y="13" font-weight="bold">${esc(title)}</text>`;
  names.forEach((n, i) => {
    const y = top + i * rowH;
    const v = values[i]!;
    const w = Number.isFinite(v) ? (v / max) * chartW : 0;
    s += `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(n)}</text>`;
    s += `<rect x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${COLORS[i % COLORS.length]}"/>`;
    s += `<text x="${labelW + w + 4}" y="${y + 12}">${esc(fmt(v))}</text>`;
  });
  if (ref) {
    const x = labelW + (ref.value / max) * chartW;
    s += `<line x1="${x.toFixed(1)}" y1="${top - 4}" x2="${x.toFixed(1)}" y2="${h - 4}" stroke="#000" stroke-dasharray="4 3"/>`;
    s += `<text x="${(x + 3).toFixed(1)}" y="${top - 6}" font-size="10">${esc(ref.label)}</text>`;
  }
  return s + '</svg>';
}

/** Each policy's requests per replica as a stacked bar (equal segments = perfect balance). */
function sharesChart(names: string[], shares: number[][]): string {
  const rowH = 18, labelW = 190, chartW = 380, top = 22, h = top + names.length * rowH + 8;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + chartW + 10}" height="${h}" font-family="sans-serif" font-size="11">`;
  s += `<text x="0" y="13" font-weight="bold">Share of requests per replica</text>`;
  names.forEach((n, i) => {
    const y = top + i * rowH;
    s += `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(n)}</text>`;
    let x = labelW;
    shares[i]!.forEach((sh, k) => {
      const w = sh * chartW;
      s += `<rect x="${x.toFixed(1)}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 5}" fill="${COLORS[k % COLORS.length]}" stroke="#fff" stroke-width="0.5"><title>replica ${k}: ${(sh * 100).toFixed(1)}%</title></rect>`;
      x += w;
    });
  });
  return s + '</svg>';
}

export function html(results: readonly WorkloadResult[], meta: { seed: number; command: string; stateDelivery: string }): string {
  const targets = checkTargets(results);
  let body = `<h1>prefix-router routing quality</h1>
<p>Deterministic discrete-event simulation (seed ${meta.seed}): simulated vLLM replicas (T4 / Qwen2.5-3B latency model, 8400 KV blocks of 16 tokens each) in virtual time; every prefix-router decision made by the real <code>plugin/prefix-router.wasm</code> in the project's proxy-wasm host. ${esc(meta.stateDelivery)}</p>
<p>Command: <code>${esc(meta.command)}</code></p>`;
  body += '<h2>Targets</h2><table><tr><th></th><th>workload</th><th>target</th><th>value</th><th>bound</th><th>detail</th></tr>';
  for (const t of targets) body += `<tr class="${t.pass ? 'pass' : 'miss'}"><td>${t.pass ? 'PASS' : 'MISS'}</td><td>${esc(t.workload)}</td><td>${esc(t.target)}</td><td>${t.value.toFixed(3)}</td><td>${t.bound}</td><td>${esc(t.detail)}</td></tr>`;
  body += '</table>';
  for (const w of results) {
    const names = w.policies.map((p) => p.name);
    body += `<h2>${esc(w.name)}</h2><p>${esc(w.description)}. ${w.replicas} replicas, ${w.requests} requests, oracle hit rate ${(w.oracleHitRate * 100).toFixed(1)}%.</p>`;
    body += '<table><tr><th>policy</th><th>hit rate</th><th>at 1st admission</th><th>req/s</th><th>TTFT p50 ms</th><th>TTFT p95 ms</th><th>E2E p95 ms</th><th>max/mean</th><th>preemptions</th><th>shares</th></tr>';
    for (const p of w.policies) {
      body += `<tr><td>${esc(p.name)}</td><td>${(p.hitRate * 100).toFixed(1)}%</td><td>${(p.firstAdmissionHitRate * 100).toFixed(1)}%</td><td>${p.throughputRps.toFixed(3)}</td><td>${p.ttftP50Ms.toFixed(0)}</td><td>${p.ttftP95Ms.toFixed(0)}</td><td>${p.e2eP95Ms.toFixed(0)}</td><td>${p.maxOverMeanLoad.toFixed(3)}</td><td>${p.preemptions}</td><td>${p.shares.map((s) => (s * 100).toFixed(1)).join(' / ')}</td></tr>`;
    }
    body += '</table><div class="charts">';
    body += barChart('Throughput (req/s)', names, w.policies.map((p) => p.throughputRps), (v) => v.toFixed(2));
    body += barChart('Cache hit rate at first admission', names, w.policies.map((p) => p.firstAdmissionHitRate), (v) => `${(v * 100).toFixed(1)}%`, { value: w.oracleHitRate, label: 'oracle' });
    body += barChart('TTFT p95 (ms)', names, w.policies.map((p) => p.ttftP95Ms), (v) => v.toFixed(0));
    body += sharesChart(names, w.policies.map((p) => p.shares));
    body += '</div>';
  }
  return htmlPage(body);
}

/** A self-contained page (inline style, no scripts) around a report's body. */
export function htmlPage(body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>prefix-router routing quality</title><style>
body{font-family:sans-serif;max-width:1250px;margin:1em auto;padding:0 1em}table{border-collapse:collapse;font-size:12px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.pass td:first-child{color:#2a7d2a;font-weight:bold}tr.miss td:first-child{color:#b00020;font-weight:bold}
.charts{display:flex;flex-wrap:wrap;gap:12px 24px}code{background:#f3f3f3;padding:1px 3px}
</style></head><body>${body}</body></html>\n`;
}
