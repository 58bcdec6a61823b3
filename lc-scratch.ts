import { readFileSync } from 'node:fs';
import { pointWorkload } from './bench/peers/main.ts';
import { peerShapes } from './bench/peers/shapes.ts';
import { DEFAULT_WORKLOAD_DIR } from './bench/routing/workloads.ts';
const shape = peerShapes(DEFAULT_WORKLOAD_DIR).find((s) => s.name === 'long-context')!;
const w = pointWorkload(shape, 8, 0.7, 20, 1).workload.requests;
for (const router of process.argv.slice(2)) {
  const recs = readFileSync(`/work/s26/lc/logs/requests_${router}_long-context_8_0.7.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const byId = new Map(recs.map((r: any) => [r.id, r]));
  // document identity: chars 4096*4 .. +2000 of the prompt
  const docOf = (p: string) => p.slice(16384, 16384 + 200);
  const seen = new Map<string, { replicas: Set<string>; maxCached: number }>();
  let coldFirst = 0, coldSeen = 0;
  const lines: string[] = [];
  for (const r of w) {
    const rec: any = byId.get(r.id);
    const d = docOf(r.prompt);
    const prev = seen.get(d);
    const first = !prev;
    const slow = rec && !r.warmup && rec.ttftMs > 5000;
    if (slow) {
      lines.push(`${r.id} ${r.group} ttft ${Math.round(rec.ttftMs)} cached ${rec.cachedTokens} prompt ${r.promptTokens} on ${rec.replica?.slice(-1)} doc seen before: ${first ? 'no' : 'yes on ' + [...prev!.replicas].join(',')}`);
      if (first) coldFirst++; else coldSeen++;
    }
    if (rec?.replica) { const e = seen.get(d) ?? { replicas: new Set(), maxCached: 0 }; e.replicas.add(rec.replica.slice(-1)); seen.set(d, e); }
  }
  console.log(router, 'slow (>5 s) measured:', coldFirst + coldSeen, 'first sight of their document:', coldFirst);
  console.log(lines.join('\n'));
}
