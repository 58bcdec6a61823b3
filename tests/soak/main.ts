// node --import tsx tests/soak/main.ts [--requests N] [--index-entries N] [--json]
// 1,000,000 requests with distinct prompts through the filter on two worker VMs; prints the
// module's memory and the host heap (after GC) at checkpoints. Exit 1 if the module kept
// growing over the second half, grew past its index bound, or the host heap leaked.
import { parseArgs } from 'node:util';
import { intFlags } from '../../cli/toolArgs.js';
import { MAX_SHARED_KEYS, runSoak } from './soak.js';

const DEFAULT_REQUESTS = 1_000_000;
/** The filter's default prefix.indexEntries (plugin/CONFIG.md). */
const DEFAULT_INDEX_ENTRIES = 524_288;
/** Heap growth over the second half that still counts as noise (V8 keeps some caches). */
const HEAP_NOISE_BYTES = 8 * 1024 * 1024;

const { values } = parseArgs({ options: { requests: { type: 'string' }, 'index-entries': { type: 'string' }, 'in-flight': { type: 'string' }, json: { type: 'boolean' } } });
const int = intFlags((message) => {
  console.error(message);
  process.exit(2);
});
const requests = int('requests', values.requests, DEFAULT_REQUESTS, 1000);
const indexEntries = int('index-entries', values['index-entries'], DEFAULT_INDEX_ENTRIES, 1024);
const inFlight = int('in-flight', values['in-flight'], 64, 1);
const mb = (b: number) => (b / 1048576).toFixed(2);
const report = await runSoak({
  requests, indexEntries, inFlight, checkpoints: 20,
  onCheckpoint: (c) => process.stderr.write(`soak ${c.requests}: module ${c.moduleBytes.map(mb).join(' + ')} MiB, host heap ${mb(c.hostHeapBytes)} MiB, rss ${mb(c.rssBytes)} MiB (${c.seconds.toFixed(0)} s)\n`),
});
const ok = report.traps === 0 && report.routed === report.requests && report.moduleGrowthSecondHalf.every((g) => g === 0) &&
  report.withinIndexBound &&
  report.sharedKeys <= MAX_SHARED_KEYS &&
  report.hostHeapGrowthSecondHalfBytes < HEAP_NOISE_BYTES + report.sharedKeyAllowanceSecondHalfBytes && report.openContexts === 0;
if (values.json) {
  console.log(JSON.stringify({ ok, ...report }));
} else {
  const first = report.checkpoints[0];
  const last = report.checkpoints[report.checkpoints.length - 1];
  console.log(`soak: ${report.requests} requests (${report.routed} routed, ${report.traps} traps) in ${report.seconds.toFixed(1)} s, prefix.indexEntries ${indexEntries}`);
  console.log(`  module memory per VM: ${first.moduleBytes.map(mb).join(' / ')} MiB before the first request -> ${last.moduleBytes.map(mb).join(' / ')} MiB at the end; growth over the second half ${report.moduleGrowthSecondHalf.join(' / ')} bytes (bound: 2 x (${mb(report.baselineModuleBytes)} MiB working set with a 1024-entry index + ${mb(report.indexBoundBytesPerVm)} MiB of index) per VM, as the allocator doubles memory: ${report.withinIndexBound ? 'within' : 'EXCEEDED'})`);
  console.log(`  host heap after GC: ${mb(report.checkpoints[1].hostHeapBytes)} MiB at ${report.checkpoints[1].requests} -> ${mb(last.hostHeapBytes)} MiB at the end; second-half growth ${mb(report.hostHeapGrowthSecondHalfBytes)} MiB (${mb(report.sharedKeyAllowanceSecondHalfBytes)} MiB allowed for new shared-data keys; ${report.sharedKeys} keys, at most ${MAX_SHARED_KEYS})`);
  console.log(`  open stream contexts left: ${report.openContexts}`);
  console.log(ok ? 'ok' : 'FAIL');
}
process.exit(ok ? 0 : 1);
