// Output of the load ladder: the JSON document, the targets of issue 15 for a
// router under test, the stdout table, and the HTML report, which opens with
// the answer per workload in words and TTFT p95 against offered load.
import type { LadderResult } from './ladder.js';
import { COLORS, esc, htmlPage } from './report.js';
import type { PolicyResult } from './simulation.js';

const r4 = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e4) / 1e4 : null);
const r1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null);
/** The rung whose TTFT p50/p95 headline the table (the operators' usual utilisation). */
export const HEADLINE_LOAD = 0.7;
/** Targets hold at every rung up to this load. */
export const TARGET_MAX_LOAD = 0.9;

function policyJson(p: PolicyResult) {
  const out: Record<string, unknown> = {
    name: p.name, hitRate: r4(p.hitRate), firstAdmissionHitRate: r4(p.firstAdmissionHitRate), throughputRps: r4(p.throughputRps),
    ttftP50Ms: r1(p.ttftP50Ms), ttftP95Ms: r1(p.ttftP95Ms), e2eP95Ms: r1(p.e2eP95Ms), maxOverMeanLoad: r4(p.maxOverMeanLoad),
    completed: p.completed, rejected: p.rejected, preemptions: p.preemptions,
  };
  if (p.routerTotalBlocks !== undefined) out.routerPrefixMatch = r4(p.routerTotalBlocks > 0 ? p.routerMatchedBlocks! / p.routerTotalBlocks : 0);
  if (p.crossGatewayAgreement !== undefined) out.crossGatewayAgreement = r4(p.crossGatewayAgreement);
  if (p.crossWorkerAgreement !== undefined) out.crossWorkerAgreement = r4(p.crossWorkerAgreement);
  if (p.routerStats) out.routerStats = p.routerStats;
  return out;
}

const at = (w: LadderResult, load: number) => w.rungs.find((r) => Math.abs(r.load - load) < 1e-9);
const find = (ps: readonly PolicyResult[], name: string) => ps.find((p) => p.name === name);

export interface LadderTarget { workload: string; router: string; target: string; value: number; bound: number; pass: boolean; detail: string }

/**
 * Issue 15's targets for `router` (prefix-router, or a prototype) against the others in the run.
 * Ratios at every rung up to TARGET_MAX_LOAD are reduced to the worst one.
 */
export function ladderTargets(results: readonly LadderResult[], router: string): LadderTarget[] {
  const out: LadderTarget[] = [];
  for (const w of results) {
    const rungs = w.rungs.filter((r) => r.load <= TARGET_MAX_LOAD + 1e-9 && find(r.policies, router));
    if (rungs.length === 0) continue;
    const add = (target: string, value: number, bound: number, atLeast: boolean, detail: string) =>
      out.push({ workload: w.name, router, target, value, bound, pass: atLeast ? value >= bound : value <= bound, detail });
    /** Worst ratio over the rungs of f(router) / f(other); `higherWorse` for latencies. */
    const worst = (other: string, f: (p: PolicyResult) => number, higherWorse: boolean) => {
      let v = higherWorse ? -Infinity : Infinity, where = '';
      for (const r of rungs) {
        const a = find(r.policies, router)!, b = find(r.policies, other);
        if (!b) continue;
        const x = f(b) > 0 ? f(a) / f(b) : f(a) > 0 ? Infinity : 1;
        if (higherWorse ? x > v : x < v) { v = x; where = `at ${Math.round(r.load * 100)}%: ${f(a).toFixed(3)} vs ${f(b).toFixed(3)}`; }
      }
      return { v, where };
    };
    for (const base of ['round-robin', 'least-load', 'gie-style', 'sglang-style']) {
      const { v, where } = worst(base, (p) => p.ttftP95Ms, true);
      if (Number.isFinite(v) || v === Infinity) add(`TTFT p95 <= ${base} (every rung <= 90%)`, v, 1, false, `worst ${where} ms`);
    }
    const g = (name: string) => w.goodput[name];
    if ((w.kind === 'shared-prefix' || w.kind === 'conversation' || w.kind === 'long-context' || w.kind === 'trace') && g(router) && g('round-robin')) {
      const a = g(router)!, b = g('round-robin')!;
      add('goodput >= 1.3x round robin', b.rps > 0 ? a.rps / b.rps : a.rps > 0 ? Infinity : 0, 1.3, true, `${a.rps.toFixed(3)} (${a.how}) vs ${b.rps.toFixed(3)} (${b.how}) req/s`);
    }
    if (w.kind !== 'unique' && w.kind !== 'hot-spot') {
      const { v, where } = worst('precise', (p) => p.firstAdmissionHitRate, false);
      if (Number.isFinite(v)) add('hit rate >= 0.9x precise (every rung <= 90%)', v, 0.9, true, `worst ${where}`);
    }
    if (w.kind === 'hot-spot') {
      let v = 0, where = '';
      for (const r of rungs) { const m = find(r.policies, router)!.maxOverMeanLoad; if (m > v) { v = m; where = `at ${Math.round(r.load * 100)}%`; } }
      add('max/mean load <= 1.25 (every rung <= 90%)', v, 1.25, false, `worst ${where}`);
    }
    if (w.kind === 'unique' && g(router) && g('least-load')) {
      const a = g(router)!, b = g('least-load')!;
      add('goodput within 5% of least load', b.rps > 0 ? a.rps / b.rps : 1, 0.95, true, `${a.rps.toFixed(3)} vs ${b.rps.toFixed(3)} req/s`);
    }
    const one = find(at(w, w.variantLoad)?.policies ?? [], router);
    for (const v of w.variants.filter((p) => p.name.startsWith(`${router}/`) && /\/(16-workers|4-gateways)$/.test(p.name))) {
      if (!one) continue;
      const label = v.name.slice(router.length + 1);
      add(`${label}: hit rate >= 0.95x one entry point's (at ${Math.round(w.variantLoad * 100)}%)`, one.firstAdmissionHitRate > 0 ? v.firstAdmissionHitRate / one.firstAdmissionHitRate : 1, 0.95, true, `${v.firstAdmissionHitRate.toFixed(3)} vs ${one.firstAdmissionHitRate.toFixed(3)}`);
      add(`${label}: TTFT p95 <= 1.05x one entry point's`, one.ttftP95Ms > 0 ? v.ttftP95Ms / one.ttftP95Ms : 1, 1.05, false, `${v.ttftP95Ms.toFixed(0)} vs ${one.ttftP95Ms.toFixed(0)} ms`);
    }
  }
  return out;
}

export function ladderJson(results: readonly LadderResult[], meta: Record<string, unknown>, routers: readonly string[]) {
  return {
    ...meta,
    workloads: results.map((w) => ({
      name: w.name, kind: w.kind, description: w.description, replicas: w.replicas, ...(w.kvBlocks !== undefined ? { kvBlocks: w.kvBlocks } : {}), sloMs: w.sloMs,
      capacity: { ...w.capacity, rps: r4(w.capacity.rps), offeredRps: r4(w.capacity.offeredRps), roundRobinHitRate: w.capacity.roundRobinHitRate === undefined ? undefined : r4(w.capacity.roundRobinHitRate) },
      goodput: Object.fromEntries(Object.entries(w.goodput).map(([k, v]) => [k, { rps: r4(v.rps), load: r4(v.load), how: v.how }])),
      rungs: w.rungs.map((r) => ({ load: r.load, offeredRps: r4(r.offeredRps), nominalRps: r4(r.nominalRps), requests: r.requests, oracleHitRate: r4(r.oracleHitRate), policies: r.policies.map(policyJson) })),
      variantLoad: w.variantLoad,
      variants: w.variants.map(policyJson),
      filterWarnings: w.filterWarnings,
    })),
    targets: routers.flatMap((r) => ladderTargets(results, r)).map((t) => ({ ...t, value: r4(t.value) })),
  };
}

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** One sentence per baseline: how `router` compares on goodput, TTFT at 70% and hit rate. */
export function answer(w: LadderResult, router: string): string[] {
  const head = at(w, HEADLINE_LOAD) ?? w.rungs[0];
  const me = head && find(head.policies, router);
  const gp = w.goodput[router];
  if (!me || !gp) return [];
  const out: string[] = [];
  const gpText = (g: { rps: number; how: string }) => g.how === 'below-ladder' ? 'none (TTFT p95 over the SLO at every rung)' : `${g.rps.toFixed(2)} req/s${g.how === 'above-ladder' ? ' or more' : ''}`;
  for (const other of ['round-robin', 'least-load', 'gie-style', 'sglang-style', 'precise']) {
    const o = find(head.policies, other), og = w.goodput[other];
    if (!o || !og) continue;
    const ratio = og.rps > 0 && gp.rps > 0 ? ` (${(gp.rps / og.rps).toFixed(2)}x)` : '';
    out.push(`against ${other}: goodput ${gpText(gp)} vs ${gpText(og)}${ratio}; at ${Math.round(head.load * 100)}% TTFT p95 ${me.ttftP95Ms.toFixed(0)} vs ${o.ttftP95Ms.toFixed(0)} ms, p50 ${me.ttftP50Ms.toFixed(0)} vs ${o.ttftP50Ms.toFixed(0)} ms; hit rate ${(me.firstAdmissionHitRate * 100).toFixed(1)}% vs ${(o.firstAdmissionHitRate * 100).toFixed(1)}%.`);
  }
  return out;
}

export function ladderTable(results: readonly LadderResult[], routers: readonly string[]): string {
  const lines: string[] = [];
  for (const w of results) {
    const c = w.capacity;
    if (c.method === 'trace') lines.push('', `${w.name}  (${w.replicas} replicas; the trace's own rate ${c.rps.toFixed(3)} req/s, rungs at --trace-rate multiples of it; SLO TTFT p95 <= ${w.sloMs} ms)`);
    else lines.push('', `${w.name}  (${w.replicas} replicas; round robin capacity ${c.rps.toFixed(3)} req/s, ${c.method}${c.roundRobinHitRate !== undefined ? ` with its hit rate ${(c.roundRobinHitRate * 100).toFixed(1)}%` : ''}${c.method === 'saturation' && !c.saturated ? ', NOT saturated' : ''}; SLO TTFT p95 <= ${w.sloMs} ms)`);
    lines.push(`  ${w.description}`);
    const names = w.rungs[0]?.policies.map((p) => p.name) ?? [];
    lines.push('  ' + [pad('policy', 24), lpad('goodput', 9), lpad('x cap', 6), ...w.rungs.map((r) => lpad(`p95@${Math.round(r.load * 100)}%`, 9)), lpad('p50@70', 7), lpad('hit@70', 7), lpad('mm@70', 6)].join(' '));
    const head = at(w, HEADLINE_LOAD);
    for (const n of names) {
      const g = w.goodput[n]!;
      const h = head && find(head.policies, n);
      lines.push('  ' + [pad(n, 24), lpad(`${g.how === 'above-ladder' ? '>=' : ''}${g.rps.toFixed(2)}`, 9), lpad(g.load.toFixed(2), 6),
        ...w.rungs.map((r) => { const p = find(r.policies, n); return lpad(p ? p.ttftP95Ms.toFixed(0) : '', 9); }),
        lpad(h ? h.ttftP50Ms.toFixed(0) : '', 7), lpad(h ? (h.firstAdmissionHitRate * 100).toFixed(1) : '', 7), lpad(h ? h.maxOverMeanLoad.toFixed(2) : '', 6)].join(' '));
    }
    lines.push('  ' + [pad('offered req/s', 24), lpad('', 9), lpad('', 6), ...w.rungs.map((r) => lpad(r.offeredRps.toFixed(2), 9))].join(' '));
    lines.push('  ' + [pad('oracle hit %', 24), lpad('', 9), lpad('', 6), ...w.rungs.map((r) => lpad((r.oracleHitRate * 100).toFixed(1), 9))].join(' '));
    if (w.variants.length) {
      lines.push(`  entry points at ${Math.round(w.variantLoad * 100)}%:`);
      for (const v of w.variants) {
        lines.push(`    ${pad(v.name, 30)} hit ${(v.firstAdmissionHitRate * 100).toFixed(1)}%  TTFT p50 ${v.ttftP50Ms.toFixed(0)}  p95 ${v.ttftP95Ms.toFixed(0)} ms  max/mean ${v.maxOverMeanLoad.toFixed(2)}`
          + (v.crossGatewayAgreement !== undefined ? `  agree(gw) ${(v.crossGatewayAgreement * 100).toFixed(1)}%` : '') + (v.crossWorkerAgreement !== undefined ? `  agree(vm) ${(v.crossWorkerAgreement * 100).toFixed(1)}%` : ''));
      }
    }
    for (const m of w.filterWarnings.slice(0, 5)) lines.push(`  filter: ${m}`);
  }
  for (const router of routers) {
    const targets = ladderTargets(results, router);
    if (!targets.length) continue;
    lines.push('', `Targets for ${router}:`);
    for (const t of targets) lines.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${pad(t.workload, 22)} ${pad(t.target, 52)} ${lpad(t.value.toFixed(3), 7)} (bound ${t.bound})  ${t.detail}`);
  }
  return lines.join('\n') + '\n';
}

// ---- HTML ----


/** TTFT p95 (log scale) against offered rate, one line per policy, the SLO dashed. */
function ttftChart(w: LadderResult): string {
  const W = 560, H = 300, L = 60, R = 180, T = 24, B = 36;
  const names = w.rungs[0]?.policies.map((p) => p.name) ?? [];
  const xs = w.rungs.map((r) => r.offeredRps);
  const ys = w.rungs.flatMap((r) => r.policies.map((p) => p.ttftP95Ms)).filter((v) => v > 0 && Number.isFinite(v));
  const xMax = Math.max(...xs) * 1.05 || 1;
  const yMin = Math.max(10, Math.min(...ys, w.sloMs) / 1.5), yMax = Math.max(...ys, w.sloMs) * 1.5;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => T + (1 - (Math.log(v) - Math.log(yMin)) / (Math.log(yMax) - Math.log(yMin))) * (H - T - B);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`;
  s += `<text x="${L}" y="14" font-weight="bold">${esc(w.name)}: TTFT p95 (ms, log) against offered req/s</text>`;
  s += `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#000"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#000"/>`;
  for (let d = Math.pow(10, Math.floor(Math.log10(yMin))); d <= yMax; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v < yMin || v > yMax) continue;
      s += `<line x1="${L - 3}" y1="${y(v).toFixed(1)}" x2="${W - R}" y2="${y(v).toFixed(1)}" stroke="#eee"/><text x="${L - 5}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v >= 1000 ? `${v / 1000}k` : v}</text>`;
    }
  }
  for (const r of w.rungs) s += `<text x="${x(r.offeredRps).toFixed(1)}" y="${H - B + 14}" text-anchor="middle">${r.offeredRps.toFixed(1)}</text>`;
  s += `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">offered req/s (rungs at ${w.rungs.map((r) => `${Math.round(r.load * 100)}%`).join(', ')} of round robin's capacity)</text>`;
  s += `<line x1="${L}" y1="${y(w.sloMs).toFixed(1)}" x2="${W - R}" y2="${y(w.sloMs).toFixed(1)}" stroke="#000" stroke-dasharray="5 3"/><text x="${W - R + 4}" y="${(y(w.sloMs) + 4).toFixed(1)}">SLO ${w.sloMs} ms</text>`;
  names.forEach((n, i) => {
    const pts = w.rungs.flatMap((r) => r.policies.filter((p) => p.name === n).map((p) => `${x(r.offeredRps).toFixed(1)},${y(Math.min(yMax, Math.max(yMin, p.ttftP95Ms))).toFixed(1)}`));
    const c = COLORS[i % COLORS.length];
    const dash = n.startsWith('proto') || n === 'precise' ? ' stroke-dasharray="3 2"' : '';
    s += `<polyline points="${pts.join(' ')}" fill="none" stroke="${c}" stroke-width="${n === 'prefix-router' ? 2.5 : 1.5}"${dash}/>`;
    s += `<line x1="${W - R + 8}" y1="${T + 20 + i * 15}" x2="${W - R + 28}" y2="${T + 20 + i * 15}" stroke="${c}" stroke-width="2"${dash}/><text x="${W - R + 32}" y="${T + 24 + i * 15}">${esc(n)}</text>`;
  });
  return s + '</svg>';
}

export function ladderHtml(results: readonly LadderResult[], meta: { seed: number; command: string; stateDelivery: string }, routers: readonly string[]): string {
  let body = `<h1>prefix-router routing quality: load ladder</h1>
<p>Deterministic discrete-event simulation (seed ${meta.seed}); every prefix-router decision is made by the real <code>plugin/prefix-router.wasm</code> in the project's proxy-wasm host. <code>precise</code> routes on the engines' exact caches (the upper bound); <code>proto-*</code> are TypeScript prototypes of proposed routing changes, not product results. ${esc(meta.stateDelivery)}</p>
<p>Command: <code>${esc(meta.command)}</code></p><h2>The answer, per workload</h2>`;
  for (const w of results) {
    body += `<h3>${esc(w.name)}</h3><ul>${answer(w, 'prefix-router').map((s) => `<li>prefix-router ${esc(s)}</li>`).join('')}</ul>`;
  }
  body += '<h2>TTFT p95 against offered load</h2><div class="charts">' + results.map(ttftChart).join('') + '</div>';
  body += '<h2>Targets</h2>';
  for (const router of routers) {
    const targets = ladderTargets(results, router);
    if (!targets.length) continue;
    body += `<h3>${esc(router)}</h3><table><tr><th></th><th>workload</th><th>target</th><th>value</th><th>bound</th><th>detail</th></tr>`;
    for (const t of targets) body += `<tr class="${t.pass ? 'pass' : 'miss'}"><td>${t.pass ? 'PASS' : 'MISS'}</td><td>${esc(t.workload)}</td><td>${esc(t.target)}</td><td>${t.value.toFixed(3)}</td><td>${t.bound}</td><td>${esc(t.detail)}</td></tr>`;
    body += '</table>';
  }
  body += '<h2>Per workload</h2>';
  for (const w of results) {
    body += `<h3>${esc(w.name)}</h3><p>${esc(w.description)}. ${w.replicas} replicas; round robin capacity ${w.capacity.rps.toFixed(3)} req/s (${w.capacity.method}); SLO ${w.sloMs} ms.</p>`;
    body += `<table><tr><th>policy</th><th>goodput req/s</th><th>x capacity</th>${w.rungs.map((r) => `<th>TTFT p95 @${Math.round(r.load * 100)}% (${r.offeredRps.toFixed(2)}/s)</th>`).join('')}<th>hit @70%</th></tr>`;
    for (const n of w.rungs[0]?.policies.map((p) => p.name) ?? []) {
      const g = w.goodput[n]!;
      const h = at(w, HEADLINE_LOAD) && find(at(w, HEADLINE_LOAD)!.policies, n);
      body += `<tr><td>${esc(n)}</td><td>${g.how === 'above-ladder' ? '&ge; ' : ''}${g.rps.toFixed(2)}</td><td>${g.load.toFixed(2)}</td>${w.rungs.map((r) => `<td>${find(r.policies, n)?.ttftP95Ms.toFixed(0) ?? ''}</td>`).join('')}<td>${h ? (h.firstAdmissionHitRate * 100).toFixed(1) + '%' : ''}</td></tr>`;
    }
    body += '</table>';
    if (w.variants.length) {
      body += `<table><tr><th>entry points (at ${Math.round(w.variantLoad * 100)}%)</th><th>hit rate</th><th>TTFT p50</th><th>TTFT p95</th><th>max/mean</th></tr>`;
      for (const v of w.variants) body += `<tr><td>${esc(v.name)}</td><td>${(v.firstAdmissionHitRate * 100).toFixed(1)}%</td><td>${v.ttftP50Ms.toFixed(0)}</td><td>${v.ttftP95Ms.toFixed(0)}</td><td>${v.maxOverMeanLoad.toFixed(2)}</td></tr>`;
      body += '</table>';
    }
  }
  return htmlPage(body);
}
