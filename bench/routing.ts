// npm run bench:routing [-- options]: how much prefix-router's routing gains over
// the routers users would pick instead, in one deterministic simulated run.
// See bench/routing/README.md.
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { html, table, toJson } from './routing/report.js';
import { runScenario, type WorkloadResult } from './routing/runner.js';
import { DEFAULT_SCENARIO_OPTIONS, SHAPES, buildScenarios } from './routing/scenarios.js';
import { DEFAULT_WORKLOAD_DIR, readSharedPrefixShape } from './routing/workloads.js';

/** --quick: this fraction of the requests, 3 replicas only. */
const QUICK_REQUEST_SCALE = 0.2;
export const STATE_DELIVERY = 'Scorer state reaches the filter every 50 ms of virtual time as the filter\'s own poller publishes it: shared-data keys prefix_router.state ([u64 receivedAtNs][payload]) and the stamp [u64 version][u64 controlPlaneSeenNs] at the head of prefix_router.inflight (plugin/sharedData.ts), written into each gateway\'s store (host/ answers proxy_http_call over real sockets only, so the long poll cannot be served in virtual time).';

const USAGE = `usage: npm run bench:routing -- [options]
  --quick               small run (${QUICK_REQUEST_SCALE * 100}% of the requests, 3 replicas only)
  --seed N              seed of every random choice (default 1)
  --json                print the JSON document on stdout (the table goes to stderr)
  --out FILE            also write the JSON document to FILE
  --html FILE           write the HTML report (inline SVG charts) to FILE
  --trace FILE          also replay a Mooncake-format JSONL trace
  --trace-limit N       replay at most N trace records (default all)
  --trace-replicas N    replicas for the trace (default 3)
  --workloads DIR       inference-perf configs (default ${DEFAULT_WORKLOAD_DIR})
  --only a,b            run only scenarios whose name contains one of these
  --policies a,b        run only policies whose name contains one of these
  --no-scale            skip the 8- and 16-replica scenarios
  --requests-scale F    multiply every request count by F
  --wasm FILE           route with this build of the filter (default plugin/prefix-router.wasm)`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

function positive(v: string | undefined, name: string, def: number, integer: boolean): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) fail(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean' }, seed: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, html: { type: 'string' },
        trace: { type: 'string' }, 'trace-limit': { type: 'string' }, 'trace-replicas': { type: 'string' }, workloads: { type: 'string' },
        only: { type: 'string' }, policies: { type: 'string' }, 'no-scale': { type: 'boolean' }, 'requests-scale': { type: 'string' }, wasm: { type: 'string' }, help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  if (args.help) { process.stdout.write(USAGE + '\n'); return; }
  const seed = args.seed === undefined ? 1 : Number(args.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`--seed must be an integer 0..4294967295, got '${args.seed}'`);
  const quick = args.quick === true;
  const scale = positive(args['requests-scale'], 'requests-scale', 1, false) * (quick ? QUICK_REQUEST_SCALE : 1);
  const workloadDir = args.workloads ?? DEFAULT_WORKLOAD_DIR;
  const scenarios = buildScenarios({
    ...DEFAULT_SCENARIO_OPTIONS,
    workloadDir,
    seed,
    requestScale: scale,
    scaleReplicas: quick || args['no-scale'] ? [] : DEFAULT_SCENARIO_OPTIONS.scaleReplicas,
    variantShapes: quick ? ['sp-32x32', 'one-system-prompt'] : DEFAULT_SCENARIO_OPTIONS.variantShapes,
    trace: args.trace ? { file: args.trace, replicas: positive(args['trace-replicas'], 'trace-replicas', 3, true), limit: positive(args['trace-limit'], 'trace-limit', Infinity, true) } : undefined,
  }).filter((s) => !args.only || args.only.split(',').some((f) => s.name.includes(f)));
  if (scenarios.length === 0) fail(`no scenario matches --only ${args.only}`);
  // Every input the chosen scenarios read is checked before the first runs: a bad one stops the run, not one scenario of it.
  for (const s of SHAPES) {
    if (!scenarios.some((sc) => sc.name.split('@')[0] === s.name)) continue;
    try { readSharedPrefixShape(join(workloadDir, s.file)); } catch (e) { fail((e as Error).message); }
  }
  if (args.trace) { try { accessSync(args.trace, constants.R_OK); } catch (e) { fail(`--trace: cannot read '${args.trace}': ${(e as NodeJS.ErrnoException).code}`); } }
  const policyFilter = args.policies ? args.policies.split(',') : undefined;
  let wasm: Uint8Array | undefined;
  if (args.wasm !== undefined) {
    try {
      wasm = readFileSync(args.wasm);
    } catch (e) {
      fail(`--wasm: cannot read '${args.wasm}': ${(e as Error).message}`);
    }
  }

  const started = performance.now();
  const results: WorkloadResult[] = [];
  for (const sc of scenarios) {
    const t0 = performance.now();
    let r: WorkloadResult;
    try {
      r = await runScenario(sc, { seed, policyFilter, wasm });
    } catch (e) {
      process.stderr.write(`scenario ${sc.name} failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
      continue;
    }
    results.push(r);
    process.stderr.write(`${sc.name}: ${r.policies.length} policies, ${r.requests} requests each, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const doc = toJson(results, { seed, quick, stateDelivery: STATE_DELIVERY });
  const text = table(results);
  if (args.json) {
    process.stderr.write(text);
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(text);
  }
  if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + '\n');
  if (args.html) {
    const command = `npm run bench:routing -- ${process.argv.slice(2).join(' ')}`.trim();
    writeFileSync(args.html, html(results, { seed, command, stateDelivery: STATE_DELIVERY }));
    process.stderr.write(`HTML report: ${args.html}\n`);
  }
  process.stderr.write(`total ${((performance.now() - started) / 1000).toFixed(1)} s wall clock\n`);
}

await main();
