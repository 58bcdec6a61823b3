// Self-contained HTML report of a gateway benchmark run (bench/gateway.ts).

import type { GatewayBenchResult } from '../gateway.js';
import { barChart, cdf, escapeHtml, htmlPage, lineChart } from './svg.js';

const bars = (counts: Record<string, number>) => Object.entries(counts).map(([label, value]) => ({ label, value }));

function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

export function renderGatewayReport(r: GatewayBenchResult): string {
  const healthy = r.health.total > 0 && r.health.ready === r.health.total;
  const oneReplica = r.prefixRouting.ok > 0 && r.prefixRouting.distinctReplicas === 1;
  const body: string[] = [];
  body.push(`<h1>Gateway benchmark</h1>`);
  body.push(table([
    ['Gateway', escapeHtml(r.gateway)],
    ['Model', escapeHtml(r.model)],
    ['Started', escapeHtml(r.startedAt)],
    ['Duration', `${(r.durationMs / 1000).toFixed(1)} s`],
  ]));

  body.push(`<h2>Health</h2>`);
  body.push(`<p class="${healthy ? 'ok' : 'bad'}">${r.health.ready} of ${r.health.total} replicas ready <span class="muted">(${escapeHtml(r.health.source)})</span></p>`);
  if (r.health.replicas.length) {
    body.push(`<table><tr><th>Replica</th><th>Ready</th><th>Detail</th></tr>${r.health.replicas.map((h) =>
      `<tr><td>${escapeHtml(h.replica)}</td><td class="${h.ready ? 'ok' : 'bad'}">${h.ready ? 'yes' : 'no'}</td><td>${escapeHtml(h.detail)}</td></tr>`).join('')}</table>`);
  }

  body.push(`<h2>Prefix-cache routing</h2>`);
  body.push(`<p>${r.prefixRouting.requests} sequential requests sharing one system prompt; ${r.prefixRouting.ok} answered, by
    <b class="${oneReplica ? 'ok' : 'bad'}">${r.prefixRouting.distinctReplicas} distinct replica(s)</b> (1 is ideal).</p>`);
  body.push(`<div class="charts">${barChart(bars(r.prefixRouting.replicas), { title: 'Shared-prefix requests per replica', unit: ' requests' })}${barChart(
    r.prefixRouting.cachedTokens.map((v, i) => ({ label: `#${i + 1}`, value: v, color: '#59a14f' })), { title: 'Cached prompt tokens per request (usage)', unit: ' tokens' })}</div>`);
  body.push(`<p class="muted">Sequence: ${r.prefixRouting.sequence.map(escapeHtml).join(' → ')}</p>`);

  body.push(`<h2>Load distribution</h2>`);
  body.push(`<p>Concurrent requests with distinct prompts, per replica.</p>`);
  body.push(`<div class="charts">${barChart(bars(r.distribution), { title: 'Distinct-prompt requests per replica', unit: ' requests' })}${barChart(bars(r.throughput.replicas), { title: 'Throughput-phase requests per replica', unit: ' requests' })}</div>`);

  body.push(`<h2>Throughput and latency</h2>`);
  body.push(table([
    ['Concurrency', String(r.throughput.concurrency)],
    ['Requests ok / sent', `${r.throughput.ok} / ${r.throughput.requests}`],
    ['Wall time', `${r.throughput.wallMs} ms`],
    ['Requests/s', String(r.throughput.rps)],
    ['Output tokens/s', String(r.throughput.outputTokensPerSec)],
    ['Latency p50 / p95 / p99', `${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99} ms`],
    ['TTFT p50 / p95 / p99', `${r.ttftMs.p50} / ${r.ttftMs.p95} / ${r.ttftMs.p99} ms`],
  ]));
  body.push(`<div class="charts">${barChart([
    { label: 'p50', value: r.latencyMs.p50 }, { label: 'p95', value: r.latencyMs.p95 }, { label: 'p99', value: r.latencyMs.p99 },
    { label: 'TTFT p50', value: r.ttftMs.p50, color: '#76b7b2' }, { label: 'TTFT p95', value: r.ttftMs.p95, color: '#76b7b2' }, { label: 'TTFT p99', value: r.ttftMs.p99, color: '#76b7b2' },
  ].map((b) => ({ ...b, value: Number.isFinite(b.value) ? b.value : 0 })), { title: 'Latency percentiles', unit: ' ms' })}${lineChart(
    [{ name: 'end-to-end', points: cdf(r.samples.latencyMs) }, { name: 'time to first token', points: cdf(r.samples.ttftMs) }],
    { title: 'Latency CDF', xLabel: 'ms', yLabel: 'fraction of requests', yMax: 1 })}</div>`);

  if (r.errors.length) body.push(`<h2>Errors</h2><ul>${r.errors.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`);
  return htmlPage('Gateway benchmark', body.join('\n'));
}
