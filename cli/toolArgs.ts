// The command line of a tool users run with `npm run NAME` (benchmarks, fuzz, chaos,
// validate): node's parseArgs, strict, plus --help. --help prints the usage and exits 0;
// an unknown flag, a stray argument or a bad value prints the reason and the usage and
// exits 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function toolArgs<O extends Options>(tool: string, usage: string, options: O, allowPositionals = false, argv = process.argv.slice(2)) {
  const fail = (message: string): never => {
    console.error(`${tool}: ${message}\n${usage}`);
    process.exit(2);
  };
  let parsed;
  try {
    // A tool may declare --help itself (e.g. with its -h short form).
    parsed = parseArgs({ args: argv, options: { help: { type: 'boolean' }, ...options } as O & { help: { type: 'boolean' } }, strict: true, allowPositionals });
  } catch (e) {
    return fail((e as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return { values: parsed.values, positionals: parsed.positionals, fail };
}
