import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControlPlane } from '../../control-plane/server.js';
import { memoryLogger } from '../../control-plane/log.js';
import { standInReplica, waitFor, type StandIn } from './support.js';

async function fleet(n: number, file?: string): Promise<StandIn[]> {
  return Promise.all(Array.from({ length: n }, () => standInReplica(file)));
}

test('scraped values reach the state, and a change in a replica bumps the version', async () => {
  const [a, b] = await fleet(2);
  const sg = await standInReplica('sglang-datadog-fixture.txt');
  a.values = { 'vllm:num_requests_running': 4, 'vllm:num_requests_waiting': 2, 'vllm:kv_cache_usage_perc': 0.5 };
  const cp = await startControlPlane({ replicas: [a.address, `http://${b.address}`, sg.address], scrapeIntervalMs: 20, logger: memoryLogger() });
  try {
    const byAddr = () => new Map(cp.state().replicas.map((r) => [r.address, r]));
    await waitFor('all scraped', () => cp.state().replicas.every((r) => r.metricsKnown));
    let ra = byAddr().get(a.address)!;
    assert.deepEqual([ra.ready, ra.running, ra.waiting, ra.kvUsage, ra.kvCapacityTokens], [true, 4, 2, 0.5, 7281 * 16]);
    // The request names the mapped metrics (prometheus_client's name[] filter), unless turned off.
    assert.match(a.lastQuery, /(^|&)name\[\]=vllm%3Anum_requests_running(&|$)/);
    assert.match(a.lastQuery, /name\[\]=sglang%3Amax_total_num_tokens/);
    const rs = byAddr().get(sg.address)!;
    assert.deepEqual([rs.kvUsage, rs.kvCapacityTokens], [0.25, 430839]);
    // Replicas are sorted by address in the state.
    const addrs = cp.state().replicas.map((r) => r.address);
    assert.deepEqual(addrs, [...addrs].sort());
    const before = cp.state().version;
    a.values['vllm:num_requests_waiting'] = 9;
    await waitFor('new waiting value', () => byAddr().get(a.address)!.waiting === 9);
    assert.ok(cp.state().version > before);
    ra = byAddr().get(a.address)!;
    assert.equal(ra.running, 4);
  } finally {
    await cp.close();
    await Promise.all([a, b, sg].map((r) => r.close()));
  }
});

test('--no-metrics-name-filter scrapes the bare metrics path', async () => {
  const [a] = await fleet(1);
  const cp = await startControlPlane({ replicas: [a.address], scrapeIntervalMs: 20, metricsNameFilter: false, logger: memoryLogger() });
  try {
    await waitFor('scraped', () => cp.state().replicas[0].metricsKnown);
    assert.equal(a.lastQuery, '');
  } finally {
    await cp.close();
    await a.close();
  }
});

test('unchanged metrics do not bump the version', async () => {
  const [a] = await fleet(1);
  const cp = await startControlPlane({ replicas: [a.address], scrapeIntervalMs: 10, logger: memoryLogger() });
  try {
    await waitFor('scraped', () => cp.state().replicas[0].metricsKnown);
    const v = cp.state().version;
    const scrapes = a.requests;
    await waitFor('more scrapes', () => a.requests >= scrapes + 10);
    assert.equal(cp.state().version, v);
  } finally {
    await cp.close();
    await a.close();
  }
});

test('a hung /metrics never stalls the others, is never scraped twice at once, and turns stale', async () => {
  const [good, hung] = await fleet(2);
  hung.mode = 'hang';
  const log = memoryLogger();
  const cp = await startControlPlane({
    replicas: [good.address, hung.address], scrapeIntervalMs: 20, scrapeTimeoutMs: 150, stalenessMs: 600, logger: log,
  });
  try {
    const rec = (addr: string) => cp.state().replicas.find((r) => r.address === addr)!;
    await waitFor('hung replica leaves routing', () => !rec(hung.address).ready);
    assert.equal(rec(hung.address).metricsKnown, false);
    // Meanwhile the good replica was scraped many times (at 20 ms, many more than the hung one's timeouts).
    assert.ok(good.requests > 3 * hung.requests, `good ${good.requests} vs hung ${hung.requests}`);
    assert.ok(rec(good.address).ready);
    assert.ok(hung.requests >= 2, 'the hung replica keeps being retried');
    assert.equal(hung.maxActive, 1, 'no overlapping scrapes of one replica');
    assert.ok(log.entries.some((e) => e.msg === 'replica scrape failed' && e.reason === 'timeout'));
    // It comes back when it answers again.
    hung.mode = 'ok';
    await waitFor('hung replica back', () => rec(hung.address).ready && rec(hung.address).metricsKnown);
    const text = await (await fetch(`${cp.url}/metrics`)).text();
    assert.match(text, new RegExp(`prefix_router_cp_scrape_errors_total\\{replica="${hung.address}",reason="timeout"\\} [1-9]`));
  } finally {
    await cp.close();
    await good.close();
    await hung.close();
  }
});

test('failing scrapes (HTTP 500, not Prometheus) mark the replica stale after the bound; the age keeps growing', async () => {
  const [a, b] = await fleet(2);
  const cp = await startControlPlane({ replicas: [a.address, b.address], scrapeIntervalMs: 20, scrapeTimeoutMs: 100, stalenessMs: 300, logger: memoryLogger() });
  try {
    const rec = (addr: string) => cp.state().replicas.find((r) => r.address === addr)!;
    await waitFor('scraped', () => rec(a.address).metricsKnown && rec(b.address).metricsKnown);
    a.mode = 'error500';
    b.mode = 'garbage';
    await waitFor('both stale', () => !rec(a.address).ready && !rec(b.address).ready);
    // They were known before: metrics stay known, with their age past the bound.
    assert.equal(rec(a.address).metricsKnown, true);
    assert.ok(rec(a.address).metricsAgeMs > 300);
    const replicas = await (await fetch(`${cp.url}/v1/replicas`)).json() as { replicas: Array<{ address: string; stale: boolean; lastError: string; metricsAgeMs: number }> };
    const ja = replicas.replicas.find((r) => r.address === a.address)!;
    const jb = replicas.replicas.find((r) => r.address === b.address)!;
    assert.equal(ja.stale, true);
    assert.match(ja.lastError, /HTTP 500/);
    assert.match(jb.lastError, /no known engine metric/);
    const ready = await fetch(`${cp.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reason: string }).reason, /none of 2 replicas is ready/);
  } finally {
    await cp.close();
    await a.close();
    await b.close();
  }
});

test('a replica that was never reachable is ready only within the staleness bound, then leaves routing', async () => {
  const cp = await startControlPlane({ replicas: ['127.0.0.1:1'], scrapeIntervalMs: 20, scrapeTimeoutMs: 100, stalenessMs: 300, logger: memoryLogger() });
  try {
    assert.equal(cp.state().replicas[0].ready, true);
    assert.equal(cp.state().replicas[0].metricsAgeMs, 0xffffffff);
    await waitFor('unreachable replica leaves routing', () => !cp.state().replicas[0].ready);
  } finally {
    await cp.close();
  }
});

test('the scheduler sleeps until a scrape is due: each replica scraped every interval, about one timer wakeup per scrape', async () => {
  const replicas = await fleet(2);
  const { Scraper } = await import('../../control-plane/scraper.js');
  const { DEFAULT_METRIC_MAPPINGS } = await import('../../control-plane/engineMetrics.js');
  let wakeups = 0;
  const realSetTimeout = globalThis.setTimeout, realSetInterval = globalThis.setInterval;
  const counted = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A) => { wakeups++; fn(...a); };
  globalThis.setTimeout = ((fn: () => void, ms?: number) => realSetTimeout(counted(fn), ms)) as typeof setTimeout;
  globalThis.setInterval = ((fn: () => void, ms?: number) => realSetInterval(counted(fn), ms)) as typeof setInterval;
  const results = new Map<string, number>();
  const scraper = new Scraper({
    intervalMs: 50, timeoutMs: 1000, metricsPath: '/metrics', nameFilter: true, mappings: DEFAULT_METRIC_MAPPINGS,
    onResult: (address, outcome) => { if (outcome.ok) results.set(address, (results.get(address) ?? 0) + 1); },
  });
  try {
    scraper.setTargets(replicas.map((r) => r.address));
    await new Promise((r) => realSetTimeout(r, 1000));
  } finally {
    scraper.stop();
    globalThis.setTimeout = realSetTimeout;
    globalThis.setInterval = realSetInterval;
    await Promise.all(replicas.map((r) => r.close()));
  }
  // 1 s at 50 ms: 19-21 scrapes each (the first at a random point of the first interval); a loaded machine may lose a few.
  for (const r of replicas) {
    const n = results.get(r.address) ?? 0;
    assert.ok(n >= 15 && n <= 21, `${r.address}: ${n} scrapes`);
  }
  // A 5 ms tick would wake 200 times; one wakeup per scrape start is about 40.
  assert.ok(wakeups <= 60, `${wakeups} timer wakeups`);
});

test('publishing runs only when something changed: scrapes of still engines publish nothing between staleness checks; a change is out within the publish interval', async () => {
  const [a] = await fleet(1);
  const cp = await startControlPlane({ replicas: [a.address], scrapeIntervalMs: 10, logger: memoryLogger() });
  try {
    await waitFor('scraped', () => cp.state().replicas[0].metricsKnown);
    const store = cp.app.store;
    let publishes = 0;
    const publish = store.publish.bind(store);
    store.publish = (force?: boolean) => { publishes++; return publish(force); };
    const scrapes = a.requests;
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    const elapsed = Date.now() - t0;
    assert.ok(a.requests - scrapes >= 20, `${a.requests - scrapes} scrapes`);
    // A publish every 20 ms would be 25; the staleness checks (every 100 ms) are 5.
    assert.ok(publishes <= Math.ceil(elapsed / 100) + 1, `${publishes} publishes in ${elapsed} ms`);
    const v = cp.state().version;
    const changedAt = Date.now();
    a.values = { 'vllm:num_requests_waiting': 17 };
    await waitFor('new waiting value', () => cp.state().replicas[0].waiting === 17, 5000, 1);
    assert.equal(cp.state().version, v + 1n);
    assert.ok(Date.now() - changedAt < 1000);
  } finally {
    await cp.close();
    await a.close();
  }
});
