// `npm run bench:picker`: prefix-router behind the Endpoint Picker Protocol, measured two ways
// (bench/picker/README.md):
//   overhead       latency per request and CPU per request through `prefix-router picker`
//                  against the filter in the proxy (in-proxy), on an upstream that answers at once
//   active-active  the replicas' prefix-cache hit rate with K picker replicas against one, on
//                  simulated replicas with a control plane
// and, with --gie-epp, both again through the inference extension's endpoint picker.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { toolArgs } from '../cli/toolArgs.js';
import { runOverhead, type PathResult } from './picker/overhead.js';
import { runActiveActive, type ActiveActiveOptions, type ActiveActiveRun } from './picker/activeActive.js';
import { GIE_EPP_BINARY } from './picker/gieEpp.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const USAGE = `usage: npm run bench:picker -- [options]

  --only PART           overhead or active-active (default: both)
  --seconds N           overhead: measured seconds per path (default 10)
  --warmup N            overhead: warm-up seconds per path (default 2)
  --concurrency N       requests in flight (default 1 overhead: the hop's own latency, no queueing;
                        8 active-active)
  --prompt-tokens N     overhead: shared prompt start per request, tokens (default 1000)
  --pickers K           active-active: picker replicas compared with one (default 3)
  --requests N          active-active: requests per run (default 480)
  --groups N            active-active: distinct system prompts (default 40)
  --seed N              active-active: workload seed of the first repeat (default 1)
  --repeats N           active-active: runs per picker count, seeds seed..seed+N-1 (default 3)
  --time-scale F        active-active: the simulated engines run F times faster than real time
                        (default 50). The pickers' exchange through the control plane runs in
                        real time, so at F the other pickers' work is F times staler in engine
                        time than in production: F 1 is faithful, F 50 is quick
  --no-response-processing
                        active-active: the gateway skips response processing, so each ext_proc
                        stream (and the filter's count of its work) ends at the decision
  --gie-epp             also measure the inference extension's endpoint picker v1.5.0 (the
                        code llm-d's router grew from; .peers/bin/gie-epp from
                        npm run peers:install) on the same path: a third overhead path, and
                        its own 1 and K picker active-active runs
  --wasm FILE           route with this build of the filter (default plugin/prefix-router.wasm)
  --json                print the result as one JSON object
  -h, --help            this text

Needs the built CLI and module (npm run build; the npm script builds them).
`;

export interface PickerBenchResult {
  overhead?: { paths: PathResult[]; addedLatencyMs: { p50: number; p99: number }; gieEppAddedLatencyMs?: { p50: number; p99: number } };
  /** Runs in pairs (1 picker, K pickers) per seed; the ratio is of the mean hit rates. */
  activeActive?: ActiveActiveResult;
  /** The same through gie-epp pickers (--gie-epp). */
  gieEppActiveActive?: ActiveActiveResult;
}

interface ActiveActiveResult { options: ActiveActiveOptions; runs: ActiveActiveRun[]; meanHitRate: Record<string, number>; hitRateRatio: number }

export async function main(argv: string[]): Promise<number> {
  const { values: v, fail, int } = toolArgs('bench:picker', USAGE, {
    only: { type: 'string' }, seconds: { type: 'string' }, warmup: { type: 'string' }, concurrency: { type: 'string' },
    'prompt-tokens': { type: 'string' }, pickers: { type: 'string' }, requests: { type: 'string' }, groups: { type: 'string' },
    seed: { type: 'string' }, repeats: { type: 'string' }, 'time-scale': { type: 'string' }, 'no-response-processing': { type: 'boolean' }, 'gie-epp': { type: 'boolean' }, wasm: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, false, argv);
  const only = v.only;
  if (only !== undefined && only !== 'overhead' && only !== 'active-active') fail(`--only must be overhead or active-active; got '${only}'`);
  const seconds = int('seconds', v.seconds, 10, 1);
  const warmup = int('warmup', v.warmup, 2, 0);
  const concurrency = v.concurrency === undefined ? undefined : int('concurrency', v.concurrency, 0, 1);
  const promptTokens = int('prompt-tokens', v['prompt-tokens'], 1000, 1);
  const timeScale = Number(v['time-scale'] ?? 50);
  if (!(timeScale > 0 && timeScale <= 1000)) fail(`--time-scale must be a number in (0, 1000], not ${v['time-scale']}`);
  const pickers = int('pickers', v.pickers, 3, 2);
  const requests = int('requests', v.requests, 480, 1);
  const groups = int('groups', v.groups, 40, 1);
  const seed = int('seed', v.seed, 1, 0);
  const repeats = int('repeats', v.repeats, 3, 1);
  const cli = `${ROOT}dist/prefix-router.js`;
  const wasm = v.wasm ?? `${ROOT}plugin/prefix-router.wasm`;
  for (const f of [cli, wasm]) if (!existsSync(f)) { process.stderr.write(`bench:picker: ${f} is missing: npm run build\n`); return 1; }
  const gieEpp = v['gie-epp'] ? GIE_EPP_BINARY : undefined;
  if (gieEpp && !existsSync(gieEpp)) { process.stderr.write(`bench:picker: --gie-epp: ${gieEpp} is missing: npm run peers:install\n`); return 1; }
  const say = (s: string) => { if (!v.json) process.stdout.write(s); };
  const result: PickerBenchResult = {};
  if (only !== 'active-active') {
    say(`overhead: ${seconds} s per path, concurrency ${concurrency ?? 1}, ${promptTokens}-token prompt starts\n`);
    const paths = await runOverhead({ cli, wasm, seconds, warmupSeconds: warmup, concurrency: concurrency ?? 1, promptTokens, groups: 8, gieEpp });
    const [a, b] = paths as [PathResult, PathResult];
    result.overhead = { paths, addedLatencyMs: { p50: b.latencyMs.p50 - a.latencyMs.p50, p99: b.latencyMs.p99 - a.latencyMs.p99 } };
    for (const p of paths) {
      const cpu = Object.entries(p.cpuUsPerRequest).map(([k, us]) => `${k} ${us.toFixed(0)} us`).join(', ');
      say(`  ${p.path.padEnd(9)} ${p.requests} ok, ${p.errors} errors; latency p50 ${p.latencyMs.p50.toFixed(2)} ms, p99 ${p.latencyMs.p99.toFixed(2)} ms; CPU per request: ${cpu}\n`);
    }
    say(`  added by the picker hop: p50 ${result.overhead.addedLatencyMs.p50.toFixed(2)} ms, p99 ${result.overhead.addedLatencyMs.p99.toFixed(2)} ms\n`);
    const c = paths[2];
    if (c) {
      result.overhead.gieEppAddedLatencyMs = { p50: c.latencyMs.p50 - a.latencyMs.p50, p99: c.latencyMs.p99 - a.latencyMs.p99 };
      say(`  added by the gie-epp hop: p50 ${result.overhead.gieEppAddedLatencyMs.p50.toFixed(2)} ms, p99 ${result.overhead.gieEppAddedLatencyMs.p99.toFixed(2)} ms\n`);
    }
  }
  if (only !== 'overhead') {
    const options: ActiveActiveOptions = { wasm, replicas: 4, groups, systemTokens: 1500, requests, concurrency: concurrency ?? 8, kvBlocks: 1200, timeScale, seed, responseProcessing: !v['no-response-processing'] };
    say(`active-active: ${requests} requests, ${groups} system prompts of ${options.systemTokens} tokens, ${options.replicas} replicas of ${options.kvBlocks * 16} KV tokens\n`);
    const series = async (picker?: string): Promise<ActiveActiveResult> => {
      const runs: ActiveActiveRun[] = [];
      for (let r = 0; r < repeats; r++) {
        for (const k of [1, pickers]) {
          const run = await runActiveActive(k, { ...options, seed: seed + r }, picker);
          runs.push(run);
          say(`  ${run.picker}, seed ${seed + r}, ${k} picker(s): hit rate ${run.hitRate.toFixed(3)}, ${run.ok}/${run.requests} ok, per replica ${run.perReplica.join('/')}\n`);
        }
      }
      const mean = (k: number) => { const xs = runs.filter((x) => x.pickers === k).map((x) => x.hitRate); return xs.reduce((a, b) => a + b, 0) / xs.length; };
      const ratio = mean(1) > 0 ? mean(pickers) / mean(1) : NaN;
      say(`  ${runs[0]!.picker}: mean hit rate: 1 picker ${mean(1).toFixed(3)}, ${pickers} pickers ${mean(pickers).toFixed(3)}\n`);
      say(`  ${runs[0]!.picker}: hit rate with ${pickers} pickers / with 1: ${ratio.toFixed(3)}\n`);
      return { options, runs, meanHitRate: { '1': mean(1), [String(pickers)]: mean(pickers) }, hitRateRatio: ratio };
    };
    result.activeActive = await series();
    if (gieEpp) result.gieEppActiveActive = await series(gieEpp);
  }
  if (v.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`bench:picker: ${e instanceof Error ? e.stack : String(e)}\n`); process.exitCode = 1; });
}
