// The command line of a tool users run with `npm run NAME` (benchmarks, fuzz, chaos,
// validate): node's parseArgs, strict, plus --help. --help prints the usage and exits 0;
// an unknown flag, a stray argument or a bad value prints the reason and the usage and
// exits 2. Whole-number flags are read by one parser, parseIntFlag (toolArgs' `int`, and
// intFlags for a tool with a command line of its own); positive numbers by parsePositiveFlag
// (`positive`, positiveFlags).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Flag --`flag`'s `value` as a whole number from `min` to `max`: digits only (a leading '-'
 * too when `min` is negative). Anything else (a fraction, an exponent, a blank, a number out
 * of range) throws an Error naming the flag, the range and the value.
 */
export function parseIntFlag(flag: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!(min < 0 ? /^-?\d+$/ : /^\d+$/).test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`--${flag} must be a whole number ${range}; got '${value}'`);
  }
  return n;
}

/**
 * The whole-number flag reader of a tool whose bad flags end in `fail`: int(flag, value,
 * fallback, min, max?) is parseIntFlag's number, or `fallback` when the flag is absent.
 */
export function intFlags(fail: (message: string) => never) {
  return <F>(flag: string, value: string | undefined, fallback: F, min: number, max?: number): number | F => {
    if (value === undefined) return fallback;
    try {
      return parseIntFlag(flag, value, min, max);
    } catch (e) {
      return fail((e as Error).message);
    }
  };
}

/** Flag --`flag`'s `value` as a finite number above 0 (a rate, a scale, a load); anything else throws an Error naming the flag and the value. */
export function parsePositiveFlag(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${flag} must be a positive number, got '${value}'`);
  return n;
}

/** intFlags' counterpart for parsePositiveFlag: positive(flag, value, fallback). */
export function positiveFlags(fail: (message: string) => never) {
  return <F>(flag: string, value: string | undefined, fallback: F): number | F => {
    if (value === undefined) return fallback;
    try {
      return parsePositiveFlag(flag, value);
    } catch (e) {
      return fail((e as Error).message);
    }
  };
}

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
  return { values: parsed.values, positionals: parsed.positionals, fail, int: intFlags(fail), positive: positiveFlags(fail) };
}
