// Where a bench:peers point's slow requests came from, from its per-request records
// (logs/requests_TAG.jsonl) and, when the point ran with --trace-replicas, its replicas' engine
// gauges (logs/replicaTrace_TAG.jsonl); and, from the point's request stream rebuilt (the same
// shape, replicas, load, seed and duration give the same stream), which requests found less of
// their prompt cached than another replica had prefilled already. One block per point found.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toolArgs } from '../../cli/toolArgs.js';
import { DEFAULT_WORKLOAD_DIR, sharedPrefixTokens, type SimRequest } from '../routing/workloads.js';
import type { RequestRecord } from './loadgen.js';
import { pointOfTag, pointWorkload } from './main.js';
import { peerShapes } from './shapes.js';

export type RequestRecordWithGroup = RequestRecord & { group: string | null; warmup?: boolean };

/** A request found at least this many tokens fewer cached than another had prefilled: it is listed. */
const LEFT_TOKENS = 1024;

/**
 * A measured request and the most of its prompt cached anywhere when it was sent, as far as the
 * stream tells: the longest run of leading blocks it shares with a request whose first token had
 * come by then (its replica had prefilled the prompt, and holds it until evicted), and that
 * request's replica. A request whose own replica had less cached was sent away from the reuse, or
 * its holder had evicted it; one with as much could not have found more by where it went.
 */
export interface CacheLeft { record: RequestRecordWithGroup; availableTokens: number; holder: string | null }

/** For each ok, measured record in `records` (ids as in `requests`), what was cached elsewhere (CacheLeft). */
export function cacheLeft(records: RequestRecordWithGroup[], requests: readonly SimRequest[]): CacheLeft[] {
  const byId = new Map(requests.map((r) => [r.id, r]));
  const prefilled = records.filter((r) => r.ok && byId.has(r.id)).map((r) => ({ record: r, doneMs: r.sentMs + r.ttftMs, req: byId.get(r.id)! }));
  const out: CacheLeft[] = [];
  for (const record of records) {
    const req = byId.get(record.id);
    if (!record.ok || record.warmup || !req) continue;
    let best = 0, holder: string | null = null;
    for (const p of prefilled) {
      if (p.doneMs > record.sentMs || p.record === record) continue;
      const tokens = sharedPrefixTokens(p.req, req);
      if (tokens > best) { best = tokens; holder = p.record.replica; }
    }
    out.push({ record, availableTokens: best, holder });
  }
  return out;
}

/** The report's line on cacheLeft's answer: how many found LEFT_TOKENS fewer cached than was, the slowest of them listed. */
export function cacheLeftLine(left: CacheLeft[], listed = 8): string {
  const short = left.filter((x) => x.availableTokens - x.record.cachedTokens >= LEFT_TOKENS).sort((a, b) => b.record.ttftMs - a.record.ttftMs);
  const list = short.slice(0, listed).map((x) => `#${x.record.id} ${x.record.cachedTokens}/${x.availableTokens} on ${x.record.replica} (held on ${x.holder}) TTFT ${Math.round(x.record.ttftMs)}`);
  const tokens = short.reduce((a, x) => a + x.availableTokens - x.record.cachedTokens, 0);
  return `  cached elsewhere: ${short.length} of ${left.length} measured requests found ${LEFT_TOKENS}+ tokens fewer cached than a replica had prefilled already (${tokens} tokens)${list.length ? `: ${list.join('; ')}${short.length > listed ? '; ...' : ''}` : ''}`;
}

/**
 * What a request's prompt start was on the replica it went to: `warm` (the replica served its whole
 * shared prefix from cache), else `first` (no request of its group was sent before), `copy` (its
 * group had only gone to other replicas) or `refill` (its group had gone to this replica, which no
 * longer held it).
 */
export type PrefixKind = 'warm' | 'first' | 'copy' | 'refill';

/** Each record's kind, in order of sending; `sharedTokens`: the shape's shared prefix. */
export function classify(records: RequestRecordWithGroup[], sharedTokens: number): { record: RequestRecordWithGroup; kind: PrefixKind }[] {
  const sent = new Map<string, Set<string>>();
  return [...records].sort((a, b) => a.sentMs - b.sentMs).map((record) => {
    const group = record.group ?? `#${record.id}`;
    const replicas = sent.get(group) ?? new Set<string>();
    const replica = record.replica ?? '?';
    const kind: PrefixKind = record.cachedTokens >= sharedTokens ? 'warm' : replicas.size === 0 ? 'first' : replicas.has(replica) ? 'refill' : 'copy';
    replicas.add(replica);
    sent.set(group, replicas);
    return { record, kind };
  });
}

interface TraceSample { t: number; replicas: { waiting: number; running: number; kv: number }[] }

const median = (v: number[]) => (v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]! : NaN);
const readLines = <T>(file: string): T[] => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

/** The report of one point: requests by kind (count, slow, median TTFT) and, with a trace, how often replicas had a queue. */
export function pointReport(records: RequestRecordWithGroup[], trace: TraceSample[] | null, sharedTokens: number, slowMs: number, fromMs = 6000): string[] {
  const ok = records.filter((r) => r.ok);
  const out = [`  ${ok.length}/${records.length} ok, ${ok.filter((r) => r.ttftMs > slowMs).length} with TTFT > ${slowMs} ms`];
  const rows = classify(ok, sharedTokens);
  for (const kind of ['warm', 'first', 'copy', 'refill'] as PrefixKind[]) {
    const of = rows.filter((x) => x.kind === kind).map((x) => x.record.ttftMs);
    if (of.length) out.push(`  ${kind.padEnd(7)} ${String(of.length).padStart(4)} requests, ${of.filter((t) => t > slowMs).length} slow, TTFT median ${Math.round(median(of))} ms, max ${Math.round(Math.max(...of))}`);
  }
  if (trace?.length) {
    const late = trace.filter((s) => s.t >= fromMs);
    const n = late[0]?.replicas.length ?? 0;
    const share = (f: (r: TraceSample['replicas'][number]) => boolean) => Array.from({ length: n }, (_, i) => (late.filter((s) => f(s.replicas[i]!)).length / late.length).toFixed(2));
    const mean = (f: (r: TraceSample['replicas'][number]) => number) => (late.reduce((a, s) => a + s.replicas.reduce((b, r) => b + f(r), 0), 0) / late.length / n).toFixed(2);
    out.push(`  from ${fromMs / 1000} s: share of samples with requests waiting, per replica ${share((r) => r.waiting > 0).join(' ')}; KV use > 0.9 ${share((r) => r.kv > 0.9).join(' ')}`);
    out.push(`  mean per replica: running ${mean((r) => r.running)}, waiting ${mean((r) => r.waiting)}`);
  }
  return out;
}

const USAGE = `usage: node --import tsx bench/peers/requestsReport.ts OUT_DIR [SHARED_TOKENS] [SLOW_MS] [options]
  SHARED_TOKENS        the shape's shared prefix, for each request's kind (default 2048: sp-32x32's)
  SLOW_MS              a request slower than this is slow (default 1700: sp-32x32's SLO)
  --seed N             the run's --seed (default 1), to rebuild each point's request stream
  --duration-s S       the run's --duration-s (default 20)
  --workloads DIR      the run's --workloads (default ${DEFAULT_WORKLOAD_DIR})`;

export function main(argv: string[]): number {
  const { values: v, positionals, fail, int, positive } = toolArgs('requestsReport', USAGE, {
    seed: { type: 'string' }, 'duration-s': { type: 'string' }, workloads: { type: 'string' },
  }, true, argv);
  const [dir, shared, slow] = positionals;
  if (!dir) return fail('OUT_DIR is required');
  const logs = join(dir, 'logs');
  if (!existsSync(logs)) return fail(`${logs}: no such directory (OUT_DIR is a bench:peers --out directory)`);
  const sharedTokens = Number(shared ?? 2048);
  const slowMs = Number(slow ?? 1700);
  if (!(sharedTokens >= 0) || !(slowMs > 0)) return fail(`SHARED_TOKENS '${shared}' and SLOW_MS '${slow}' must be numbers`);
  const seed = int('seed', v.seed, 1, 0);
  const durationS = positive('duration-s', v['duration-s'], 20);
  const shapes = peerShapes(v.workloads ?? DEFAULT_WORKLOAD_DIR);
  for (const f of readdirSync(logs).filter((n) => n.startsWith('requests_') && n.endsWith('.jsonl')).sort()) {
    const tag = f.slice('requests_'.length, -'.jsonl'.length);
    const records = readLines<RequestRecordWithGroup>(join(logs, f));
    const traceFile = join(logs, `replicaTrace_${tag}.jsonl`);
    const lines = pointReport(records, existsSync(traceFile) ? readLines<TraceSample>(traceFile) : null, sharedTokens, slowMs);
    const point = pointOfTag(tag);
    const shape = point && shapes.find((s) => s.name === point.shape);
    if (point && shape) lines.push(cacheLeftLine(cacheLeft(records, pointWorkload(shape, point.replicas, point.load, durationS, seed).workload.requests)));
    process.stdout.write([tag, ...lines].join('\n') + '\n');
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exit(main(process.argv.slice(2)));
