// Simulator options: defaults, command-line parsing and schema validation. Option names follow
// llm-d-inference-sim where it has the same knob (--port, --model, --served-model-name,
// --max-num-seqs, --max-loras, --max-model-len, --max-waiting-queue-length, --time-to-first-token,
// --inter-token-latency, --prefill-overhead, --prefill-time-per-token, --kv-cache-size,
// --block-size, --mode, --seed); the rest are this simulator's own.

import { parseArgs } from 'node:util';
import { Ajv } from 'ajv';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from './engine.js';

export interface SimulatorOptions {
  replicas: number;
  host: string;
  /** Port of replica 0; replica i listens on basePort + i (0 = each an ephemeral port). */
  basePort: number;
  /** Replica i is called `${namePrefix}-${i}`. */
  namePrefix: string;
  model: string;
  servedModelName: string[];
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  maxLoras: number;
  /** LoRA adapters requests may name as their model (vLLM --lora-modules); none: LoRA off. */
  loraModules: string[];
  maxWaitingQueueLength: number;
  kvCacheSize: number;
  blockSize: number;
  gpuMemoryUtilization: number;
  /** If set (ms), a constant prefill time replaces the per-token model, as in llm-d-inference-sim. */
  timeToFirstToken?: number;
  interTokenLatency: number;
  prefillOverhead: number;
  prefillTimePerToken: number;
  decodeTimePerSeq: number;
  saturationNumSeqs: number;
  mode: 'echo' | 'random';
  seed: number;
  timeScale: number;
  /** Output tokens when a request gives no max_tokens. */
  defaultMaxTokens: number;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
}

const L = DEFAULT_ENGINE_CONFIG.latency;
export const DEFAULT_MODEL = 'Qwen/Qwen2.5-3B-Instruct';

export const DEFAULT_OPTIONS: SimulatorOptions = {
  replicas: 1,
  host: '127.0.0.1',
  basePort: 8000, // llm-d-inference-sim's and vLLM's default port
  namePrefix: 'replica',
  model: DEFAULT_MODEL,
  servedModelName: [],
  maxNumSeqs: DEFAULT_ENGINE_CONFIG.maxNumSeqs,
  maxNumBatchedTokens: DEFAULT_ENGINE_CONFIG.maxNumBatchedTokens,
  maxModelLen: DEFAULT_ENGINE_CONFIG.maxModelLen,
  maxLoras: 1,
  loraModules: [],
  maxWaitingQueueLength: 1000, // llm-d-inference-sim's default
  kvCacheSize: DEFAULT_ENGINE_CONFIG.numGpuBlocks,
  blockSize: DEFAULT_ENGINE_CONFIG.blockSize,
  gpuMemoryUtilization: 0.75, // the seed deployment's setting (label only; KV size is kv-cache-size)
  interTokenLatency: L.interTokenLatencyMs,
  prefillOverhead: L.prefillOverheadMs,
  prefillTimePerToken: L.prefillTimePerTokenMs,
  decodeTimePerSeq: L.decodeTimePerSeqMs,
  saturationNumSeqs: L.saturationNumSeqs,
  mode: 'random',
  seed: 0,
  timeScale: 1,
  defaultMaxTokens: 128, // short enough that a client forgetting max_tokens still gets a quick answer
  maxBodyBytes: 4 * 1024 * 1024, // llm-d-inference-sim's 4 MB default
};

const posInt = { type: 'integer', minimum: 1 };
const nonNegNum = { type: 'number', minimum: 0 };
export const OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(DEFAULT_OPTIONS),
  properties: {
    replicas: { type: 'integer', minimum: 1, maximum: 64 },
    host: { type: 'string', minLength: 1 },
    basePort: { type: 'integer', minimum: 0, maximum: 65535 },
    namePrefix: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9._-]+$' },
    model: { type: 'string', minLength: 1 },
    servedModelName: { type: 'array', items: { type: 'string', minLength: 1 } },
    maxNumSeqs: posInt,
    maxNumBatchedTokens: posInt,
    maxModelLen: posInt,
    maxLoras: posInt,
    loraModules: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 1024 },
    maxWaitingQueueLength: posInt,
    kvCacheSize: posInt,
    blockSize: { enum: [8, 16, 32, 64, 128] },
    gpuMemoryUtilization: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    timeToFirstToken: nonNegNum,
    interTokenLatency: nonNegNum,
    prefillOverhead: nonNegNum,
    prefillTimePerToken: nonNegNum,
    decodeTimePerSeq: nonNegNum,
    saturationNumSeqs: posInt,
    mode: { enum: ['echo', 'random'] },
    seed: { type: 'integer' },
    timeScale: { type: 'number', exclusiveMinimum: 0 },
    defaultMaxTokens: posInt,
    maxBodyBytes: posInt,
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validate = ajv.compile<SimulatorOptions>(OPTIONS_SCHEMA);

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Merges over defaults and validates; throws an Error naming each bad field. */
export function resolveOptions(partial: Partial<SimulatorOptions> = {}): SimulatorOptions {
  const merged = { ...DEFAULT_OPTIONS, ...partial };
  for (const k of Object.keys(merged) as (keyof SimulatorOptions)[]) if (merged[k] === undefined) delete merged[k];
  if (!validate(merged)) {
    const msgs = (validate.errors ?? []).map((e) => {
      const field = e.instancePath.split('/')[1] ?? (e.params as { additionalProperty?: string }).additionalProperty ?? '';
      return `--${kebab(field)}: ${e.message}${e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : ''}`;
    });
    throw new Error(`invalid simulator options: ${msgs.join('; ')}`);
  }
  if (merged.maxNumBatchedTokens < merged.maxNumSeqs) throw new Error(`invalid simulator options: --max-num-batched-tokens (${merged.maxNumBatchedTokens}) must be >= --max-num-seqs (${merged.maxNumSeqs})`);
  return merged;
}

export function engineConfigOf(o: SimulatorOptions): Partial<EngineConfig> {
  const constantTtft = o.timeToFirstToken !== undefined && o.timeToFirstToken > 0;
  return {
    blockSize: o.blockSize,
    numGpuBlocks: o.kvCacheSize,
    maxNumSeqs: o.maxNumSeqs,
    maxNumBatchedTokens: o.maxNumBatchedTokens,
    maxModelLen: o.maxModelLen,
    maxLoras: o.loraModules.length > 0 ? o.maxLoras : 0,
    latency: {
      prefillOverheadMs: constantTtft ? o.timeToFirstToken! : o.prefillOverhead,
      prefillTimePerTokenMs: constantTtft ? 0 : o.prefillTimePerToken,
      interTokenLatencyMs: o.interTokenLatency,
      decodeTimePerSeqMs: o.decodeTimePerSeq,
      saturationNumSeqs: o.saturationNumSeqs,
    },
  };
}

/** "27ms", "1.5s", "250us" or a bare number of milliseconds -> ms. */
export function parseDuration(flag: string, v: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m)?\s*$/.exec(v);
  if (!m) throw new Error(`invalid simulator options: --${flag}: expected a duration like 27ms or 1.5s, got '${v}'`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : unit === 'ms' ? n : n / 1000;
}

const INT_FLAGS = ['replicas', 'port', 'base-port', 'max-num-seqs', 'max-num-batched-tokens', 'max-model-len', 'max-loras', 'max-waiting-queue-length', 'kv-cache-size', 'block-size', 'saturation-num-seqs', 'seed', 'default-max-tokens', 'max-body-bytes'] as const;
const FLOAT_FLAGS = ['gpu-memory-utilization', 'time-scale'] as const;
const DURATION_FLAGS = ['time-to-first-token', 'inter-token-latency', 'prefill-overhead', 'prefill-time-per-token', 'decode-time-per-seq'] as const;
const STRING_FLAGS = ['host', 'name-prefix', 'model', 'mode'] as const;

export const USAGE = `usage: prefix-router simulator [options]
Runs vLLM-like replicas (OpenAI API + vLLM metrics) with a prefix cache and a T4 latency model.
  --replicas N                  replicas in this process (default 1), named replica-0..N-1
  --port P | --base-port P      port of replica 0, replica i gets P+i (default 8000; 0 = ephemeral)
  --host H                      address to bind (default 127.0.0.1)
  --model NAME                  model name (default ${DEFAULT_MODEL})
  --served-model-name NAME ...  names accepted in requests (default: --model)
  --max-num-seqs N              running sequences per step (default ${DEFAULT_OPTIONS.maxNumSeqs})
  --max-num-batched-tokens N    token budget per step (default ${DEFAULT_OPTIONS.maxNumBatchedTokens})
  --max-model-len N             prompt + output limit (default ${DEFAULT_OPTIONS.maxModelLen})
  --max-waiting-queue-length N  waiting requests before 429 (default ${DEFAULT_OPTIONS.maxWaitingQueueLength})
  --max-loras N                 LoRA adapters a step can run (default 1; with --lora-modules)
  --lora-modules NAME[=PATH] ...  LoRA adapters requests may name as their model (loaded on demand)
  --kv-cache-size BLOCKS        KV capacity in blocks (default ${DEFAULT_OPTIONS.kvCacheSize})
  --block-size N                tokens per block (default 16)
  --gpu-memory-utilization F    reported in vllm:cache_config_info (default 0.75)
  --time-to-first-token D       constant prefill time, replaces the per-token model
  --prefill-overhead D          TTFT intercept (default ${L.prefillOverheadMs}ms)
  --prefill-time-per-token D    per uncached prompt token (default ${L.prefillTimePerTokenMs}ms)
  --inter-token-latency D       single-stream decode time per token (default ${L.interTokenLatencyMs}ms)
  --decode-time-per-seq D       extra decode step time per running sequence (default ${L.decodeTimePerSeqMs.toFixed(3)}ms)
  --saturation-num-seqs N       batch size where throughput stops growing (default ${L.saturationNumSeqs})
  --mode echo|random            output text (default random)
  --seed N                      seed for random output (default 0)
  --time-scale F                run F times faster than real time (default 1)
  --default-max-tokens N        output tokens when a request has no max_tokens (default 128)`;

/** Parses command-line flags into validated options; throws with a message naming the flag. */
export function parseSimulatorArgs(args: string[]): SimulatorOptions | 'help' {
  const stringOpt = { type: 'string' } as const;
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { help: { type: 'boolean', short: 'h' }, 'served-model-name': { type: 'string', multiple: true }, 'lora-modules': { type: 'string', multiple: true } };
  for (const f of [...INT_FLAGS, ...FLOAT_FLAGS, ...DURATION_FLAGS, ...STRING_FLAGS]) spec[f] = stringOpt;
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args, options: spec, allowPositionals: false, strict: true }));
  } catch (err) {
    throw new Error(`simulator: ${(err as Error).message}`);
  }
  if (values.help) return 'help';
  const o: Partial<SimulatorOptions> & Record<string, unknown> = {};
  const camel = (f: string) => f.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const f of INT_FLAGS) {
    const v = values[f] as string | undefined;
    if (v === undefined) continue;
    if (!/^-?\d+$/.test(v.trim())) throw new Error(`invalid simulator options: --${f}: expected an integer, got '${v}'`);
    o[f === 'port' ? 'basePort' : camel(f)] = Number(v);
  }
  for (const f of FLOAT_FLAGS) {
    const v = values[f] as string | undefined;
    if (v === undefined) continue;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`invalid simulator options: --${f}: expected a number, got '${v}'`);
    o[camel(f)] = n;
  }
  for (const f of DURATION_FLAGS) {
    const v = values[f] as string | undefined;
    if (v !== undefined) o[camel(f)] = parseDuration(f, v);
  }
  for (const f of STRING_FLAGS) {
    const v = values[f] as string | undefined;
    if (v !== undefined) o[camel(f)] = v;
  }
  // llm-d-inference-sim takes a space-separated list; accept repeated flags and commas too
  const served = values['served-model-name'] as string[] | undefined;
  if (served) o.servedModelName = served.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
  // vLLM's form is name=path; the simulator has no weights to read, only the name counts
  const lora = values['lora-modules'] as string[] | undefined;
  if (lora) o.loraModules = lora.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean).map((s) => s.split('=')[0]!).filter(Boolean);
  return resolveOptions(o);
}
