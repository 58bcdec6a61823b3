// Minimal inline-SVG charts for self-contained HTML reports (no scripts, no external assets).

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const color = (i: number) => PALETTE[i % PALETTE.length]!;

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** A "nice" axis maximum at or above v. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export interface Bar { label: string; value: number; color?: string }

/** Vertical bar chart with value labels. */
export function barChart(bars: readonly Bar[], opts: { title: string; unit?: string; width?: number; height?: number }): string {
  const width = opts.width ?? 520, height = opts.height ?? 260;
  const left = 48, right = 12, top = 30, bottom = 48;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const slot = bars.length ? plotW / bars.length : plotW;
  const barW = Math.min(60, slot * 0.7);
  const parts: string[] = [];
  parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" class="t">${escapeHtml(opts.title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, y = top + plotH - (plotH * i) / 4;
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" class="g"/><text x="${left - 6}" y="${y + 4}" text-anchor="end" class="a">${fmt(v)}</text>`);
  }
  bars.forEach((b, i) => {
    const h = (plotH * Math.max(0, b.value)) / max;
    const x = left + slot * i + (slot - barW) / 2, y = top + plotH - h;
    parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${b.color ?? color(i)}"><title>${escapeHtml(b.label)}: ${fmt(b.value)}${opts.unit ?? ''}</title></rect>`);
    parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}" text-anchor="middle" class="v">${fmt(b.value)}</text>`);
    const label = b.label.length > 18 ? b.label.slice(0, 17) + '…' : b.label;
    parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" class="a">${escapeHtml(label)}</text>`);
  });
  if (opts.unit) parts.push(`<text x="12" y="${top + plotH / 2}" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle" class="a">${escapeHtml(opts.unit.trim())}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(opts.title)}">${parts.join('')}</svg>`;
}

export interface Series { name: string; points: readonly [number, number][]; color?: string }

/** Line chart (e.g. a latency CDF) with a legend. */
export function lineChart(series: readonly Series[], opts: { title: string; xLabel: string; yLabel: string; yMax?: number; width?: number; height?: number }): string {
  const width = opts.width ?? 520, height = opts.height ?? 260;
  const left = 52, right = 12, top = 30, bottom = 44;
  const plotW = width - left - right, plotH = height - top - bottom;
  const all = series.flatMap((s) => s.points);
  const xMax = niceMax(Math.max(0, ...all.map((p) => p[0])));
  const yMax = opts.yMax ?? niceMax(Math.max(0, ...all.map((p) => p[1])));
  const X = (x: number) => left + (plotW * x) / xMax, Y = (y: number) => top + plotH - (plotH * y) / yMax;
  const parts: string[] = [`<text x="${width / 2}" y="18" text-anchor="middle" class="t">${escapeHtml(opts.title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const yv = (yMax * i) / 4, xv = (xMax * i) / 4;
    parts.push(`<line x1="${left}" x2="${width - right}" y1="${Y(yv)}" y2="${Y(yv)}" class="g"/><text x="${left - 6}" y="${Y(yv) + 4}" text-anchor="end" class="a">${fmt(yv)}</text>`);
    parts.push(`<text x="${X(xv)}" y="${top + plotH + 16}" text-anchor="middle" class="a">${fmt(xv)}</text>`);
  }
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color ?? color(i)}" stroke-width="2"/>`);
    parts.push(`<rect x="${left + 8}" y="${top + 6 + 16 * i}" width="10" height="10" fill="${s.color ?? color(i)}"/><text x="${left + 22}" y="${top + 15 + 16 * i}" class="a">${escapeHtml(s.name)}</text>`);
  });
  parts.push(`<text x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle" class="a">${escapeHtml(opts.xLabel)}</text>`);
  parts.push(`<text x="12" y="${top + plotH / 2}" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle" class="a">${escapeHtml(opts.yLabel)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(opts.title)}">${parts.join('')}</svg>`;
}

/** Empirical CDF points of a sample. */
export function cdf(values: readonly number[]): [number, number][] {
  const s = [...values].sort((a, b) => a - b);
  return s.map((v, i) => [v, (i + 1) / s.length]);
}

export const REPORT_CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}th{background:#f5f5f5}
.charts{display:flex;flex-wrap:wrap;gap:16px}.ok{color:#2a7}.bad{color:#c33}.muted{color:#777}
svg .t{font-size:14px;font-weight:600}svg .a{font-size:11px;fill:#555}svg .v{font-size:11px;fill:#222}svg .g{stroke:#eee}`;

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>${body}</body></html>\n`;
}
