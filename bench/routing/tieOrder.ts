// Why routing on predicted TTFT loses to round robin on unique prompts at 90%:
// the 90% rung's arrivals (seed 1, 16 replicas) routed by a minimal work
// router (queued prefill tokens and decoding requests per replica, the T4
// model of workPolicy.ts) that differs only in how it orders replicas whose
// predictions are within 5 ms (lowest: the lowest prediction alone, as the
// filter; oldest/newest: the replica placed longest ago / most recently;
// progress: the lowest, with each replica's queued tokens less the prefill
// done since its oldest queued request was sent; oldest-when-all-busy: oldest
// only when every replica has a prefill queued), against round robin; then,
// for the `precise` policy, predicted against measured TTFT by what the
// request found.
//   node --import tsx bench/routing/tieOrder.ts
import type { Decision, RoutingPolicy } from './policy.js';
import { RoundRobinPolicy } from './policy.js';
import { UNIQUE } from './scenarios.js';
import { simulate } from './simulation.js';
import { WorkPolicy, predictTtftMs } from './workPolicy.js';
import { uniqueWorkload, type SimRequest } from './workloads.js';

const REPLICAS = 16;
/** Round robin's capacity on unique prompts (bench/routing/results/ladder-seed1.txt), and the rung. */
const CAPACITY_RPS = 19.821;
const LOAD = 0.9;
const TIE_MS = 5;
/**
 * Prefill tokens an engine computes per ms, for 'progress': a 2048-token step beside a decode
 * batch of 16 (38 + 0.228 x 2048 + 32 ms). Overestimating it makes a replica mid-prefill look
 * free: at a step alone's rate (no decode batch) p95 is 1038 ms.
 */
const PREFILL_TOKENS_PER_MS = 2048 / (38 + 0.228 * 2048 + 32);

type Order = 'lowest' | 'oldest' | 'newest' | 'progress' | 'oldest-when-all-busy';

interface Sent { replica: number; atUs: number; tokens: number; started: boolean }

class TieOrderPolicy implements RoutingPolicy {
  readonly queued = new Array<number>(REPLICAS).fill(0);
  readonly decoding = new Array<number>(REPLICAS).fill(0);
  readonly lastPlacedUs = new Array<number>(REPLICAS).fill(-Infinity);
  readonly waitingSince: Sent[][] = Array.from({ length: REPLICAS }, () => []);
  constructor(readonly name: Order) {}
  advanceTo(): void {}
  onScrape(): void {}
  route(req: SimRequest, _entry: unknown, nowUs: number): Decision {
    const allBusy = this.queued.every((q) => q > 0);
    const ttft = this.queued.map((q, r) => {
      let ahead = q;
      if (this.name === 'progress' && this.waitingSince[r]!.length > 0) ahead = Math.max(0, q - ((nowUs - this.waitingSince[r]![0]!.atUs) / 1000) * PREFILL_TOKENS_PER_MS);
      return predictTtftMs(ahead + req.promptTokens, this.decoding[r]!);
    });
    const best = Math.min(...ttft);
    let pick = -1;
    for (let r = 0; r < REPLICAS; r++) {
      const near = this.name === 'lowest' ? ttft[r] === best : ttft[r]! <= best + TIE_MS;
      if (!near) continue;
      if (pick < 0) { pick = r; continue; }
      const older = this.lastPlacedUs[r]! < this.lastPlacedUs[pick]!;
      const byAge = this.name === 'oldest' || (this.name === 'oldest-when-all-busy' && allBusy) ? older : this.name === 'newest' ? !older : undefined;
      if (byAge ?? ttft[r]! < ttft[pick]!) pick = r;
    }
    const sent: Sent = { replica: pick, atUs: nowUs, tokens: req.promptTokens, started: false };
    this.queued[pick]! += req.promptTokens;
    this.lastPlacedUs[pick] = nowUs;
    this.waitingSince[pick]!.push(sent);
    return { replica: pick, handle: sent };
  }
  onFirstToken(d: Decision): void {
    const s = d.handle as Sent;
    s.started = true;
    this.settle(s);
    this.decoding[s.replica]!++;
  }
  onFinish(d: Decision): void {
    const s = d.handle as Sent;
    if (s.started) this.decoding[s.replica]!--;
    else this.settle(s);
  }
  async close(): Promise<void> {}
  private settle(s: Sent): void {
    this.queued[s.replica]! -= s.tokens;
    const w = this.waitingSince[s.replica]!;
    w.splice(w.indexOf(s), 1);
  }
}

const workload = uniqueWorkload(UNIQUE.name, UNIQUE.promptTokens, UNIQUE.outputTokens, Math.round(LOAD * REPLICAS * 100), LOAD * CAPACITY_RPS, 1);
const opts = { replicas: REPLICAS, gateways: 1, workers: 1, seed: 1 };
console.log(`unique prompts at ${LOAD * 100}%: ${workload.requests.length} requests at ${(LOAD * CAPACITY_RPS).toFixed(2)} req/s`);
for (const p of [new RoundRobinPolicy(REPLICAS), ...(['lowest', 'oldest', 'newest', 'progress', 'oldest-when-all-busy'] as Order[]).map((o) => new TieOrderPolicy(o))]) {
  const r = simulate(workload, p, opts);
  console.log(`  ${p.name.padEnd(22)} TTFT p50 ${r.ttftP50Ms.toFixed(0)} p95 ${r.ttftP95Ms.toFixed(0)} ms`);
}

// precise: what each request found, what was predicted, what it got.
const precise = WorkPolicy.precise({ name: 'precise', replicas: REPLICAS, gateways: 1, epsilon: 0.5 });
const internals = precise as unknown as { queued: number[][]; decoding: number[][] };
const found = new Map<Decision, { atUs: number; predictedMs: number; allBusy: boolean }>();
const rows: Array<{ predictedMs: number; ttftMs: number; allBusy: boolean }> = [];
const policy: RoutingPolicy = precise;
const route = policy.route.bind(policy), firstToken = policy.onFirstToken.bind(policy);
policy.route = (req, entry, nowUs) => {
  const q = internals.queued[0]!.slice(), dec = internals.decoding[0]!.slice();
  const d = route(req, entry, nowUs);
  found.set(d, { atUs: nowUs, predictedMs: predictTtftMs(q[d.replica]! + req.promptTokens, dec[d.replica]!), allBusy: q.every((x) => x > 0) });
  return d;
};
policy.onFirstToken = (d, nowUs) => {
  const f = found.get(d)!;
  rows.push({ predictedMs: f.predictedMs, ttftMs: (nowUs - f.atUs) / 1000, allBusy: f.allBusy });
  firstToken(d, nowUs);
};
simulate(workload, policy, opts);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const [label, g] of [['all', rows], ['every replica had a prefill queued', rows.filter((x) => x.allBusy)], ['some replica had none', rows.filter((x) => !x.allBusy)]] as const) {
  console.log(`  precise, ${label}: ${g.length} requests, predicted ${mean(g.map((x) => x.predictedMs)).toFixed(0)} ms, measured ${mean(g.map((x) => x.ttftMs)).toFixed(0)} ms (mean TTFT from routing)`);
}
