// npm run bench:routing [-- options]: how much prefix-router's routing gains over
// the routers users would pick instead, in one deterministic simulated run.
// See bench/routing/README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intFlags, positiveFlags } from '../cli/toolArgs.js';
import { DEFAULT_EXTRA_LOADS, DEFAULT_LOADS, DEFAULT_LONG_CONTEXT_SLO_MS, DEFAULT_SLO_MS, DEFAULT_TRACE_SLO_MS, DEFAULT_VARIANT_LOAD, LADDER_REPLICAS, runLadder, type LadderResult } from './routing/ladder.js';
import { ladderHtml, ladderJson, ladderTable } from './routing/ladderReport.js';
import { html, table, toJson } from './routing/report.js';
import { runScenario, type WorkloadResult } from './routing/runner.js';
import { DEFAULT_SCENARIO_OPTIONS, LADDER_POLICIES, LADDER_VARIANTS, SHAPES, buildLadderShapes, buildScenarios } from './routing/scenarios.js';
import { DEFAULT_WORKLOAD_DIR, readSharedPrefixShape } from './routing/workloads.js';
import { FEATURE_EXPERIMENTS, featureTable, runFeature, type FeatureResult } from './routing/features.js';
import { readMooncakeTrace } from './routing/mooncake.js';

/** --fixed-overload --quick: this fraction of the requests, 3 replicas only. */
const QUICK_REQUEST_SCALE = 0.2;
/** --quick's ladder: replicas and share of the requests. */
const QUICK_LADDER_REPLICAS = 4;
const QUICK_LADDER_SCALE = 0.5;
/** Routers whose targets are checked: the product, and the prototype that reaches them. */
const ROUTERS_UNDER_TEST = ['prefix-router', 'proto-work'];
export const STATE_DELIVERY = 'Every gateway\'s filter long-polls one control plane on the simulation\'s clock (bench/routing/virtualControlPlane.ts: the real StateStore, FleetExchange and poll logic, served as an in-process Envoy cluster); each 50 ms of virtual time is a scrape of every replica, and the polls carry the gateways\' fleet reports.';

const USAGE = `usage: npm run bench:routing -- [options]
The load ladder (default): every workload at fractions of round robin's capacity on it.
  --quick               small ladder (${QUICK_LADDER_REPLICAS} replicas, ${QUICK_LADDER_SCALE * 100}% of the requests, no entry-point variants)
  --replicas N          replicas (default ${LADDER_REPLICAS})
  --loads a,b,...       rungs as fractions of round robin's capacity (default ${DEFAULT_LOADS.join(',')})
  --extra-loads a,b     rungs tried for policies still under the SLO at the top (default ${DEFAULT_EXTRA_LOADS.join(',')}; 'none' for none)
  --slo MS              TTFT p95 SLO of goodput (default ${DEFAULT_SLO_MS})
  --slo-long-context MS the long-context shape's SLO (default ${DEFAULT_LONG_CONTEXT_SLO_MS}: a cold 40k-token prefill alone takes 9 s)
  --variant-load F      rung of the worker-VM / gateway variants (default ${DEFAULT_VARIANT_LOAD})
  --no-variants         skip the variants
  --slo-trace MS        the trace's SLO (default ${DEFAULT_TRACE_SLO_MS}: a production trace's prompts run to tens of thousands of tokens)
  --trace-rate a,b      replay --trace at these multiples of its own rate instead of the ladder's rungs
Admission, session affinity and LoRA affinity, each with and without, beside the baselines:
  --features            run those workloads instead of the ladder (--only overload,sessions,lora; --quick: a quarter of the requests)
The old scenario table at a fixed overload (1.25x round robin's capacity):
  --fixed-overload      run it instead of the ladder (--quick: ${QUICK_REQUEST_SCALE * 100}% of the requests, 3 replicas only)
  --no-scale            skip its 8- and 16-replica scenarios
Both:
  --seed N              seed of every random choice (default 1)
  --json                print the JSON document on stdout (the table goes to stderr)
  --out FILE            also write the JSON document to FILE
  --html FILE           write the HTML report (inline SVG charts) to FILE
  --trace FILE          also replay a Mooncake-format JSONL trace
  --trace-limit N       replay at most N trace records (default all)
  --trace-replicas N    replicas for the trace (default: --replicas; 3 with --fixed-overload)
  --workloads DIR       inference-perf configs (default ${DEFAULT_WORKLOAD_DIR})
  --only a,b            run only scenarios whose name contains one of these
  --policies a,b        run only policies whose name contains one of these
  --requests-scale F    multiply every request count by F (a trace: its first F)
  --wasm FILE           route with this build of the filter (default plugin/prefix-router.wasm)`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

const int = intFlags(fail);
const positive = positiveFlags(fail);

function numberList(v: string | undefined, name: string, def: number[]): number[] {
  if (v === undefined) return def;
  if (v === 'none') return [];
  const out = v.split(',').map(Number);
  if (out.length === 0 || out.some((x) => !Number.isFinite(x) || x <= 0)) fail(`--${name} must be a comma-separated list of positive numbers, got '${v}'`);
  return out.sort((a, b) => a - b);
}

type Args = Record<string, string | boolean | undefined>;

async function ladder(args: Args, seed: number, quick: boolean, wasm: Uint8Array | undefined): Promise<void> {
  const str = (k: string) => args[k] as string | undefined;
  const loads = numberList(str('loads'), 'loads', DEFAULT_LOADS);
  const extraLoads = numberList(str('extra-loads'), 'extra-loads', DEFAULT_EXTRA_LOADS).filter((l) => l > loads[loads.length - 1]!);
  const replicas = int('replicas', str('replicas'), quick ? QUICK_LADDER_REPLICAS : LADDER_REPLICAS, 1);
  const sloMs = positive('slo', str('slo'), DEFAULT_SLO_MS);
  const longContextSloMs = positive('slo-long-context', str('slo-long-context'), DEFAULT_LONG_CONTEXT_SLO_MS);
  const traceSloMs = positive('slo-trace', str('slo-trace'), DEFAULT_TRACE_SLO_MS);
  const variantLoad = positive('variant-load', str('variant-load'), DEFAULT_VARIANT_LOAD);
  const scale = positive('requests-scale', str('requests-scale'), 1) * (quick ? QUICK_LADDER_SCALE : 1);
  const traceFile = str('trace');
  const traceRates = str('trace-rate') === undefined ? undefined : numberList(str('trace-rate'), 'trace-rate', []);
  if (traceRates?.length === 0) fail('--trace-rate: give at least one rate, or leave it out for the ladder\'s rungs');
  const shapes = buildLadderShapes({
    workloadDir: str('workloads') ?? DEFAULT_WORKLOAD_DIR, seed, replicas, requestScale: scale,
    maxLoad: Math.max(...loads, ...extraLoads, variantLoad),
    trace: traceFile ? {
      file: traceFile, replicas: int('trace-replicas', str('trace-replicas'), replicas, 1),
      limit: int('trace-limit', str('trace-limit'), Infinity, 1), rates: traceRates,
    } : undefined,
  }).filter((s) => !args.only || (args.only as string).split(',').some((f) => s.name.includes(f)));
  if (shapes.length === 0) fail(`no workload matches --only ${args.only}`);
  checkInputs(str('workloads') ?? DEFAULT_WORKLOAD_DIR, shapes.map((s) => s.name), traceFile);
  const filter = (specs: typeof LADDER_POLICIES) => specs.filter((p) => !args.policies || (args.policies as string).split(',').some((f) => p.name.includes(f)));
  const policies = filter(LADDER_POLICIES);
  const variants = quick || args['no-variants'] ? [] : filter(LADDER_VARIANTS);
  const started = performance.now();
  const results: LadderResult[] = [];
  for (const shape of shapes) {
    const t0 = performance.now();
    try {
      results.push(await runLadder(shape, {
        seed, loads, extraLoads, sloMs, longContextSloMs, traceSloMs, policies, variants, variantLoad, wasm,
        onProgress: process.env.BENCH_ROUTING_PROGRESS ? (m) => process.stderr.write(`${m}\n`) : undefined,
      }));
    } catch (e) {
      process.stderr.write(`workload ${shape.name} failed: ${(e as Error).stack}\n`);
      process.exitCode = 1;
      continue;
    }
    process.stderr.write(`${shape.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  const meta = { seed, quick, replicas, sloMs, longContextSloMs, ...(traceFile ? { traceSloMs } : {}), loads, extraLoads, stateDelivery: STATE_DELIVERY };
  const doc = ladderJson(results, meta, ROUTERS_UNDER_TEST);
  const text = ladderTable(results, ROUTERS_UNDER_TEST);
  if (args.json) {
    process.stderr.write(text);
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(text);
  }
  if (args.out) writeFileSync(args.out as string, JSON.stringify(doc, null, 2) + '\n');
  if (args.html) {
    const command = `npm run bench:routing -- ${process.argv.slice(2).join(' ')}`.trim();
    writeFileSync(args.html as string, ladderHtml(results, { seed, command, stateDelivery: STATE_DELIVERY }, ROUTERS_UNDER_TEST));
    process.stderr.write(`HTML report: ${args.html}\n`);
  }
  process.stderr.write(`total ${((performance.now() - started) / 1000).toFixed(1)} s wall clock\n`);
}

/** Every input the chosen workloads read is checked before the first runs: a bad one stops the run, not one workload of it. */
function checkInputs(workloadDir: string, names: string[], trace: string | undefined): void {
  for (const s of SHAPES) {
    if (!names.includes(s.name)) continue;
    try { readSharedPrefixShape(join(workloadDir, s.file)); } catch (e) { fail((e as Error).message); }
  }
  if (trace) { try { readMooncakeTrace(trace); } catch (e) { fail(`--trace: ${(e as Error).message}`); } }
}

async function features(args: { only?: string; json?: boolean; out?: string; workloads?: string; 'requests-scale'?: string }, seed: number, quick: boolean, wasm?: Uint8Array): Promise<void> {
  const chosen = FEATURE_EXPERIMENTS.filter((e) => !args.only || args.only.split(',').some((f) => e.name.includes(f)));
  if (chosen.length === 0) fail(`no feature workload matches --only ${args.only}`);
  const workloadDir = args.workloads ?? DEFAULT_WORKLOAD_DIR;
  checkInputs(workloadDir, chosen.some((e) => e.name === 'overload') ? ['sp-32x32'] : [], undefined);
  const scale = positive('requests-scale', args['requests-scale'], 1) * (quick ? 0.25 : 1);
  const results: FeatureResult[] = [];
  for (const e of chosen) {
    results.push(await runFeature(e, { seed, workloadDir, scale, wasm, onProgress: (m) => process.stderr.write(m + '\n') }));
  }
  const doc = { features: results, seed, quick, stateDelivery: STATE_DELIVERY };
  const text = featureTable(results);
  if (args.json) {
    process.stderr.write(text);
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else process.stdout.write(text);
  if (args.out) writeFileSync(args.out, JSON.stringify(doc, null, 2) + '\n');
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        quick: { type: 'boolean' }, seed: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, html: { type: 'string' },
        trace: { type: 'string' }, 'trace-limit': { type: 'string' }, 'trace-replicas': { type: 'string' }, workloads: { type: 'string' },
        only: { type: 'string' }, policies: { type: 'string' }, 'no-scale': { type: 'boolean' }, 'requests-scale': { type: 'string' }, wasm: { type: 'string' }, help: { type: 'boolean' },
        'fixed-overload': { type: 'boolean' }, features: { type: 'boolean' }, replicas: { type: 'string' }, loads: { type: 'string' }, 'extra-loads': { type: 'string' }, slo: { type: 'string' },
        'slo-long-context': { type: 'string' }, 'slo-trace': { type: 'string' }, 'variant-load': { type: 'string' }, 'no-variants': { type: 'boolean' }, 'trace-rate': { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    fail((e as Error).message);
  }
  if (args.help) { process.stdout.write(USAGE + '\n'); return; }
  const seed = int('seed', args.seed, 1, 0, 0xffffffff);
  const quick = args.quick === true;
  let wasm: Uint8Array | undefined;
  if (args.wasm !== undefined) {
    try {
      wasm = readFileSync(args.wasm);
    } catch (e) {
      fail(`--wasm: cannot read '${args.wasm}': ${(e as Error).message}`);
    }
  }
  if (args.features) return features(args, seed, quick, wasm);
  if (!args['fixed-overload']) return ladder(args, seed, quick, wasm);
  const scale = positive('requests-scale', args['requests-scale'], 1) * (quick ? QUICK_REQUEST_SCALE : 1);
  const workloadDir = args.workloads ?? DEFAULT_WORKLOAD_DIR;
  const scenarios = buildScenarios({
    ...DEFAULT_SCENARIO_OPTIONS,
    workloadDir,
    seed,
    requestScale: scale,
    scaleReplicas: quick || args['no-scale'] ? [] : DEFAULT_SCENARIO_OPTIONS.scaleReplicas,
    variantShapes: quick ? ['sp-32x32', 'one-system-prompt'] : DEFAULT_SCENARIO_OPTIONS.variantShapes,
    trace: args.trace ? { file: args.trace, replicas: int('trace-replicas', args['trace-replicas'], 3, 1), limit: int('trace-limit', args['trace-limit'], Infinity, 1) } : undefined,
  }).filter((s) => !args.only || args.only.split(',').some((f) => s.name.includes(f)));
  if (scenarios.length === 0) fail(`no scenario matches --only ${args.only}`);
  // Every input the chosen scenarios read is checked before the first runs: a bad one stops the run, not one scenario of it.
  checkInputs(workloadDir, scenarios.map((sc) => sc.name.split('@')[0]), args.trace);
  const policyFilter = args.policies ? args.policies.split(',') : undefined;

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
