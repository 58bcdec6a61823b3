// Where a bench:peers point's slow requests came from, from its per-request records
// (logs/requests_TAG.jsonl) and, when the point ran with --trace-replicas, its replicas' engine
// gauges (logs/replicaTrace_TAG.jsonl). Usage: node --import tsx bench/peers/requestsReport.ts
// OUT_DIR [SHARED_TOKENS] [SLOW_MS]; one block per point found.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RequestRecord } from './loadgen.js';

export type RequestRecordWithGroup = RequestRecord & { group: string | null };

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

export function main(argv: string[]): number {
  const [dir, shared, slow] = argv;
  if (!dir) { process.stderr.write('usage: requestsReport.ts OUT_DIR [SHARED_TOKENS] [SLOW_MS]   (defaults 2048 and 1700: sp-32x32\'s shared prefix and SLO)\n'); return 2; }
  const logs = join(dir, 'logs');
  const sharedTokens = Number(shared ?? 2048);
  const slowMs = Number(slow ?? 1700);
  for (const f of readdirSync(logs).filter((n) => n.startsWith('requests_') && n.endsWith('.jsonl')).sort()) {
    const tag = f.slice('requests_'.length, -'.jsonl'.length);
    const records = readLines<RequestRecordWithGroup>(join(logs, f));
    const traceFile = join(logs, `replicaTrace_${tag}.jsonl`);
    process.stdout.write([tag, ...pointReport(records, existsSync(traceFile) ? readLines<TraceSample>(traceFile) : null, sharedTokens, slowMs)].join('\n') + '\n');
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exit(main(process.argv.slice(2)));
