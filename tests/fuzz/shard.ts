// One shard of the full fuzz run, in a child process (main.ts runs two: one per core).
// Reads its options from argv[2] (JSON), reports progress and the result over IPC.
import { runFuzz, type FuzzOptions } from './harness.js';

const o = JSON.parse(process.argv[2]) as Omit<FuzzOptions, 'onProgress'>;
const report = await runFuzz({ ...o, onProgress: (phase, done, total) => process.send!({ progress: { phase, done, total } }) });
process.send!({ report }, () => process.exit(0));
