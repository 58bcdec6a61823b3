// npm run chaos [-- options] (--help lists them)
// Runs the fault scenarios under load (scenarios.ts) and prints scenario, requests, failed,
// recovery ms and each behavioural check. Exit 1 when a check fails, 2 on a bad command line.
import { toolArgs } from '../../cli/toolArgs.js';
import { CHAOS_DEFAULTS, SCENARIOS, type ChaosOptions, type ScenarioName, type ScenarioResult } from './scenarios.js';

const USAGE = `usage: npm run chaos -- [options]
  --scenario NAME     run only this scenario (repeatable): ${Object.keys(SCENARIOS).join(', ')}
  --requests N        upper bound of requests per scenario, >= 100 (default ${CHAOS_DEFAULTS.requests})
  --concurrency N     requests in flight (default ${CHAOS_DEFAULTS.concurrency})
  --time-scale F      simulated replicas run F times faster than real time (default ${CHAOS_DEFAULTS.timeScale})
  --warm-up N         requests finished before a fault, and again after recovery (default ${CHAOS_DEFAULTS.warmUp})
  --down-ms MS        how long the control plane stays dead (default ${CHAOS_DEFAULTS.controlPlaneDownMs})
  --corrupt-ms MS     how long state payloads are corrupted (default ${CHAOS_DEFAULTS.corruptForMs})
  --json              one JSON line: {"scenarios": [{"name", "requests", "failed", "recoveryMs", "recovery", "checks", "details"}]}
  --help`;

const { values, fail, int } = toolArgs('chaos', USAGE, {
  json: { type: 'boolean' }, scenario: { type: 'string', multiple: true }, 'time-scale': { type: 'string' },
  concurrency: { type: 'string' }, requests: { type: 'string' }, 'warm-up': { type: 'string' }, 'down-ms': { type: 'string' },
  'corrupt-ms': { type: 'string' },
});
const names = (values.scenario?.length ? values.scenario : Object.keys(SCENARIOS)) as ScenarioName[];
for (const n of names) if (!(n in SCENARIOS)) fail(`--scenario: unknown '${n}' (one of ${Object.keys(SCENARIOS).join(', ')})`);
const num = (flag: string, v: string | undefined, fallback: number, min: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min) fail(`--${flag}: expected a number >= ${min}, got '${v}'`);
  return n;
};
const o: ChaosOptions = {
  ...CHAOS_DEFAULTS,
  timeScale: num('time-scale', values['time-scale'], CHAOS_DEFAULTS.timeScale, 0.01),
  concurrency: int('concurrency', values.concurrency, CHAOS_DEFAULTS.concurrency, 1),
  requests: int('requests', values.requests, CHAOS_DEFAULTS.requests, 100),
  warmUp: int('warm-up', values['warm-up'], CHAOS_DEFAULTS.warmUp, 1),
  controlPlaneDownMs: int('down-ms', values['down-ms'], CHAOS_DEFAULTS.controlPlaneDownMs, 0),
  corruptForMs: int('corrupt-ms', values['corrupt-ms'], CHAOS_DEFAULTS.corruptForMs, 100),
  log: (line) => process.stderr.write(`chaos: ${line}\n`),
};

const results: ScenarioResult[] = [];
for (const n of names) {
  process.stderr.write(`chaos: scenario ${n}\n`);
  results.push(await SCENARIOS[n](o));
}
const allOk = results.every((r) => r.checks.every((c) => c.ok));
if (values.json) {
  console.log(JSON.stringify({ scenarios: results.map((r) => ({ name: r.name, requests: r.requests, failed: r.failed, recoveryMs: r.recoveryMs, recovery: r.recovery, checks: r.checks, details: r.details })) }));
} else {
  const rows = [['scenario', 'requests', 'failed', 'recovery ms'], ...results.map((r) => [r.name, String(r.requests), String(r.failed), r.recoveryMs === null ? 'never' : String(r.recoveryMs)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  console.log('');
  for (const r of results) {
    console.log(`${r.name} (recovery: ${r.recovery})`);
    for (const c of r.checks) console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  }
}
process.exit(allOk ? 0 : 1);
