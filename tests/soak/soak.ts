// Soak: many requests with distinct prompts through the real filter on two worker VMs,
// with a window of requests kept open (in flight) at once. At checkpoints it records the
// module's linear memory (each VM's memory.buffer) and the host's own heap after a full
// GC, to show that the module's memory stops growing, bounded by the prefix index size
// (prefix.indexEntries), and that nothing leaks on the host side.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ProxyWasmHost, SharedDataStore, type Stream } from '../../host/index.js';

const WASM_PATH = fileURLToPath(new URL('../../plugin/prefix-router.wasm', import.meta.url));
export const SOAK_WORKERS = 2;
const REPLICAS = ['10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.4:8000'];
/**
 * Bytes one index entry may take, from assembly/prefix/prefixIndex.ts: u64 hash + u16 slot +
 * u32 prev + u32 next (18), plus its share of the u32 open-addressing table sized to the next
 * power of two >= 2 x capacity (8 to 16 bytes): 26..34, rounded up to 40 for allocator and
 * page granularity. (plugin/CONFIG.md says "about 32 bytes each".)
 */
const INDEX_ENTRY_BYTES = 40;

export interface SoakOptions {
  requests: number;
  indexEntries: number;
  /** Requests open at once (started, not yet complete). */
  inFlight: number;
  checkpoints: number;
  onCheckpoint?: (c: Checkpoint) => void;
}

export interface Checkpoint {
  requests: number;
  /** Linear memory of every worker VM, bytes. */
  moduleBytes: number[];
  /** process.memoryUsage().heapUsed after a full GC, bytes. */
  hostHeapBytes: number;
  rssBytes: number;
  seconds: number;
  /** Keys the filter holds in shared data (mostly prefix_router.ckpt buckets). */
  sharedKeys: number;
}

/**
 * The filter's shared-data keys are bounded: 2^16 checkpoint buckets of at most 64 bytes
 * (prefix_router.ckpt.XXXX) and a few fixed keys. Distinct prompts keep adding buckets
 * until all exist, so the host's heap may grow by up to this much per new key.
 */
export const MAX_SHARED_KEYS = 65536 + 16;
export const HOST_BYTES_PER_SHARED_KEY = 512;

export interface SoakReport {
  requests: number;
  routed: number;
  traps: number;
  indexEntries: number;
  /** The bound the index puts on growth: indexEntries x 32 bytes per VM. */
  indexBoundBytesPerVm: number;
  /** A VM configured with the smallest index (1024 entries), before any request. */
  baselineModuleBytes: number;
  /** Every VM stayed within 2 x (baseline + index bound) at every checkpoint (the allocator doubles memory as it grows). */
  withinIndexBound: boolean;
  checkpoints: Checkpoint[];
  /** Module memory growth per VM over the second half of the run (0 = stopped growing). */
  moduleGrowthSecondHalf: number[];
  /** Module memory growth per VM from before the first request to the last checkpoint. */
  moduleGrowthTotal: number[];
  /** Host heap growth (after GC) from the half-way checkpoint to the last. */
  hostHeapGrowthSecondHalfBytes: number;
  /** Of that, what new shared-data keys may account for (HOST_BYTES_PER_SHARED_KEY each). */
  sharedKeyAllowanceSecondHalfBytes: number;
  /** Shared-data keys at the end (at most MAX_SHARED_KEYS). */
  sharedKeys: number;
  /** Contexts the VMs still hold at the end (streams not released). */
  openContexts: number;
  seconds: number;
}

let gcFn: (() => void) | null = null;
function fullGc(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

const WORDS: string[] = ['alpha', 'beta', 'gamma', 'delta', 'kv', 'cache', 'router', 'prefix', 'token', 'block', 'replica', 'envoy', 'system', 'prompt'];

/** Working set of the module without its index: a VM with the smallest index (1024 entries) after the same kind of load. */
async function baselineModuleBytes(requests: number): Promise<number> {
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(WASM_PATH), workers: 1, sharedData: new SharedDataStore(), logLevel: 'warn',
    pluginConfig: JSON.stringify({ replicas: REPLICAS, prefix: { indexEntries: 1024 } }),
  });
  const open: Stream[] = [];
  for (let i = 0; i < requests; i++) {
    open.push(sendOne(host, i, 0));
    if (open.length > 64) open.shift()!.complete();
  }
  for (const s of open) s.complete();
  const b = host.vm(0)?.memoryBytes() ?? 0;
  await host.close();
  return b;
}

const enc = new TextEncoder();
const SYSTEM_PROMPTS = Array.from({ length: 64 }, (_, g) => `System prompt ${g}: ${WORDS.map((w, i) => WORDS[(i * 7 + g) % WORDS.length] + w).join(' ')} `.repeat(3));

/** Starts request i (a shared system prompt, then text no other request has); the caller completes it. */
function sendOne(host: ProxyWasmHost, i: number, worker: number): Stream {
  let unique = `Question ${i}:`;
  for (let k = 0, x = i + 1; k < 40; k++) { x = (x * 1103515245 + 12345) >>> 0; unique += ' ' + WORDS[x % WORDS.length] + (x >>> 20); }
  const body = enc.encode(JSON.stringify({ model: 'qwen', prompt: SYSTEM_PROMPTS[i % SYSTEM_PROMPTS.length] + unique, max_tokens: 16 }));
  const s = host.newStream({ worker });
  s.requestHeaders([[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-length', String(body.length)]], false);
  s.requestBody(body, true);
  return s;
}

export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  const baseline = await baselineModuleBytes(Math.min(o.requests, 20_000));
  const host = await ProxyWasmHost.create({
    wasm: readFileSync(WASM_PATH), workers: SOAK_WORKERS, sharedData: new SharedDataStore(), logLevel: 'warn',
    pluginConfig: JSON.stringify({ replicas: REPLICAS, prefix: { indexEntries: o.indexEntries } }),
  });
  const open: Stream[] = [];
  const checkpoints: Checkpoint[] = [];
  const every = Math.max(1, Math.floor(o.requests / o.checkpoints));
  const started = Date.now();
  let routed = 0;
  const take = (): void => {
    const c: Checkpoint = {
      requests: 0, moduleBytes: [], hostHeapBytes: 0, rssBytes: 0, seconds: 0, sharedKeys: host.sharedData.keys(host.vmId).length,
    };
    fullGc();
    const m = process.memoryUsage();
    c.hostHeapBytes = m.heapUsed;
    c.rssBytes = m.rss;
    for (let w = 0; w < SOAK_WORKERS; w++) c.moduleBytes.push(host.vm(w)?.memoryBytes() ?? 0);
    c.seconds = (Date.now() - started) / 1000;
    checkpoints.push(c);
  };
  try {
    take(); // before any request: what configuration alone costs
    for (let i = 0; i < o.requests; i++) {
      const s = sendOne(host, i, i % SOAK_WORKERS);
      if (s.continued && REPLICAS.includes(s.requestHeaderList().find(([k]) => k === 'x-gateway-destination-endpoint')?.[1] ?? '')) routed++;
      s.responseHeaders([[':status', '200']], true);
      open.push(s);
      if (open.length > o.inFlight) open.shift()!.complete();
      if ((i + 1) % every === 0) {
        take();
        checkpoints[checkpoints.length - 1].requests = i + 1;
        o.onCheckpoint?.(checkpoints[checkpoints.length - 1]);
        await new Promise((r) => setImmediate(r));
      }
    }
    for (const s of open) s.complete();
    open.length = 0;
    let openContexts = 0;
    for (let w = 0; w < SOAK_WORKERS; w++) openContexts += Math.max(0, (host.vm(w)?.contexts.size ?? 1) - 1); // the root context stays
    const first = checkpoints[0];
    const half = checkpoints[Math.floor(checkpoints.length / 2)];
    const last = checkpoints[checkpoints.length - 1];
    return {
      requests: o.requests, routed, traps: host.traps, indexEntries: o.indexEntries,
      indexBoundBytesPerVm: o.indexEntries * INDEX_ENTRY_BYTES,
      baselineModuleBytes: baseline,
      // AssemblyScript's allocator grows memory by at least doubling it (rt/tlsf.ts growMemory), so a
      // VM holds up to twice what it needs: the bound is 2 x (working set + index).
      withinIndexBound: checkpoints.every((c) => c.moduleBytes.every((b) => b <= 2 * (baseline + o.indexEntries * INDEX_ENTRY_BYTES))),
      checkpoints,
      moduleGrowthSecondHalf: last.moduleBytes.map((b, w) => b - half.moduleBytes[w]),
      moduleGrowthTotal: last.moduleBytes.map((b, w) => b - first.moduleBytes[w]),
      hostHeapGrowthSecondHalfBytes: last.hostHeapBytes - half.hostHeapBytes,
      sharedKeyAllowanceSecondHalfBytes: Math.max(0, last.sharedKeys - half.sharedKeys) * HOST_BYTES_PER_SHARED_KEY,
      sharedKeys: last.sharedKeys,
      openContexts,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await host.close();
  }
}
