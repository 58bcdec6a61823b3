import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, validateConfig } from '../../control-plane/config.js';

const problems = (f: () => unknown): string[] => {
  try { f(); } catch (e) { if (e instanceof ConfigError) return e.problems; throw e; }
  assert.fail('expected a ConfigError');
};

test('flags: static replicas with defaults filled in', () => {
  const { config, token } = loadConfig(['--replicas', 'http://127.0.0.1:8001,127.0.0.1:8002', '--port', '0'], {});
  assert.deepEqual(config.replicas, ['http://127.0.0.1:8001', '127.0.0.1:8002']);
  assert.equal(config.port, 0);
  assert.equal(config.scrapeIntervalMs, 50);
  assert.equal(config.stalenessMs, 2000);
  assert.equal(config.host, '127.0.0.1');
  assert.deepEqual(config.weights, { prefix: 3, queue: 1, kvCache: 1, inflight: 1 });
  assert.equal(token, null);
  assert.equal(config.metricsNameFilter, true);
  assert.equal(loadConfig(['--replicas', '10.0.0.1:8000', '--no-metrics-name-filter'], {}).config.metricsNameFilter, false);
});

test('env: PREFIX_ROUTER_REPLICAS and PREFIX_ROUTER_API_TOKEN; a token file wins', () => {
  const { config, token, tokenSource } = loadConfig([], { PREFIX_ROUTER_REPLICAS: '10.0.0.1:8000 10.0.0.2:8000', PREFIX_ROUTER_API_TOKEN: ' s3cret ' });
  assert.deepEqual(config.replicas, ['10.0.0.1:8000', '10.0.0.2:8000']);
  assert.equal(token, 's3cret');
  assert.equal(tokenSource, 'env PREFIX_ROUTER_API_TOKEN');
  const dir = mkdtempSync(join(tmpdir(), 'cp-cfg-'));
  try {
    writeFileSync(join(dir, 'token'), 'from-file\n');
    const r = loadConfig(['--replicas', '10.0.0.1:8000', '--token-file', join(dir, 'token')], { PREFIX_ROUTER_API_TOKEN: 'env' });
    assert.equal(r.token, 'from-file');
    writeFileSync(join(dir, 'empty'), '\n');
    assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--token-file', join(dir, 'empty')], {}))[0], /tokenFile.*empty/);
    assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--token-file', join(dir, 'missing')], {}))[0], /tokenFile.*ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Kubernetes flags: namespace from POD_NAMESPACE, default selector, ConfigMap weights by default', () => {
  const { config } = loadConfig(['--k8s-selector', 'app=vllm'], { POD_NAMESPACE: 'serving' });
  assert.deepEqual(config.kubernetes, { namespace: 'serving', selector: 'app=vllm', targetPort: 8000 });
  assert.equal(config.weightsConfigMap, 'prefix-router-weights');
  const pool = loadConfig(['--inference-pool', 'vllm-qwen', '--namespace', 'ns2', '--weights-file', '/tmp/w.json'], {}).config;
  assert.deepEqual(pool.kubernetes, { namespace: 'ns2', inferencePool: 'vllm-qwen', targetPort: 8000 });
  assert.equal(pool.weightsConfigMap, undefined);
  const onlyNs = loadConfig(['--namespace', 'ns3'], {}).config;
  assert.equal(onlyNs.kubernetes!.selector, 'llm-d.ai/inferenceServing=true');
});

test('config file (YAML and JSON) under flags, including metric mappings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-cfg-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), 'replicas: [10.0.0.1:8000]\nscrapeIntervalMs: 100\nmetricMappings:\n  - {metric: "my:queue", field: waiting}\n');
    const { config } = loadConfig(['--config', join(dir, 'c.yaml'), '--scrape-interval-ms', '200'], {});
    assert.equal(config.scrapeIntervalMs, 200);
    assert.deepEqual(config.metricMappings, [{ metric: 'my:queue', field: 'waiting' }]);
    writeFileSync(join(dir, 'c.json'), '{"replicas": ["10.0.0.1:8000"], "weights": {"prefix": 5, "queue": 1, "kvCache": 1, "inflight": 0}}');
    assert.equal(loadConfig(['--config', join(dir, 'c.json')], {}).config.weights.prefix, 5);
    writeFileSync(join(dir, 'bad.yaml'), 'replicas: [\n');
    assert.match(problems(() => loadConfig(['--config', join(dir, 'bad.yaml')], {}))[0], /not valid YAML/);
    writeFileSync(join(dir, 'bad2.yaml'), 'replicas: [10.0.0.1:8000]\nmetricMappings: [{metric: "x", field: "speed"}]\nscrapeIntervalMs: fast\nbogus: 1\n');
    const p = problems(() => loadConfig(['--config', join(dir, 'bad2.yaml')], {}));
    assert.ok(p.some((m) => m.startsWith('metricMappings[0].field') && m.includes('running')), p.join('\n'));
    assert.ok(p.some((m) => m.startsWith('scrapeIntervalMs (--scrape-interval-ms): must be integer')), p.join('\n'));
    assert.ok(p.some((m) => m === 'bogus: unknown field'), p.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errors name the field and its flag', () => {
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--port', 'http'], {}))[0], /^port \(--port\): must be integer/);
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--staleness-ms', '5'], {}))[0], /^stalenessMs \(--staleness-ms\): must be >= 100/);
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--log-level', 'loud'], {}))[0], /^logLevel \(--log-level\): must be equal to one of the allowed values: debug, info, warn, error/);
  assert.match(problems(() => loadConfig([], {}))[0], /no discovery source/);
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--k8s-selector', 'a=b'], {}))[0], /give one discovery source/);
  assert.match(problems(() => loadConfig(['--k8s-selector', 'a=b', '--inference-pool', 'p'], {}))[0], /give one/);
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--scrape-timeout-ms', '3000'], {}))[0], /scrapeTimeoutMs.*below stalenessMs/);
  assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--bogus'], {}))[0], /Unknown option '--bogus'/);
  assert.match(problems(() => loadConfig(['--namespace', 'Bad_NS'], {}))[0], /^kubernetes.namespace \(--namespace\): must match pattern/);
  assert.match(problems(() => validateConfig({ replicas: ['10.0.0.1:8000'], weights: { prefix: 0, queue: 0, kvCache: 0, inflight: 0 } }))[0], /weights: must not all be 0/);
  assert.match(problems(() => validateConfig({ replicas: ['10.0.0.1:8000'], weights: { prefix: -1, queue: 0, kvCache: 0, inflight: 1 } }))[0], /^weights.prefix: must be >= 0/);
  assert.match(problems(() => validateConfig({ replicas: ['10.0.0.1:8000'], weights: { prefix: 1e-320, queue: 0, kvCache: 0, inflight: 0 } }))[0], /^weights.prefix: \(1e-320\) is 0 as a 32-bit float/);
  assert.match(problems(() => validateConfig({ replicas: ['10.0.0.1:8000'], weights: { prefix: 2e6, queue: 0, kvCache: 0, inflight: 1 } }))[0], /^weights.prefix: must be <= 1000000/);
});

test('unauthenticated writes only on a loopback host', () => {
  for (const host of ['0.0.0.0', '::', '10.1.2.3', 'gateway.internal', '128.0.0.1']) {
    assert.match(problems(() => loadConfig(['--replicas', '10.0.0.1:8000', '--host', host, '--allow-unauthenticated-writes'], {}))[0],
      /^allowUnauthenticatedWrites \(--allow-unauthenticated-writes\): only on a loopback host; host .* is reachable from the network/, host);
  }
  for (const host of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost']) {
    assert.equal(loadConfig(['--replicas', '10.0.0.1:8000', '--host', host, '--allow-unauthenticated-writes'], {}).config.allowUnauthenticatedWrites, true, host);
  }
  assert.equal(loadConfig(['--replicas', '10.0.0.1:8000', '--host', '0.0.0.0'], {}).config.host, '0.0.0.0', 'with a token (or none and writes refused) any host is fine');
});

test('a bad static replica address fails start-up naming the entry', async () => {
  const { startControlPlane } = await import('../../control-plane/server.js');
  await assert.rejects(startControlPlane({ replicas: ['vllm-0:8000'] }), /replica "vllm-0:8000": must be ip:port/);
});
