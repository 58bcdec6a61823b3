// npm run chaos [-- --json] [--scenario NAME] [--time-scale F] [--concurrency N] [--requests N]
// Runs the fault scenarios under load (scenarios.ts) and prints scenario, requests, failed,
// recovery ms and each behavioural check. Exit 1 when a check fails.
import { parseArgs } from 'node:util';
import { CHAOS_DEFAULTS, SCENARIOS, type ChaosOptions, type ScenarioName, type ScenarioResult } from './scenarios.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean' }, scenario: { type: 'string', multiple: true }, 'time-scale': { type: 'string' },
    concurrency: { type: 'string' }, requests: { type: 'string' },
  },
});
const names = (values.scenario?.length ? values.scenario : Object.keys(SCENARIOS)) as ScenarioName[];
for (const n of names) {
  if (!(n in SCENARIOS)) {
    console.error(`--scenario: unknown '${n}' (one of ${Object.keys(SCENARIOS).join(', ')})`);
    process.exit(2);
  }
}
const num = (flag: string, v: string | undefined, fallback: number, min: number): number => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${flag}: expected a number >= ${min}, got '${v}'`);
    process.exit(2);
  }
  return n;
};
const o: ChaosOptions = {
  ...CHAOS_DEFAULTS,
  timeScale: num('time-scale', values['time-scale'], CHAOS_DEFAULTS.timeScale, 0.01),
  concurrency: num('concurrency', values.concurrency, CHAOS_DEFAULTS.concurrency, 1),
  requests: num('requests', values.requests, CHAOS_DEFAULTS.requests, 500),
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
