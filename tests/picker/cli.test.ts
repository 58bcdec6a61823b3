// `prefix-router picker` as a user runs it: bad flags refused with the usage, a real start that
// serves health and one pick, and a clean exit on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { ROOT } from '../tools/npmScript.js';
import { HealthClientConstructor, ServingStatus } from '../../picker/health.js';
import { parsePickerArgs } from '../../picker/main.js';
import { ExtProcClientConstructor } from '../../host/endpointPicker/protocol.js';
import { REPLICAS } from '../filter/support.js';
import { ProxyStream, metadataEndpoints } from './support.js';

const CLI = ['--import', 'tsx', 'cli/prefix-router.ts', 'picker'];

test('flags: bad ones are refused naming the flag; the configuration must be an object; fallbackHeader and subsetHeader are turned on, the rest is the user\'s', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [...CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: prefix-router picker/);
  for (const [args, why] of [
    [['--config', '{}', '--port', '70000'], /--port must be 0..65535/],
    [['--config', '[1]'], /--config must be a JSON object/],
    [['--config', '{}', '--request-body-mode', 'STREAMED'], /--request-body-mode must be FULL_DUPLEX_STREAMED or BUFFERED/],
    [['--port', '1'], /--config is required/],
  ] as const) {
    const r = run([...args]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /usage: prefix-router picker/);
  }
  const cfg = parsePickerArgs(['--config', '{"replicas":["10.0.0.1:8000"],"fallbackHeader":false,"subsetHeader":false}']);
  assert.notEqual(cfg, 'help');
  assert.deepEqual(JSON.parse((cfg as { pluginConfig: string }).pluginConfig), { replicas: ['10.0.0.1:8000'], fallbackHeader: true, subsetHeader: true, work: { evictionReuseFloor: 1 } });
  const own = parsePickerArgs(['--config', '{"replicas":["10.0.0.1:8000"],"work":{"chunkTokens":4096,"evictionReuse":0}}']);
  assert.deepEqual(JSON.parse((own as { pluginConfig: string }).pluginConfig).work, { evictionReuseFloor: 1, chunkTokens: 4096, evictionReuse: 0 }, 'the user\'s work stays');
  const floor = parsePickerArgs(['--config', '{"replicas":["10.0.0.1:8000"],"work":{"evictionReuseFloor":0}}']);
  assert.equal(JSON.parse((floor as { pluginConfig: string }).pluginConfig).work.evictionReuseFloor, 0, 'a floor the user names stays');
});

test('a real start: health SERVING, one request picked, exit 0 on SIGTERM', async () => {
  const child = spawn(process.execPath, [...CLI, '--config', JSON.stringify({ replicas: REPLICAS }), '--port', '0', '--health-port', '0', '--metrics-port', '0', '--workers', '1'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('close', r));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no start line: ${out}`)), 20_000);
      child.stdout.on('data', () => { if (out.includes('\n')) { clearTimeout(t); resolve(); } });
    });
    const m = /ext_proc on (\S+), health on (\S+), metrics at (\S+) \(1 filter VMs\)/.exec(out);
    assert.ok(m, out);
    const health = new HealthClientConstructor(m[2]!, grpc.credentials.createInsecure());
    const status = await new Promise<number>((resolve, reject) => health.Check({ service: 'readiness' }, (e, r) => (e ? reject(e) : resolve(r!.status))));
    health.close();
    assert.equal(status, ServingStatus.SERVING);
    const client = new ExtProcClientConstructor(m[1]!, grpc.credentials.createInsecure());
    const s = new ProxyStream(client);
    s.headers([[':method', 'GET'], [':path', '/v1/models'], [':authority', 'gw'], [':scheme', 'http']], true);
    assert.equal(metadataEndpoints((await s.next()).dynamic_metadata).length, 2);
    s.finish();
    client.close();
    assert.match(await (await fetch(m[3]!)).text(), /prefix_router_picker_streams_total 1/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
});
