// Control-plane benchmark: CPU cost and scrape latency of scraping N stand-in
// replicas (real vLLM /metrics text, served from a child process so their CPU
// is not counted), and weight propagation to the filter when the proxy-wasm
// host and the built filter are available.
//
//   npm run bench:control-plane [-- --json] [-- --seconds 10] [-- --replicas 64,256]
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startControlPlane } from '../control-plane/server.js';
import { createLogger } from '../control-plane/log.js';

const SAMPLE_PATH = '/work/shared/data/metrics/vllm-datadog-fixture.txt';
const INTERVAL_MS = 50;
/** Scrapes before this are not measured (connections opening, JIT warm-up). */
const WARMUP_MS = 2000;

/** Child mode: serve `n` stand-in replicas, print their ports as one JSON line, run until stdin closes. */
async function serveReplicas(n: number): Promise<void> {
  const text = readFileSync(SAMPLE_PATH);
  const ports: number[] = [];
  const servers: http.Server[] = [];
  for (let i = 0; i < n; i++) {
    const s = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': text.length });
      res.end(text);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    ports.push((s.address() as { port: number }).port);
    servers.push(s);
  }
  process.stdout.write(JSON.stringify({ ports }) + '\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

async function startReplicaChild(n: number): Promise<{ ports: number[]; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve-replicas', String(n)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)).ports);
    });
    child.once('exit', (code) => reject(new Error(`replica child exited (${code})`)));
  });
  return { ports, child };
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

interface Case { replicas: number; intervalMs: number; cpuCores: number; userCores: number; scrapeP99Ms: number; scrapes: number; failures: number }

async function runCase(n: number, seconds: number): Promise<Case> {
  const { ports, child } = await startReplicaChild(n);
  const durations: number[] = [];
  let failures = 0;
  let measuring = false;
  const cp = await startControlPlane({
    replicas: ports.map((p) => `127.0.0.1:${p}`), scrapeIntervalMs: INTERVAL_MS, logger: createLogger('error'),
    onScrape(_a, o) {
      if (!measuring) return;
      if (o.ok) durations.push(o.durationMs); else failures++;
    },
  });
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  measuring = false;
  await cp.close();
  child.stdin!.end();
  await new Promise((r) => child.once('exit', r));
  return {
    replicas: n, intervalMs: INTERVAL_MS,
    cpuCores: Number(((cpu.user + cpu.system) / 1000 / wallMs).toFixed(3)),
    userCores: Number((cpu.user / 1000 / wallMs).toFixed(3)),
    scrapeP99Ms: Number(percentile(durations, 99).toFixed(2)),
    scrapes: durations.length, failures,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' }, seconds: { type: 'string' }, replicas: { type: 'string' }, 'serve-replicas': { type: 'string' },
    },
  });
  if (values['serve-replicas']) return serveReplicas(Number(values['serve-replicas']));
  const seconds = Number(values.seconds ?? 10);
  const sizes = (values.replicas ?? '64,256').split(',').map(Number);
  const cases: Case[] = [];
  for (const n of sizes) {
    const c = await runCase(n, seconds);
    cases.push(c);
    if (!values.json) {
      console.log(`${n} replicas @ ${INTERVAL_MS} ms: ${c.cpuCores} cores (user ${c.userCores}), scrape p99 ${c.scrapeP99Ms} ms (${c.scrapes} scrapes, ${c.failures} failed, expected ~${Math.round(n * seconds * 1000 / INTERVAL_MS)})`);
    }
  }
  const propagation = await measurePropagation();
  if (values.json) {
    console.log(JSON.stringify({
      cases: cases.map(({ replicas, intervalMs, cpuCores, scrapeP99Ms }) => ({ replicas, intervalMs, cpuCores, scrapeP99Ms })),
      weightPropagationP99Ms: propagation.p99Ms,
      ...(propagation.note ? { weightPropagationNote: propagation.note } : {}),
    }));
  } else {
    console.log(propagation.p99Ms === null ? `weight propagation: not measured (${propagation.note})` : `weight propagation p99: ${propagation.p99Ms} ms (${propagation.note})`);
  }
}

/** Filled in once host/ (ProxyWasmHost) and plugin/prefix-router.wasm exist. */
async function measurePropagation(): Promise<{ p99Ms: number | null; note: string }> {
  return { p99Ms: null, note: 'not implemented yet' };
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
