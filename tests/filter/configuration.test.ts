// Bad configuration is rejected in onConfigure with a message naming the field
// and the expected shape; good ones load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REPLICAS, startHost } from './support.js';

const bad: Array<[string, string, RegExp]> = [
  ['empty', '', /needs 'controlPlane' or a non-empty 'replicas'/],
  ['not JSON', '{replicas:', /not valid JSON/],
  ['an array', '[]', /not a JSON object/],
  ['unknown field', JSON.stringify({ replicas: REPLICAS, replica: [] }), /unknown field 'replica'/],
  ['unknown nested field', JSON.stringify({ replicas: REPLICAS, weights: { prefx: 1 } }), /unknown field 'weights.prefx'/],
  ['hostname instead of ip', JSON.stringify({ replicas: ['vllm-0:8000'] }), /'replicas\[0\]' is not ip:port/],
  ['port out of range', JSON.stringify({ replicas: ['10.0.0.1:70000'] }), /'replicas\[0\]' is not ip:port/],
  ['duplicate replica', JSON.stringify({ replicas: ['10.0.0.1:1', '10.0.0.1:1'] }), /'replicas\[1\]' repeats/],
  ['negative weight', JSON.stringify({ replicas: REPLICAS, weights: { prefix: -1 } }), /'weights.prefix' must be a number from 0/],
  ['all-zero weights', JSON.stringify({ replicas: REPLICAS, weights: { prefix: 0, queue: 0, kvCache: 0, inflight: 0, work: 0 } }), /'weights' must not all be 0/],
  ['weight as string', JSON.stringify({ replicas: REPLICAS, weights: { queue: '1' } }), /'weights.queue' must be a number/],
  ['fractional blockChars', JSON.stringify({ replicas: REPLICAS, prefix: { blockChars: 10.5 } }), /'prefix.blockChars' must be a whole number from 8 to 4096/],
  ['negative work.evictionReuse', JSON.stringify({ replicas: REPLICAS, work: { evictionReuse: -1 } }), /'work.evictionReuse' must be a number from 0/],
  ['work.evictionReuseFloor above 1', JSON.stringify({ replicas: REPLICAS, work: { evictionReuseFloor: 2 } }), /'work.evictionReuseFloor' must be a number from 0 to 1/],
  ['huge maxBodyBytes', JSON.stringify({ replicas: REPLICAS, maxBodyBytes: 1e12 }), /'maxBodyBytes' must be a whole number/],
  ['fallbackHeader not a bool', JSON.stringify({ replicas: REPLICAS, fallbackHeader: 'yes' }), /'fallbackHeader' must be true or false/],
  ['bad path', JSON.stringify({ controlPlane: { path: 'v1/state' } }), /'controlPlane.path' must start with '\/'/],
  ['control plane without shared state', JSON.stringify({ controlPlane: {}, replicas: REPLICAS, sharedState: false }), /'controlPlane' needs 'sharedState': true/],
  // Of several bad fields the first is named, whichever check would fail after it.
  ['two bad fields in a section', JSON.stringify({ controlPlane: { longPollMs: 5, retryMs: 1 } }), /rejected: 'controlPlane\.longPollMs' must be a whole number from 100 to 60000\. Expected/],
  ['a bad field before a section check', JSON.stringify({ controlPlane: { cluster: '', path: 'v1/state' } }), /rejected: 'controlPlane\.cluster' must be a non-empty string\. Expected/],
  ['a bad field before a later section', JSON.stringify({ controlPlane: { retryMs: 1 }, replicas: 'x' }), /rejected: 'controlPlane\.retryMs' must be a whole number from 10 to 60000\. Expected/],
  ['a bad field before the header check', JSON.stringify({ replicas: REPLICAS, sessionAffinity: { enabled: 1, header: 'Bad Header' } }), /rejected: 'sessionAffinity\.enabled' must be true or false\. Expected/],
  ['a bad objective priority', JSON.stringify({ replicas: REPLICAS, admission: { objectives: { batch: 1.5, chat: 'x' } } }), /rejected: 'admission\.objectives\.batch' must be a whole number from -1000000 to 1000000\. Expected/],
  ...['controlPlane', 'weights', 'prefix', 'work', 'saturation'].map((section): [string, string, RegExp] =>
    [`${section} not an object`, JSON.stringify({ replicas: REPLICAS, [section]: [] }), new RegExp(`rejected: '${section}' must be an object\\. Expected`)]),
  ['a number past f64', `{"replicas":${JSON.stringify(REPLICAS)},"loadBoundEpsilon":1e309}`, /rejected: 'loadBoundEpsilon' must be a number from 0 to 10\. Expected/],
  ['deep nesting', '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}', /nested deeper than 32/],
  // Numbers outside JSON's grammar (a lenient parser read a prefix of them).
  ...['069304', '1.', '.5', '-', '+1', '1e', '1e+', '1.2.3', '--1', '1-2', '0x10'].map((n): [string, string, RegExp] =>
    [`number ${n}`, `{"replicas":${JSON.stringify(REPLICAS)},"maxBodyBytes":${n}}`, /not valid JSON/]),
];

for (const [name, config, message] of bad) {
  test(`rejects a configuration: ${name}`, async () => {
    let logs: Array<{ message: string }> = [];
    await assert.rejects(async () => {
      const { host, logs: l } = await startHost(config, { onLog: (e: { message: string }) => logs.push(e) } as never);
      logs = l;
      await host.close();
    });
    const line = logs.map((l) => String(l.message)).find((m) => m.includes('configuration rejected'));
    assert.ok(line, `no rejection log; logs: ${logs.map((l) => l.message).join(' | ')}`);
    assert.match(line!, message);
    assert.match(line!, /Expected: \{"controlPlane"/);
  });
}

test('accepts the documented full configuration', async () => {
  const config = {
    controlPlane: { cluster: 'cp', authority: 'cp.local', path: '/v1/state', longPollMs: 5000, retryMs: 100 },
    replicas: ['10.0.0.1:8000', { address: '[fd00::1]:8000', kvCapacityTokens: 150000 }],
    weights: { prefix: 5, queue: 1, kvCache: 1, inflight: 1 },
    prefix: { blockChars: 64, maxBlocks: 256, indexEntries: 65536, defaultCapacityTokens: 500000 },
    work: { prefillTimePerTokenMs: 0.228, chunkTokens: 2048, evictionReuse: 1.5 },
    loadBoundEpsilon: 0.5, stalenessMs: 2000, maxBodyBytes: 1048576, debugHeaders: true, fallbackHeader: false, sharedState: true,
  };
  const { host } = await startHost(config, { clusters: { cp: 'http://127.0.0.1:9' } });
  await host.close();
});
