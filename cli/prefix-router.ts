#!/usr/bin/env -S node --no-memory-reducer --min-semi-space-size=16
// The `prefix-router` command: one entry, one subcommand per part of the product.
// Each area exports its own `run*Cli(args)`; this file only dispatches.

const USAGE = `usage: prefix-router <command> [options]

commands:
  start           simulated replicas + control plane + embedded gateway on this machine
  control-plane   run the control plane (--replicas URL,... | --k8s-selector SEL [--namespace NS] | --inference-pool NAME)
  weights         get or set scorer weights (weights get | weights set --profile NAME | --prefix N --queue N --kv N)
  top             live view per replica: share, queue, KV use, hit rate (reads the control plane and a gateway's admin)
  gateway         run the embedded gateway (the filter in our proxy-wasm host) in front of given replicas
  picker          serve the filter as an InferencePool endpoint picker (Envoy ext_proc, Endpoint Picker Protocol)
  simulator       run simulated vLLM replicas
run 'prefix-router <command> --help' for a command's options`;

type Runner = (args: string[]) => Promise<number | void>;

const commands: Record<string, () => Promise<Runner>> = {
  start: async () => (await import('./start.js')).runStartCli,
  'control-plane': async () => (await import('../control-plane/main.js')).runControlPlaneCli,
  weights: async () => (await import('../control-plane/weightsCli.js')).runWeightsCli,
  top: async () => (await import('./top.js')).runTopCli,
  gateway: async () => (await import('../host/main.js')).runGatewayCli,
  picker: async () => (await import('../picker/main.js')).runPickerCli,
  simulator: async () => (await import('../simulator/main.js')).runSimulatorCli,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const load = commands[command];
  if (!load) {
    console.error(`prefix-router: unknown command '${command}'\n${USAGE}`);
    return 2;
  }
  const run = await load();
  return (await run(rest)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => { if (code !== 0) process.exitCode = code; },
  (err) => { console.error(`prefix-router: ${err instanceof Error ? err.message : String(err)}`); process.exitCode = 1; },
);
