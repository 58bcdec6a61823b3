// bench:peers' launcher for the inference extension's endpoint picker (bench/peers/gie-epp): the
// command line it builds, and that the peer is skipped with one line saying why when peers:install
// did not build it. The built picker itself runs in the benchmark, never here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// PEERS_DIR is read when routers.ts loads, so the folder is chosen before the import.
const peers = mkdtempSync(join(tmpdir(), 'gie-epp-peers-'));
process.env.PREFIX_ROUTER_PEERS_DIR = peers;
const { ROUTERS, gieEppArgs, endpointOf } = await import('../../bench/peers/routers.js');
const { runPeersBench } = await import('../../bench/peers/main.js');
const { SMOKE_SHAPE } = await import('../../bench/peers/shapes.js');
const gie = ROUTERS.find((r) => r.name === 'gie-epp')!;

test.after(() => rmSync(peers, { recursive: true, force: true }));

test('the picker gets the replicas as IP:PORT endpoints, its ports, and plaintext gRPC without tracing', () => {
  assert.deepEqual(gieEppArgs({ endpoints: ['127.0.0.1:8000', '127.0.0.1:8001'], grpcPort: 9002, healthPort: 9003, metricsPort: 9090 }), [
    '--endpoints', '127.0.0.1:8000,127.0.0.1:8001', '--grpc-port', '9002', '--grpc-health-port', '9003', '--metrics-port', '9090',
    '--secure-serving=false', '--tracing=false', '--metrics-endpoint-auth=false',
  ]);
  assert.equal(endpointOf('http://127.0.0.1:41234'), '127.0.0.1:41234');
  assert.equal(endpointOf('http://10.0.0.7:8000/'), '10.0.0.7:8000');
  assert.throws(() => endpointOf('http://localhost:8000'), /IPv4 address/);
  assert.throws(() => endpointOf('http://127.0.0.1'), /port/);
  assert.match(gie.label ?? '', /inference extension's endpoint picker v1\.5\.0/);
});

test('not built: skipped with one line, the install failure when peers:install recorded one', async () => {
  assert.match(gie.unavailable() ?? '', /^not built \(run npm run peers:install; no .*bin\/gie-epp\)$/);
  writeFileSync(join(peers, 'status.tsv'), 'llm-d-epp\tfailed\t403\ngie-epp\tfailed\tgo build bench/peers/gie-epp: missing go.sum entry\n');
  assert.equal(gie.unavailable(), 'not installed: go build bench/peers/gie-epp: missing go.sum entry');

  const out = mkdtempSync(join(tmpdir(), 'gie-epp-bench-'));
  const lines: string[] = [];
  try {
    const result = await runPeersBench({
      out, routers: ['gie-epp'], shapes: [SMOKE_SHAPE], replicaCounts: [2], loads: [1], durationS: 1, seed: 1,
      requestTimeoutMs: 1000, probeRequests: 1, inferencePerf: false, log: (l: string) => lines.push(l),
    });
    assert.deepEqual(result.routers, [{ name: 'gie-epp', status: 'skipped', detail: 'not installed: go build bench/peers/gie-epp: missing go.sum entry' }]);
    assert.deepEqual(result.runs, []);
    assert.equal(lines.filter((l) => l.startsWith('skipping gie-epp: ')).length, 1);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('built: it can run', () => {
  mkdirSync(join(peers, 'bin'), { recursive: true });
  writeFileSync(join(peers, 'bin/gie-epp'), '');
  chmodSync(join(peers, 'bin/gie-epp'), 0o755);
  assert.equal(gie.unavailable(), null);
});
