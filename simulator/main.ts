// `prefix-router simulator`: runs simulated vLLM replicas until SIGINT/SIGTERM.

import { parseSimulatorArgs, USAGE } from './config.js';
import { startReplicas } from './server.js';

export { startReplicas } from './server.js';
export type { RunningReplica, RunningReplicas } from './server.js';

export async function runSimulatorCli(args: string[]): Promise<number> {
  let options;
  try {
    options = parseSimulatorArgs(args);
  } catch (err) {
    console.error((err as Error).message);
    console.error(`run 'prefix-router simulator --help' for the options`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const running = await startReplicas(options);
  for (const r of running.replicas) console.log(`${r.name}  ${r.url}  (model ${options.model}, ${options.kvCacheSize} KV blocks, max ${options.maxNumSeqs} seqs, time x${options.timeScale})`);
  console.log('Ctrl-C to stop');
  await new Promise<void>((resolve) => {
    const stop = () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve(); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await running.close();
  return 0;
}
