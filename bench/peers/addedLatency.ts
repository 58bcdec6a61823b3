// The latency a router adds to a request, at idle, as bench:peers and bench:gateway-overhead measure
// it: warm both paths as a router in service is warm, then time pairs of the same one-token request,
// straight to a replica and through the router.
import { percentiles, roundTo } from '../gateway.js';
import { MODEL, textOf } from '../routing/workloads.js';
import { probeLatency } from './loadgen.js';

/**
 * Requests through a router (and as many straight to the replicas) before its added latency is
 * measured. V8 optimises a function once it has run some hundreds of times with stable types, so a
 * Node router's per-request functions reach optimised code only after about a thousand requests; a
 * router in service is long past that, and the Rust routers have no such phase. 3000 measures each
 * in its steady state.
 */
export const ROUTER_WARMUP_REQUESTS = 3000;
/** Warm-up requests in flight: against real-time replicas one at a time would take minutes. */
export const WARMUP_CONCURRENCY = 32;

/**
 * `requests` one-token requests through the router and `requests` straight to the replicas (in
 * turn), WARMUP_CONCURRENCY in flight, each on a connection of its own as the probe's are: both
 * paths of addedLatencySamples then meet code already optimised, in the router, the replicas and
 * this client.
 */
export async function warmUpPaths(routerUrl: string, replicaUrls: string[], requests: number, seed: number): Promise<void> {
  const prompt = (i: number, path: string) => `warm-up ${seed} ${path} ${i}: ${textOf(seed * 1000 + i, 12)}`;
  // Each lane sends one request at a time, down the two paths in turn.
  const lane = async (k: number) => {
    for (let i = k; i < requests; i += WARMUP_CONCURRENCY) {
      await probeLatency(routerUrl, MODEL, [prompt(i, 'r')]);
      await probeLatency(replicaUrls[i % replicaUrls.length]!, MODEL, [prompt(i, 'd')]);
    }
  };
  await Promise.all(Array.from({ length: WARMUP_CONCURRENCY }, (_, k) => lane(k)));
}

/**
 * The latency a router adds, at idle: pairs of the same-sized one-token request, one straight to a
 * replica (in turn) and one through the router, one pair at a time, after a few requests down both
 * paths; the per-pair differences (ms), in order. `routerRequests` counts what went through the
 * router, those first few included. Warm the paths with warmUpPaths first to measure a router as
 * it runs in service.
 */
export async function addedLatencySamples(routerUrl: string, replicaUrls: string[], n: number, seed: number): Promise<{ diffsMs: number[]; routerRequests: number }> {
  const prompt = (i: number, path: string) => `latency probe ${seed} ${path} ${i}: ${textOf(seed * 1000 + i, 12)}`;
  for (let i = 0; i < PAIRS_LEAD_IN; i++) {
    await probeLatency(routerUrl, MODEL, [prompt(i, 'warm-r')]);
    for (const u of replicaUrls) await probeLatency(u, MODEL, [prompt(i, 'warm-d')]);
  }
  const diffsMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const [d] = await probeLatency(replicaUrls[i % replicaUrls.length]!, MODEL, [prompt(i, 'dir')]);
    const [r] = await probeLatency(routerUrl, MODEL, [prompt(i, 'rtr')]);
    diffsMs.push(r! - d!);
  }
  return { diffsMs, routerRequests: PAIRS_LEAD_IN + n };
}

/**
 * Added-latency pairs per router and replica count (bench:peers --probe-pairs): the p95 of 300 is
 * their 15th largest. Of 100 it is the 5th, which moved by 9% between two probes of one router
 * (bench/peers/README.md, "What is measured"), as much as the gaps between routers.
 */
export const PROBE_PAIRS = 300;

/** Requests down both paths, one at a time, just before the pairs: the first pair then follows what the others follow, not the warm-up's burst. */
export const PAIRS_LEAD_IN = 3;

/** p50 and p95 in ms to the µs (percentiles rounds to a tenth of its unit). */
export function percentilesMs(ms: number[]): { p50: number; p95: number } {
  const us = percentiles(ms.map((v) => v * 1000));
  return { p50: roundTo(us.p50 / 1000, 3), p95: roundTo(us.p95 / 1000, 3) };
}
