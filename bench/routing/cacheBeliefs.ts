// What prefix-router believed about the engines' caches against what they
// held, per entry-point layout, on the same arrivals: one ladder shape at one
// rung, prefix-router through each layout (gateways x worker VMs). Per run:
// - the tokens the engines were written (prompt tokens they prefilled, and
//   output) against what the router counts as written (prompt tokens it
//   believed uncached at its pick, and output), per replica-second: the
//   router ages its shared index by the latter (prefix/cacheTurnover.ts);
// - requests whose pick held 256+ tokens less than the router believed (it
//   took an evicted prefix for cached) and 256+ more (it missed what was
//   there);
// - how many replicas each prefix group was sent to, and the later requests
//   of a group for which the router found no holder at all;
// - requests sent off the replica that held the most of their prompt when
//   they were routed (by OFF_TOKENS or more): to a replica the router
//   believed held as much (it had evicted it), or not (a copy, or the
//   holder's prefix unknown to the router: the pick's belief alone does not
//   tell which), and how many of each are among the slowest 5%.
//   node --import tsx bench/routing/cacheBeliefs.ts [shape] [load] [gateways/workers|precise,...] [requests-scale] [wasm]
// (shape 'trace': the production trace in data/traces; layout 'precise': the
// bound that knows the engines' caches, whose beliefs are exact, for its moves)
import { readFileSync } from 'node:fs';
import { DEFAULT_WORKLOAD_DIR } from './workloads.js';
import { measureCapacity, rungWorkload } from './ladder.js';
import { loadXxhash } from './gie.js';
import { makePolicy } from './runner.js';
import { BASE_POLICIES, buildLadderShapes, type PolicySpec } from './scenarios.js';
import { ENGINE_BLOCK_SIZE, simulate } from './simulation.js';
import type { ReplicaEngine } from '../../simulator/engine.js';
import type { SimRequest } from './workloads.js';
import { believedTokens } from './filterPolicy.js';
import { MOONCAKE_CONVERSATION_TRACE } from './mooncake.js';

const [shapeName = 'sp-32x32-tight-kv', loadArg = '0.7', layoutsArg = '1/1,1/16,4/1', scaleArg = '1', wasmFile] = process.argv.slice(2);
const LOAD = Number(loadArg), SCALE = Number(scaleArg), SEED = 1, REPLICAS = 16;
if (!(LOAD > 0)) throw new Error(`load must be a positive fraction of round robin's capacity, got '${loadArg}'`);
if (!(SCALE > 0)) throw new Error(`requests-scale must be positive, got '${scaleArg}'`);
const layouts = layoutsArg.split(',').map((l): PolicySpec => {
  if (l === 'precise') return { name: 'precise', kind: 'precise', workers: 1, gateways: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(l);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`a layout is gateways/workers, both at least 1, or precise, got '${l}'`);
  const gateways = Number(m[1]), workers = Number(m[2]);
  return { ...BASE_POLICIES[3]!, name: `prefix-router/${gateways}gw-${workers}w`, gateways, workers };
});
const wasm = wasmFile ? readFileSync(wasmFile) : undefined;
// 'trace' is the repository's production trace (data/traces).
const trace = { file: MOONCAKE_CONVERSATION_TRACE, replicas: REPLICAS, limit: Infinity };
const shape = buildLadderShapes({ workloadDir: DEFAULT_WORKLOAD_DIR, seed: SEED, replicas: REPLICAS, requestScale: SCALE, maxLoad: LOAD, trace }).find((s) => s.name === shapeName);
if (!shape) throw new Error(`no ladder shape '${shapeName}'`);
const capacity = await measureCapacity(shape, { seed: SEED });
const workload = rungWorkload(shape, capacity, LOAD);
const replicas = shape.replicas ?? REPLICAS;
const spanS = Math.max(1e-6, (workload.requests.at(-1)!.arrivalUs - workload.requests[0]!.arrivalUs) / 1e6);
/** A belief this far off what the pick held counts as wrong. */
const OFF_TOKENS = 256;

console.log(`${shapeName} at ${LOAD * 100}% (${workload.requests.length} requests, ${(LOAD * capacity.rps).toFixed(2)} req/s, ${replicas} replicas, seed ${SEED})`);
for (const spec of layouts) {
  const { gateways, workers } = spec;
  const exact = spec.kind === 'precise';
  const policy = await makePolicy(spec, replicas, SEED, workload.name, await loadXxhash(), wasm, shape.kvBlocks);
  const believed = exact ? null : believedTokens(policy);
  // What the engines held of each request's prompt as it was routed: the most any held, and the pick.
  let engines: readonly ReplicaEngine[] = [];
  const bind = policy.bindEngines?.bind(policy);
  policy.bindEngines = (e) => { engines = e; bind?.(e); };
  const heldAtRoute = new Map<SimRequest, { best: number; pick: number }>();
  const route = policy.route.bind(policy);
  policy.route = (req, entry, nowUs) => {
    const d = route(req, entry, nowUs);
    const held = engines.map((e) => e.cachedPrefixBlocks(req.blockHashes) * ENGINE_BLOCK_SIZE);
    heldAtRoute.set(req, { best: Math.max(0, ...held), pick: d.replica >= 0 ? held[d.replica]! : 0 });
    return d;
  };
  const moved: Array<{ req: SimRequest; ttftMs: number; believedHeld: boolean }> = [];
  const ttfts: number[] = [];
  let engineWritten = 0, routerWritten = 0, over = 0, overTokens = 0, under = 0, underTokens = 0, noHolder = 0, later = 0;
  const groupReplicas = new Map<string, Set<number>>();
  let r;
  try {
    r = simulate(workload, policy, {
      replicas, gateways, workers, seed: SEED, kvBlocks: shape.kvBlocks,
      onServed: (s) => {
        const b = believed ? Math.min(believed.get(s.req) ?? 0, s.req.promptTokens) : s.cachedTokens;
        engineWritten += s.req.promptTokens - s.cachedTokens + s.req.outputTokens;
        routerWritten += s.req.promptTokens - b + s.req.outputTokens;
        if (b > s.cachedTokens + OFF_TOKENS) { over++; overTokens += b - s.cachedTokens; }
        if (b + OFF_TOKENS < s.cachedTokens) { under++; underTokens += s.cachedTokens - b; }
        ttfts.push(s.ttftMs);
        const at = heldAtRoute.get(s.req);
        if (at && at.pick + OFF_TOKENS <= at.best) moved.push({ req: s.req, ttftMs: s.ttftMs, believedHeld: b + OFF_TOKENS > at.best });
        const seen = groupReplicas.get(s.req.group);
        if (seen) { later++; if (b === 0) noHolder++; seen.add(s.replica); } else groupReplicas.set(s.req.group, new Set([s.replica]));
      },
    });
  } finally {
    await policy.close();
  }
  const perGroup = [...groupReplicas.values()].reduce((a, s) => a + s.size, 0) / Math.max(1, groupReplicas.size);
  const rate = (tokens: number) => (tokens / spanS / replicas).toFixed(0);
  console.log(`${spec.name}: TTFT p50 ${r.ttftP50Ms.toFixed(0)} p95 ${r.ttftP95Ms.toFixed(0)} ms, hit ${(r.firstAdmissionHitRate * 100).toFixed(1)}%`);
  console.log(`  written per replica-second: engines ${rate(engineWritten)} tokens, as the router counts ${rate(routerWritten)}`);
  console.log(`  picks holding ${OFF_TOKENS}+ tokens less than believed: ${over} (${overTokens} tokens); more than believed: ${under} (${underTokens} tokens)`);
  console.log(`  replicas per group ${perGroup.toFixed(2)}; later requests of a group with no holder found: ${noHolder} of ${later}`);
  const slow = ttfts.sort((a, b) => a - b)[Math.max(0, Math.ceil(ttfts.length * 0.95) - 1)] ?? Infinity;
  const stale = moved.filter((m) => m.believedHeld), copied = moved.filter((m) => !m.believedHeld);
  const inTail = (ms: typeof moved) => ms.filter((m) => m.ttftMs >= slow).length;
  console.log(`  sent off the replica holding most of the prompt: ${moved.length}; believing the pick held as much: ${stale.length} (${inTail(stale)} at or past p95), not: ${copied.length} (${inTail(copied)}; a copy, or the holder's prefix not known)`);
}
