// `npm run chaos` fast, through its own command line: each fault scenario once, under load
// from a separate process, with the simulated replicas at a high time scale and fewer
// requests. Asserts behaviour only (no failed requests beyond those allowed, state kept and
// caught up, traffic left the faulty replica), never wall-clock speed.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runScript, type ScriptRun } from '../tools/npmScript.js';

const FAST = ['--requests', '5000', '--time-scale', '50', '--warm-up', '100', '--down-ms', '500', '--corrupt-ms', '800'];
const SCENARIO_NAMES = ['control-plane-restart', 'replica-killed', 'metrics-hang', 'corrupted-state'];
interface ScenarioJson { name: string; requests: number; failed: number; recoveryMs: number | null; recovery: string; checks: Array<{ what: string; ok: boolean; detail: string }>; details: object }
let run: ScriptRun;
const results = new Map<string, ScenarioJson>();

before(async () => {
  run = await runScript('chaos', ['--json', ...FAST], 600_000);
  const lines = run.stdout.trim().split('\n');
  if (lines.length === 1 && lines[0].startsWith('{')) for (const r of (JSON.parse(lines[0]) as { scenarios: ScenarioJson[] }).scenarios) results.set(r.name, r);
});

test('npm run chaos -- --json: one JSON line with every scenario, exit 0 when every check holds', () => {
  assert.deepEqual([...results.keys()], SCENARIO_NAMES, `stdout: ${run.stdout.slice(0, 500)}\nstderr: ${run.stderr.slice(-2000)}`);
  for (const r of results.values()) {
    assert.deepEqual(Object.keys(r), ['name', 'requests', 'failed', 'recoveryMs', 'recovery', 'checks', 'details']);
    assert.ok(r.requests > 0 && r.checks.length > 0, r.name);
  }
  const failed = [...results.values()].flatMap((r) => r.checks.filter((c) => !c.ok).map((c) => `${r.name}: ${c.what}: ${c.detail}`));
  assert.equal(run.code, failed.length === 0 ? 0 : 1, failed.join('\n'));
});

function check(name: string, what: string): void {
  const r = results.get(name);
  assert.ok(r, `no result for ${name}`);
  const c = r.checks.find((x) => x.what === what);
  assert.ok(c, `no check '${what}' in ${name}`);
  assert.ok(c.ok, `${name}: ${what}: ${c.detail}`);
}

test('control plane SIGKILLed and restarted under load: no failed request, last state kept, then caught up', () => {
  for (const what of ['no failed request', 'requests kept flowing while the control plane was down', 'the last good state was kept while down', 'state caught up after the restart']) check('control-plane-restart', what);
});

test('replica killed under load: only requests in flight on it may fail, later ones are retried on the runner-up, traffic leaves it', () => {
  for (const what of ['failed requests no more than those in flight on the dead replica', 'requests sent to the dead replica after the kill were retried on the runner-up', 'traffic left the dead replica']) check('replica-killed', what);
});

test('replica killed: two failed scrapes take it out of the state', () => {
  check('replica-killed', 'two failed scrapes after the kill take the replica out of the state');
});

test("a replica's /metrics hanging: marked stale, the scrape loop goes on, traffic leaves it, nothing fails", () => {
  for (const what of ['no failed request', 'the replica was marked stale', 'the scrape loop went on while it hung (other replicas scraped since)', 'traffic left the replica']) check('metrics-hang', what);
});

test('corrupted state payloads: rejected, last good state kept, nothing fails, good state taken again', () => {
  for (const what of ['no failed request', 'corrupted payloads were served and rejected', 'the last good state was kept', 'good state taken again once the payloads are whole']) check('corrupted-state', what);
});
