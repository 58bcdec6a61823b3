// `prefix-router top`: a live view per replica in the terminal, from the control plane
// (GET /v1/replicas: queue, KV use, the engine's own hit rate) and a gateway's admin listener
// (GET /stats/prometheus: the filter's per-replica stats, plugin/METRICS.md). Shares and rates
// are over the last refresh; the first frame shows totals since the gateway started.
import { parseArgs } from 'node:util';
import { parseIntFlag } from './toolArgs.js';

export const TOP_USAGE = `usage: prefix-router top [options]
  --control-plane URL   the control plane (default http://127.0.0.1:9090)
  --admin URL           a gateway's admin listener, Envoy's or npm start's (default http://127.0.0.1:9901)
  --interval-ms N       refresh every N ms (default 1000)
  --once                print one frame and exit (two samples --interval-ms apart, for rates)
  -h, --help`;

/** One replica as the control plane reports it (GET /v1/replicas). */
export interface TopReplica {
  address: string;
  ready: boolean;
  stale: boolean;
  waiting: number | null;
  running: number | null;
  kvUsage: number | null;
  hitRate: number | null;
}

/** The filter's counters, from the admin listener; null when it could not be read. */
export interface FilterStats {
  routed: number;
  spills: number;
  fallbackLoadOnly: number;
  fallbackStaleState: number;
  stateVersion: number | null;
  controlPlaneAgeMs: number | null;
  /** Per replica, by its address as the stat name holds it (Envoy's sanitized form). */
  replicas: Map<string, { requests: number; matched: number; total: number; passedOver: number }>;
}

export interface TopSample {
  atMs: number;
  controlPlaneVersion: string | null;
  replicas: TopReplica[];
  filter: FilterStats | null;
  errors: string[];
}

/** A stat name's replica segment as Envoy's Prometheus output writes it: `10.0.0.1:8000` -> `10_0_0_1_8000`. */
export const statSuffix = (address: string): string => address.replace(/[^a-zA-Z0-9_]/g, '_');

const FAMILIES = {
  prefix_router_replica_requests_: 'requests',
  prefix_router_replica_prefix_blocks_matched_: 'matched',
  prefix_router_replica_prefix_blocks_total_: 'total',
  prefix_router_replica_load_bound_passed_over_: 'passedOver',
} as const;

/** Reads the filter's stats out of Prometheus text (Envoy's /stats/prometheus). */
export function parseFilterStats(text: string): FilterStats {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) values.set(m[1], (values.get(m[1]) ?? 0) + v);
  }
  const replicas: FilterStats['replicas'] = new Map();
  for (const [name, v] of values) {
    for (const [prefix, field] of Object.entries(FAMILIES) as Array<[string, 'requests' | 'matched' | 'total' | 'passedOver']>) {
      if (!name.startsWith(prefix)) continue;
      const key = name.slice(prefix.length);
      let r = replicas.get(key);
      if (!r) replicas.set(key, (r = { requests: 0, matched: 0, total: 0, passedOver: 0 }));
      r[field] += v;
    }
  }
  const get = (n: string) => values.get(n) ?? 0;
  return {
    routed: get('prefix_router_requests_routed'),
    spills: get('prefix_router_load_bound_spills'),
    fallbackLoadOnly: get('prefix_router_fallback_load_only'),
    fallbackStaleState: get('prefix_router_fallback_stale_state'),
    stateVersion: values.get('prefix_router_state_version') ?? null,
    controlPlaneAgeMs: values.get('prefix_router_control_plane_age_ms') ?? null,
    replicas,
  };
}

interface ReplicasAnswer {
  version?: string;
  replicas?: Array<{ address: string; ready: boolean; stale: boolean; observedHitRate: number | null; metrics: { waiting?: number; running?: number; kvUsage?: number } | null }>;
}

/** One sample of both sources; a source that cannot be read is an error line, not a failure. */
export async function sampleTop(controlPlane: string, admin: string, timeoutMs = 2000): Promise<TopSample> {
  const errors: string[] = [];
  const get = async (url: string): Promise<Response | null> => {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!r.ok) { errors.push(`${url}: HTTP ${r.status}`); return null; }
      return r;
    } catch (e) {
      errors.push(`${url}: ${(e as Error).message}`);
      return null;
    }
  };
  const [cpRes, adminRes] = await Promise.all([get(`${controlPlane}/v1/replicas`), get(`${admin}/stats/prometheus`)]);
  let replicas: TopReplica[] = [];
  let version: string | null = null;
  if (cpRes) {
    const body = (await cpRes.json()) as ReplicasAnswer;
    version = body.version ?? null;
    replicas = (body.replicas ?? []).map((r) => ({
      address: r.address, ready: r.ready, stale: r.stale,
      waiting: r.metrics?.waiting ?? null, running: r.metrics?.running ?? null, kvUsage: r.metrics?.kvUsage ?? null, hitRate: r.observedHitRate,
    }));
  }
  const filter = adminRes ? parseFilterStats(await adminRes.text()) : null;
  return { atMs: Date.now(), controlPlaneVersion: version, replicas, filter, errors };
}

const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null, digits = 0) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));

/**
 * The frame for `now`: per replica its share of requests and requests/s (since `prev`, or since
 * the gateway started), queue, KV use, the engine's hit rate, the filter's prefix match and the
 * guard's passes over it. Pure: the terminal loop and the tests call it alike.
 */
export function renderTop(now: TopSample, prev: TopSample | null): string {
  const seconds = prev ? Math.max(0.001, (now.atMs - prev.atMs) / 1000) : null;
  const delta = (cur: number, old: number | undefined) => (prev && old !== undefined ? Math.max(0, cur - old) : cur);
  const f = now.filter, pf = prev?.filter ?? null;
  const routed = f ? delta(f.routed, pf?.routed) : null;
  const rows: string[][] = [['REPLICA', 'STATE', 'SHARE', 'REQ/S', 'QUEUE', 'RUNNING', 'KV USE', 'HIT RATE', 'MATCHED', 'PASSED OVER']];
  const addresses = new Set(now.replicas.map((r) => r.address));
  const list: TopReplica[] = [...now.replicas];
  // Replicas the filter counted that the control plane no longer lists (removed) still show their traffic.
  if (f) for (const key of f.replicas.keys()) if (![...addresses].some((a) => statSuffix(a) === key)) list.push({ address: key, ready: false, stale: false, waiting: null, running: null, kvUsage: null, hitRate: null });
  for (const r of list.sort((a, b) => (a.address < b.address ? -1 : 1))) {
    const key = addresses.has(r.address) ? statSuffix(r.address) : r.address;
    const s = f?.replicas.get(key);
    const ps = pf?.replicas.get(key);
    const req = s ? delta(s.requests, ps?.requests) : null;
    const matched = s ? delta(s.matched, ps?.matched) : null;
    const total = s ? delta(s.total, ps?.total) : null;
    rows.push([
      r.address,
      !addresses.has(r.address) ? 'gone' : r.ready ? 'ready' : r.stale ? 'stale' : 'not ready',
      req !== null && routed ? pct(req / routed) : '-',
      req !== null && seconds ? num(req / seconds, 1) : '-',
      num(r.waiting), num(r.running), pct(r.kvUsage), pct(r.hitRate),
      matched !== null && total ? pct(matched / total) : '-',
      s ? num(delta(s.passedOver, ps?.passedOver)) : '-',
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const table = rows.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
  const span = seconds ? `last ${seconds.toFixed(1)} s` : 'since the gateway started';
  const head = [
    `prefix-router top  ${new Date(now.atMs).toISOString()}  (${span})`,
    `state: control plane v${now.controlPlaneVersion ?? '-'}, gateway routes on v${f?.stateVersion ?? '-'}, control plane heard ${f?.controlPlaneAgeMs === null || f === null ? '-' : `${Math.round(f.controlPlaneAgeMs)} ms`} ago`,
    f
      ? `requests: ${routed}${seconds ? ` (${num(routed! / seconds, 1)}/s)` : ''}, guard spills ${delta(f.spills, pf?.spills)}, load-only ${delta(f.fallbackLoadOnly, pf?.fallbackLoadOnly)}, stale-state ${delta(f.fallbackStaleState, pf?.fallbackStaleState)}`
      : 'requests: - (gateway stats not readable)',
    '',
  ];
  return [...head, ...table, ...now.errors.map((e) => `! ${e}`)].join('\n') + '\n';
}

export async function runTopCli(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args, strict: true, allowPositionals: false,
      options: { 'control-plane': { type: 'string' }, admin: { type: 'string' }, 'interval-ms': { type: 'string' }, once: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    console.error(`prefix-router top: ${(e as Error).message}\n${TOP_USAGE}`);
    return 2;
  }
  if (values.help) { console.log(TOP_USAGE); return 0; }
  const cp = (values['control-plane'] ?? 'http://127.0.0.1:9090').replace(/\/+$/, '');
  const admin = (values.admin ?? 'http://127.0.0.1:9901').replace(/\/+$/, '');
  let interval = 1000;
  try {
    if (values['interval-ms'] !== undefined) interval = parseIntFlag('interval-ms', values['interval-ms'], 100, 3_600_000);
  } catch (e) {
    console.error(`prefix-router top: ${(e as Error).message}\n${TOP_USAGE}`);
    return 2;
  }
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  if (values.once) {
    const first = await sampleTop(cp, admin);
    await sleep(interval);
    const second = await sampleTop(cp, admin);
    process.stdout.write(renderTop(second, first));
    return second.errors.length === 0 ? 0 : 1;
  }
  let stopped = false;
  const stop = () => { stopped = true; };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let prev: TopSample | null = null;
  while (!stopped) {
    const now = await sampleTop(cp, admin);
    const frame = renderTop(now, prev);
    // On a terminal each frame replaces the last; piped, frames follow each other.
    process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
    prev = now;
    for (let waited = 0; waited < interval && !stopped; waited += 100) await sleep(Math.min(100, interval - waited));
  }
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return 0;
}
