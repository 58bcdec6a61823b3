// The embedded gateway with the real filter in front of simulated replicas,
// driven by the official openai client: completions, chat, streaming.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ProxyWasmHost } from '../../host/index.js';
import { startGateway } from '../../host/gateway.js';
import { startReplicas } from '../../simulator/main.js';

const WASM = readFileSync(fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url)));

test('openai client through the embedded gateway: completions, chat, streaming, prefix affinity', async () => {
  const sims = await startReplicas({ replicas: 2, basePort: 0, host: '127.0.0.1', timeScale: 50 });
  const addresses = sims.replicas.map((r) => `127.0.0.1:${r.port}`);
  const host = await ProxyWasmHost.create({ wasm: WASM, workers: 2, pluginConfig: JSON.stringify({ replicas: addresses, debugHeaders: true }), logLevel: 'warn' });
  const gw = await startGateway({ host, listen: { host: '127.0.0.1', port: 0 } });
  try {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const model = 'Qwen/Qwen2.5-3B-Instruct';

    const c = await client.completions.create({ model, prompt: 'Say hello', max_tokens: 5 });
    assert.equal(c.object, 'text_completion');
    assert.ok(c.choices[0].text.length > 0);

    const system = 'You are a careful assistant who answers in one line. '.repeat(40);
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const { data, response } = await client.chat.completions
        .create({ model, messages: [{ role: 'system', content: system }, { role: 'user', content: `question ${i}` }], max_tokens: 4 })
        .withResponse();
      assert.equal(data.object, 'chat.completion');
      seen.add(response.headers.get('x-prefix-router-endpoint')!);
      assert.ok(addresses.includes(response.headers.get('x-prefix-router-endpoint')!));
      if (i > 0) assert.ok((data.usage?.prompt_tokens_details?.cached_tokens ?? 0) > 0, 'prefix cache hit on the replica');
    }
    assert.equal(seen.size, 1, 'a shared system prompt stays on one replica');

    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'stream please' }], max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    let chunks = 0;
    let usage = 0;
    for await (const ev of stream) {
      chunks++;
      if (ev.usage) usage = ev.usage.completion_tokens;
    }
    assert.ok(chunks >= 6, `chunks ${chunks}`);
    assert.equal(usage, 6);
  } finally {
    await gw.close();
    await host.close();
    await sims.close();
  }
});
