// Which requests make prefix-router's TTFT tail with split entry points
// (worker VMs, gateways) that do not with one: one session shape at one rung,
// prefix-router with one entry point and with a split, on the same arrivals;
// per request, where each run sent it, the prompt tokens its engine found
// cached, and its TTFT. The split run's tail (TTFT above its p95) is broken
// down by what differs from the one-entry run: found less cached, or found as
// much but waited longer; and by the request's turn in its session.
// Then, in both runs, the picks the router believed to hold at least 1024
// tokens more than they did, and for each the earlier request there that
// shared most of the prompt: still prefilling (not cached yet) or done
// (evicted since); SPLIT_TAIL_DETAIL=1 lists them with the tokens the replica
// was sent since, SPLIT_TAIL_DETAIL=<request id> also that request's sharers.
//   node --import tsx bench/routing/splitTail.ts [conversation|long-context] [seed] [requests-scale] [workers] [gateways] [wasm]
import { readFileSync } from 'node:fs';
import { DEFAULT_WORKLOAD_DIR, sharedPrefixTokens } from './workloads.js';
import { measureCapacity, rungWorkload } from './ladder.js';
import { loadXxhash } from './gie.js';
import { makePolicy } from './runner.js';
import { BASE_POLICIES, buildLadderShapes, type PolicySpec } from './scenarios.js';
import { Rng } from './random.js';
import { percentile, simulate } from './simulation.js';
import { believedTokens } from './filterPolicy.js';
import type { SimRequest } from './workloads.js';

const [shapeName = 'conversation', seedArg = '1', scaleArg = '1', workersArg = '1', gatewaysArg = '4', wasmFile] = process.argv.slice(2);
const wasm = wasmFile ? readFileSync(wasmFile) : undefined;
const SEED = Number(seedArg), SCALE = Number(scaleArg);
const LOAD = 0.7, REPLICAS = 16;
const shape = buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed: SEED, replicas: REPLICAS, requestScale: SCALE, maxLoad: LOAD }).find((s) => s.name === shapeName);
if (!shape) throw new Error(`no session shape '${shapeName}'`);
const capacity = await measureCapacity(shape, { seed: SEED });
const workload = rungWorkload(shape, capacity, LOAD);

interface Served { replica: number; ttftMs: number; cachedTokens: number; believedTokens: number; gateway: number }
async function run(spec: PolicySpec): Promise<Map<SimRequest, Served>> {
  const policy = await makePolicy(spec, REPLICAS, SEED, workload.name, await loadXxhash(), wasm);
  const served = new Map<SimRequest, Served>();
  const believed = believedTokens(policy);
  try {
    const r = simulate(workload, policy, { replicas: REPLICAS, gateways: spec.gateways, workers: spec.workers, seed: SEED, onServed: (s) => served.set(s.req, { ...s, gateway: s.entry.gateway, believedTokens: believed.get(s.req) ?? 0 }) });
    const st = r.routerStats ?? {};
    console.log(`${spec.name}: TTFT p50 ${r.ttftP50Ms.toFixed(0)} p95 ${r.ttftP95Ms.toFixed(0)} ms, hit ${(r.hitRate * 100).toFixed(1)}%, load-bound spills ${st.loadBoundSpills ?? 0}, routed on load alone ${st.loadOnly ?? 0}`);
  } finally {
    await policy.close();
  }
  return served;
}

const pr = BASE_POLICIES[3]!;
const split: PolicySpec = { ...pr, name: `prefix-router/${workersArg}w-${gatewaysArg}gw`, workers: Number(workersArg), gateways: Number(gatewaysArg) };
console.log(`${shapeName} at ${LOAD * 100}% (${workload.requests.length} requests, ${(LOAD * capacity.rps).toFixed(2)} req/s, seed ${SEED})`);
const one = await run(pr);
const many = await run(split);

/** Turn of each request in its session (1 = first). */
const turn = new Map<SimRequest, number>();
const turnsSoFar = new Map<string, number>();
for (const r of workload.requests) {
  const k = r.session ?? r.group;
  const t = (turnsSoFar.get(k) ?? 0) + 1;
  turnsSoFar.set(k, t);
  turn.set(r, t);
}
const p95 = (m: Map<SimRequest, Served>) => percentile([...m.values()].map((s) => s.ttftMs).sort((a, b) => a - b), 95);
const p95One = p95(one), p95Many = p95(many);
const tailMany = workload.requests.filter((r) => (many.get(r)?.ttftMs ?? 0) > p95Many && one.has(r));
const tailOne = workload.requests.filter((r) => (one.get(r)?.ttftMs ?? 0) > p95One && many.has(r));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const describe = (label: string, rs: SimRequest[]) => {
  if (rs.length === 0) return console.log(`  ${label}: none`);
  const f = (m: Map<SimRequest, Served>, k: keyof Served) => sum(rs.map((r) => m.get(r)![k])) / rs.length;
  const uncached = (m: Map<SimRequest, Served>) => sum(rs.map((r) => r.promptTokens - m.get(r)!.cachedTokens)) / rs.length;
  const sameReplica = rs.filter((r) => one.get(r)!.replica === many.get(r)!.replica).length;
  const firstTurns = rs.filter((r) => turn.get(r) === 1).length;
  console.log(`  ${label}: ${rs.length} requests, ${firstTurns} first turns, mean prompt ${(sum(rs.map((r) => r.promptTokens)) / rs.length).toFixed(0)} tokens, same replica in both runs ${sameReplica}`);
  for (const [name, m] of [['1 entry', one], ['split', many]] as const) {
    console.log(`    ${name}: TTFT ${f(m, 'ttftMs').toFixed(0)} ms, uncached ${uncached(m).toFixed(0)} tokens, cached ${f(m, 'cachedTokens').toFixed(0)} where the router believed ${f(m, 'believedTokens').toFixed(0)}`);
  }
};
console.log(`tail of the split run (TTFT > its p95 ${p95Many.toFixed(0)} ms), against the same requests with 1 entry (p95 ${p95One.toFixed(0)} ms):`);
const lessCached = tailMany.filter((r) => many.get(r)!.cachedTokens < one.get(r)!.cachedTokens - 16 * 16);
const asCached = tailMany.filter((r) => !lessCached.includes(r));
describe('found at least 256 tokens less cached than with 1 entry', lessCached);
describe('found as much cached (within 256 tokens)', asCached);
describe('also in the 1-entry tail', tailMany.filter((r) => tailOne.includes(r)));
describe('not in the 1-entry tail', tailMany.filter((r) => !tailOne.includes(r)));
// All requests: uncached tokens with the split against 1 entry, by turn.
const byTurn = new Map<string, SimRequest[]>();
for (const r of workload.requests) {
  if (!one.has(r) || !many.has(r)) continue;
  const t = turn.get(r)!;
  const k = t === 1 ? 'turn 1' : t <= 3 ? 'turns 2-3' : t <= 8 ? 'turns 4-8' : 'turns 9+';
  byTurn.set(k, [...(byTurn.get(k) ?? []), r]);
}
// The gateway each request entered through (the simulation's draw), and whether the session's
// previous turn came through another one.
const entryRng = Rng.of(SEED, workload.name, 'entry');
const gatewayOf = new Map<SimRequest, number>(), previous = new Map<SimRequest, SimRequest>(), lastOf = new Map<string, SimRequest>();
for (const r of workload.requests) {
  gatewayOf.set(r, split.gateways > 1 ? entryRng.int(split.gateways) : 0);
  if (split.workers > 1) entryRng.int(split.workers);
  const k = r.session ?? r.group;
  const p = lastOf.get(k);
  if (p) previous.set(r, p);
  lastOf.set(k, r);
}
if (split.gateways > 1) {
  for (const [label, rs] of [['tail requests that found less cached', lessCached], ['all later turns', workload.requests.filter((r) => previous.has(r))]] as const) {
    const later = rs.filter((r) => previous.has(r));
    const other = later.filter((r) => gatewayOf.get(r) !== gatewayOf.get(previous.get(r)!));
    const gapMs = later.map((r) => (r.arrivalUs - previous.get(r)!.arrivalUs) / 1000).sort((a, b) => a - b);
    console.log(`${label}: ${other.length} of ${later.length} came through another gateway than the session's previous turn; median ${percentile(gapMs, 50).toFixed(0)} ms after it`);
  }
}
// Where the router's belief fell short of what its pick held.
for (const [name, m] of [['1 entry', one], ['split', many]] as const) {
  const rs = workload.requests.filter((r) => m.has(r));
  const short = rs.filter((r) => m.get(r)!.believedTokens < m.get(r)!.cachedTokens - 256 * 4);
  console.log(`${name}: ${short.length} of ${rs.length} requests found at least 1024 tokens more cached than the router believed (${sum(short.map((r) => m.get(r)!.cachedTokens - m.get(r)!.believedTokens))} tokens unseen)`);
  const over = rs.filter((r) => m.get(r)!.believedTokens > m.get(r)!.cachedTokens + 256 * 4);
  const overTail = over.filter((r) => m.get(r)!.ttftMs > (m === one ? p95One : p95Many));
  console.log(`${name}: ${over.length} of ${rs.length} requests found at least 1024 tokens less cached than the router believed (${sum(over.map((r) => m.get(r)!.believedTokens - m.get(r)!.cachedTokens))} tokens missing; ${overTail.length} of them in the tail)`);
}
console.log('all requests by turn: uncached prompt tokens (sum) 1 entry -> split, requests with >= 256 fewer cached tokens in the split');
for (const [k, rs] of [...byTurn].sort()) {
  const u = (m: Map<SimRequest, Served>) => sum(rs.map((r) => r.promptTokens - m.get(r)!.cachedTokens));
  const worse = rs.filter((r) => many.get(r)!.cachedTokens < one.get(r)!.cachedTokens - 256).length;
  console.log(`  ${k}: ${rs.length} requests, ${u(one)} -> ${u(many)}, ${worse} worse`);
}
// Where a pick was believed to hold more than it did: the earlier request on that replica that
// shares most of the prompt, and whether it was still prefilling when this one arrived (its
// content not yet cached) or long done (its content evicted since).
{
  for (const [name, m] of [['1 entry', one], ['split', many]] as const) {
    const tally = { inFlight: 0, done: 0, none: 0, otherGateway: 0 };
    for (const r of workload.requests) {
      const sr = m.get(r);
      if (!sr || sr.believedTokens <= sr.cachedTokens + 1024) continue;
      let best: SimRequest | undefined, bestShared = 0;
      for (const q of workload.requests) {
        if (q.arrivalUs >= r.arrivalUs) break;
        const sq = m.get(q);
        if (!sq || sq.replica !== sr.replica) continue;
        const n = sharedPrefixTokens(q, r);
        if (n >= bestShared) { best = q; bestShared = n; }
      }
      if (!best || bestShared <= sr.cachedTokens + 1024) { tally.none++; continue; }
      const firstTokenUs = best.arrivalUs + m.get(best)!.ttftMs * 1000;
      if (firstTokenUs > r.arrivalUs) tally.inFlight++; else tally.done++;
      if (process.env.SPLIT_TAIL_DETAIL) {
        // Tokens the replica was sent to prefill between the sharer's last use and this request.
        let written = 0;
        for (const x of workload.requests) {
          if (x.arrivalUs <= best.arrivalUs || x.arrivalUs >= r.arrivalUs) continue;
          const sx = m.get(x);
          if (sx?.replica === sr.replica) written += x.promptTokens - sx.cachedTokens + x.outputTokens;
        }
        if (process.env.SPLIT_TAIL_DETAIL === String(r.id)) {
          for (const x of workload.requests) {
            if (x.arrivalUs >= r.arrivalUs || x.arrivalUs < r.arrivalUs - 400e6) continue;
            const sx = m.get(x); const n = sharedPrefixTokens(x, r);
            if (sx && n > 4096) console.log(`      #${x.id} ${((r.arrivalUs - x.arrivalUs) / 1e6).toFixed(1)} s before on ${sx.replica}${sx.replica === sr.replica ? '*' : ''} gw ${sx.gateway}: shares ${n}, prompt ${x.promptTokens}, cached ${sx.cachedTokens}, believed ${sx.believedTokens}, ttft ${sx.ttftMs.toFixed(0)}`);
          }
        }
        console.log(`    ${name} #${r.id}: believed ${sr.believedTokens} cached ${sr.cachedTokens}; sharer #${best.id} ${((r.arrivalUs - best.arrivalUs) / 1e6).toFixed(1)} s before, ${bestShared} shared; ${written} tokens written there since`);
      }
      if (m.get(best)!.gateway !== sr.gateway) tally.otherGateway++;
    }
    console.log(`${name}: of the picks believed to hold 1024+ tokens more than they did, the earlier request there that shared more was still prefilling ${tally.inFlight}, done ${tally.done}, none ${tally.none}; it came through another gateway ${tally.otherGateway}`);
  }
}
