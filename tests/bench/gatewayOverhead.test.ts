// npm run bench:gateway-overhead: a smoke run of seconds (the JSON it prints has the documented
// shape; speed itself is never asserted), the CPU reading it rests on, and bad flags refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT, runScript } from '../tools/npmScript.js';
import { cpuNs } from '../../bench/peers/processes.js';
import type { OverheadRow } from '../../bench/gatewayOverhead.js';

test('on-CPU nanoseconds of a process tree come from /proc and grow with work; a gone process reads 0', () => {
  // 50 ms of this process's own CPU time (getrusage), however busy the machine: /proc must see most of it.
  const a = cpuNs(process.pid);
  const start = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(start).user < 50_000) x += Math.sqrt(x + 1);
  const b = cpuNs(process.pid);
  assert.ok(x > 0);
  assert.ok(b - a >= 40e6, `${b - a} ns for 50 ms of work`);
  assert.equal(cpuNs(-1), 0);
});

test('smoke: prefix-router gateway alone and the same build as a baseline, fast replicas, two rounds', async () => {
  const r = await runScript('bench:gateway-overhead', [
    '--routers', 'prefix-router/gateway-only', '--baseline', join(ROOT, 'dist/prefix-router.js'),
    '--pairs', '4', '--rounds', '2', '--warmup', '8', '--idle-ms', '100', '--time-scale', '100', '--json',
  ], 120_000);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as OverheadRow[];
  assert.deepEqual(rows.map((x) => x.router), ['prefix-router/gateway-only', 'prefix-router/gateway-only@baseline']);
  for (const row of rows) {
    assert.equal(row.routedRequests, 2 * (4 + 3), 'pairs and the probe warm-up of each round');
    assert.equal(row.roundP50Ms.length, 2);
    assert.ok(Number.isFinite(row.addedMs.p50) && row.addedMs.p95 >= row.addedMs.p50, JSON.stringify(row));
    assert.ok(row.cpuMsPerRequest > 0 && row.netCpuMsPerRequest >= 0 && row.netCpuMsPerRequest <= row.cpuMsPerRequest, JSON.stringify(row));
    assert.ok(row.idleCpuMsPerS >= 0);
  }
  assert.match(r.stderr, /round 2 prefix-router\/gateway-only@baseline: added p50/);
});

test('bad flags are refused with exit 2 and say why', async () => {
  for (const [args, why] of [
    [['--routers', 'nginx'], /--routers: unknown router 'nginx'/],
    [['--pairs', '0'], /--pairs must be a whole number >= 1; got '0'/],
    [['--time-scale', 'fast'], /--time-scale: expected a number > 0/],
    [['--baseline', '/nonexistent/dist/prefix-router.js'], /--baseline: \/nonexistent\/dist\/prefix-router.js is missing/],
  ] as Array<[string[], RegExp]>) {
    const r = await runScript('bench:gateway-overhead', args, 60_000);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});
