// Smoke test: the real filter (plugin/prefix-router.wasm, built by npm run build:wasm) in this host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost, SharedDataStore, runRequest } from '../../host/index.js';

const WASM = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
const skip = existsSync(WASM) ? false : 'plugin/prefix-router.wasm is absent: run npm run build:wasm first';

test('the real filter loads and routes a POST /v1/completions to a configured replica', { skip }, async () => {
  const replicas = ['127.0.0.1:1', '127.0.0.1:2'];
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(WASM), workers: 2, pluginConfig: JSON.stringify({ replicas }), logLevel: 'warn', sharedData: new SharedDataStore(),
  });
  try {
    const body = JSON.stringify({ model: 'qwen', prompt: 'Say hello to the prefix router', max_tokens: 8 });
    for (const chunkSize of [undefined, 7]) {
      const r = runRequest(host, { method: 'POST', path: '/v1/completions', headers: [['content-type', 'application/json']], body, chunkSize });
      assert.equal(r.localResponse, null);
      assert.ok(r.endpoint && replicas.includes(r.endpoint), `endpoint ${r.endpoint}`);
      assert.equal(Buffer.from(r.upstreamBody).toString(), body);
      assert.ok(r.wasmNs > 0n);
    }
    assert.equal(host.traps, 0);
  } finally {
    await host.close();
  }
});
