// Control-plane configuration: defaults < config file (YAML or JSON) < env < CLI flags,
// validated against one JSON Schema at start-up; errors name the field (and its flag).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_METRIC_MAPPINGS, METRIC_FIELDS, type MetricMapping } from './engineMetrics.js';
import type { LogLevel } from './log.js';
import { WEIGHT_MAX, WEIGHT_NAMES, weightsProblem, type Weights } from './stateWire.js';
import { DEFAULT_WEIGHTS, DEFAULT_WEIGHTS_CONFIGMAP } from './weights.js';
import { DEFAULT_POD_SELECTOR } from './discovery.js';
import { DECISION_LOG_EVERY_MAX } from './observabilitySection.js';

export interface KubernetesConfig {
  namespace: string;
  /** pod label selector (default llm-d.ai/inferenceServing=true) unless inferencePool is set */
  selector?: string;
  inferencePool?: string;
  /** port on the pods, selector mode (an InferencePool brings its own) */
  targetPort: number;
  /** kubeconfig file; default: in-cluster service account, else ~/.kube/config */
  kubeconfig?: string;
}

export interface ControlPlaneConfig {
  host: string;
  port: number;
  replicas?: string[];
  kubernetes?: KubernetesConfig;
  metricsPath: string;
  /** send the mapped names as prometheus_client `name[]` filters (smaller responses) */
  metricsNameFilter: boolean;
  scrapeIntervalMs: number;
  scrapeTimeoutMs: number;
  stalenessMs: number;
  /** scrape-driven changes are published at most this often (weights and membership at once) */
  publishIntervalMs: number;
  maxLongPollMs: number;
  hitRateWindowMs: number;
  /** weights used until some are stored */
  weights: Weights;
  weightsFile?: string;
  weightsConfigMap?: string;
  tokenFile?: string;
  allowUnauthenticatedWrites: boolean;
  /** rows tried before the built-in table */
  metricMappings: MetricMapping[];
  maxBodyBytes: number;
  /** One request in this many logs its decision record in the filters (0: none); changed at run time with PUT /v1/observability */
  decisionLogEvery: number;
  logLevel: LogLevel;
}

/** Defaults and their reasons. */
export const DEFAULTS = {
  host: '127.0.0.1', // loopback unless told otherwise
  port: 9090,
  metricsPath: '/metrics',
  scrapeIntervalMs: 50, // the inference extension's refresh rate
  scrapeTimeoutMs: 1000, // half the staleness bound: two attempts before a replica leaves routing
  stalenessMs: 2000, // the inference extension's staleness bound
  publishIntervalMs: 20, // coalesces a fleet's scrapes into <= 50 versions/s
  maxLongPollMs: 30_000, // cap on waitMs: proxies and LBs commonly cut idle requests at 60 s
  hitRateWindowMs: 60_000,
  maxBodyBytes: 16 * 1024, // a weights body is < 100 bytes
  targetPort: 8000, // vLLM's default port
} as const;

const weightsSchema = {
  type: 'object', additionalProperties: false, required: ['prefix', 'queue', 'kvCache', 'inflight'],
  properties: Object.fromEntries(WEIGHT_NAMES.map((k) => [k, { type: 'number', minimum: 0, maximum: WEIGHT_MAX }])),
} as const;

export const CONFIG_SCHEMA = {
  $id: 'prefix-router-control-plane-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    host: { type: 'string', minLength: 1, default: DEFAULTS.host },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULTS.port },
    replicas: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4096 },
    kubernetes: {
      type: 'object', additionalProperties: false, required: ['namespace'],
      properties: {
        namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
        selector: { type: 'string', minLength: 1 },
        inferencePool: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 },
        targetPort: { type: 'integer', minimum: 1, maximum: 65535, default: DEFAULTS.targetPort },
        kubeconfig: { type: 'string', minLength: 1 },
      },
    },
    metricsPath: { type: 'string', pattern: '^/', default: DEFAULTS.metricsPath },
    metricsNameFilter: { type: 'boolean', default: true },
    scrapeIntervalMs: { type: 'integer', minimum: 10, maximum: 60_000, default: DEFAULTS.scrapeIntervalMs },
    scrapeTimeoutMs: { type: 'integer', minimum: 10, maximum: 60_000, default: DEFAULTS.scrapeTimeoutMs },
    stalenessMs: { type: 'integer', minimum: 100, maximum: 600_000, default: DEFAULTS.stalenessMs },
    publishIntervalMs: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULTS.publishIntervalMs },
    maxLongPollMs: { type: 'integer', minimum: 100, maximum: 300_000, default: DEFAULTS.maxLongPollMs },
    hitRateWindowMs: { type: 'integer', minimum: 1000, maximum: 3_600_000, default: DEFAULTS.hitRateWindowMs },
    weights: { ...weightsSchema, default: { ...DEFAULT_WEIGHTS } },
    weightsFile: { type: 'string', minLength: 1 },
    weightsConfigMap: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 },
    tokenFile: { type: 'string', minLength: 1 },
    allowUnauthenticatedWrites: { type: 'boolean', default: false },
    metricMappings: {
      type: 'array', default: [],
      items: {
        type: 'object', additionalProperties: false, required: ['metric', 'field'],
        properties: {
          metric: { type: 'string', pattern: '^[a-zA-Z_:][a-zA-Z0-9_:]*$' },
          field: { enum: [...METRIC_FIELDS] },
          aggregate: { enum: ['sum', 'mean', 'max'] },
          fromLabels: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }, minItems: 1 },
          scale: { type: 'number', exclusiveMinimum: 0 },
        },
      },
    },
    maxBodyBytes: { type: 'integer', minimum: 64, maximum: 1024 * 1024, default: DEFAULTS.maxBodyBytes },
    decisionLogEvery: { type: 'integer', minimum: 0, maximum: DECISION_LOG_EVERY_MAX, default: 0 },
    logLevel: { enum: ['debug', 'info', 'warn', 'error'], default: 'info' },
  },
} as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/** CLI flag of each config field, for error messages. */
const FLAG_OF: Record<string, string> = {
  host: '--host', port: '--port', replicas: '--replicas', metricsPath: '--metrics-path',
  scrapeIntervalMs: '--scrape-interval-ms', scrapeTimeoutMs: '--scrape-timeout-ms', stalenessMs: '--staleness-ms',
  weightsFile: '--weights-file', weightsConfigMap: '--weights-configmap', tokenFile: '--token-file',
  allowUnauthenticatedWrites: '--allow-unauthenticated-writes', logLevel: '--log-level', maxLongPollMs: '--max-long-poll-ms',
  decisionLogEvery: '--decision-log-every',
  'kubernetes.namespace': '--namespace', 'kubernetes.selector': '--k8s-selector', 'kubernetes.inferencePool': '--inference-pool',
  'kubernetes.targetPort': '--target-port', 'kubernetes.kubeconfig': '--kubeconfig',
};

function describeAjvError(e: ErrorObject): string {
  let field = e.instancePath.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return `${field ? field + '.' : ''}${extra}: unknown field`;
  }
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    field = field ? `${field}.${missing}` : missing;
    return `${field}${FLAG_OF[field] ? ` (${FLAG_OF[field]})` : ''}: is required`;
  }
  const flag = FLAG_OF[field.replace(/\[\d+\]$/, '')];
  const allowed = e.keyword === 'enum' ? `: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : '';
  return `${field || '(config)'}${flag ? ` (${flag})` : ''}: ${e.message}${allowed}`;
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true });
const validateSchema = ajv.compile(CONFIG_SCHEMA);

/** True for an address only this machine can reach (127.0.0.0/8, ::1, localhost); false for 0.0.0.0, :: and the rest. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Validates a raw config object (defaults filled in) and checks what the schema
 * cannot say: exactly one discovery source, usable replica addresses, timeouts.
 */
export function validateConfig(raw: unknown): ControlPlaneConfig {
  const copy = structuredClone(raw ?? {});
  if (!validateSchema(copy)) throw new ConfigError((validateSchema.errors ?? []).map(describeAjvError));
  const c = copy as unknown as ControlPlaneConfig;
  const problems: string[] = [];
  const hasStatic = c.replicas !== undefined && c.replicas.length > 0;
  if (hasStatic && c.kubernetes) problems.push('replicas (--replicas) and kubernetes (--k8s-selector / --inference-pool): give one discovery source, not both');
  if (!hasStatic && !c.kubernetes) problems.push('replicas: no discovery source; give --replicas URL,... (or PREFIX_ROUTER_REPLICAS), --k8s-selector SEL or --inference-pool NAME');
  if (c.kubernetes?.selector && c.kubernetes.inferencePool) problems.push('kubernetes.selector (--k8s-selector) and kubernetes.inferencePool (--inference-pool): give one');
  if (c.scrapeTimeoutMs >= c.stalenessMs) problems.push(`scrapeTimeoutMs (--scrape-timeout-ms): must be below stalenessMs (${c.stalenessMs}) so a hung replica turns stale`);
  if (c.weightsFile && c.weightsConfigMap) problems.push('weightsFile (--weights-file) and weightsConfigMap (--weights-configmap): give one');
  if (c.weightsConfigMap && !c.kubernetes) problems.push('weightsConfigMap (--weights-configmap): needs Kubernetes discovery (it uses the same cluster and namespace)');
  if (c.allowUnauthenticatedWrites && !isLoopbackHost(c.host)) {
    problems.push(`allowUnauthenticatedWrites (--allow-unauthenticated-writes): only on a loopback host; host ${c.host} is reachable from the network, so weight writes need a token (PREFIX_ROUTER_API_TOKEN or --token-file)`);
  }
  const wp = weightsProblem(c.weights);
  if (wp) problems.push(wp.error.replace(/^(weights(?:\.\w+)?) /, '$1: '));
  if (problems.length) throw new ConfigError(problems);
  if (c.kubernetes && !c.kubernetes.inferencePool && !c.kubernetes.selector) c.kubernetes.selector = DEFAULT_POD_SELECTOR;
  // In Kubernetes without a weights file, weights live in the ConfigMap manifests/base/rbac.yaml grants.
  if (c.kubernetes && !c.weightsFile && !c.weightsConfigMap) c.weightsConfigMap = DEFAULT_WEIGHTS_CONFIGMAP;
  return c;
}

/** All metric mapping rows in priority order: the user's, then the built-in table. */
export function effectiveMappings(c: ControlPlaneConfig): MetricMapping[] {
  return [...c.metricMappings, ...DEFAULT_METRIC_MAPPINGS];
}

export const CONTROL_PLANE_USAGE = `usage: prefix-router control-plane (--replicas URL,... | --k8s-selector SEL | --inference-pool NAME) [options]

discovery (one of):
  --replicas LIST              comma-separated replicas: http://10.0.0.1:8000 or 10.0.0.1:8000
                               (env PREFIX_ROUTER_REPLICAS)
  --k8s-selector SEL           Kubernetes pods matching this label selector
                               (default selector when only --namespace is given: ${DEFAULT_POD_SELECTOR})
  --inference-pool NAME        pods selected by this InferencePool (inference.networking.k8s.io/v1)
  --namespace NS               Kubernetes namespace (default: env POD_NAMESPACE, else "default")
  --target-port N              pod port with --k8s-selector (default ${DEFAULTS.targetPort})
  --kubeconfig FILE            default: in-cluster service account, else ~/.kube/config

options:
  --config FILE                YAML or JSON file with any of the fields below (flags override it)
  --host ADDR                  listen address (default ${DEFAULTS.host})
  --port N                     listen port (default ${DEFAULTS.port}; 0 = any free port)
  --scrape-interval-ms N       scrape every replica this often (default ${DEFAULTS.scrapeIntervalMs})
  --scrape-timeout-ms N        give up on a scrape after this long (default ${DEFAULTS.scrapeTimeoutMs})
  --staleness-ms N             a replica without a good scrape this long leaves routing (default ${DEFAULTS.stalenessMs})
  --metrics-path PATH          replicas' metrics path (default ${DEFAULTS.metricsPath})
  --no-metrics-name-filter     do not ask replicas for the needed metric names only (name[]=...)
  --weights-file FILE          keep weights in this JSON file (written atomically)
  --weights-configmap NAME     keep weights in this ConfigMap (default with Kubernetes discovery: ${DEFAULT_WEIGHTS_CONFIGMAP})
  --token-file FILE            bearer token for writes (or env PREFIX_ROUTER_API_TOKEN)
  --allow-unauthenticated-writes  accept weight changes without a token (only when none is configured;
                               only on a loopback --host)
  --decision-log-every N       the filters log the decision record of one request in N per worker VM
                               (default 0: none; change at run time with PUT /v1/observability)
  --log-level LEVEL            debug | info | warn | error (default info)
  -h, --help                   this text

API: GET /v1/state?after=V&waitMs=MS, GET /v1/replicas, GET|PUT /v1/weights, GET /v1/weights/profiles, GET|PUT /v1/observability,
     GET /healthz, /readyz, /metrics`;

export interface LoadedConfig {
  config: ControlPlaneConfig;
  /** the API token, if any; never logged */
  token: string | null;
  tokenSource: string | null;
}

const INTEGER_FLAGS = new Set(['port', 'scrape-interval-ms', 'scrape-timeout-ms', 'staleness-ms', 'target-port', 'max-long-poll-ms', 'decision-log-every']);

/** Numbers from flags and env: a string that is not a number is kept, so the schema names it. */
function num(s: string): number | string {
  return /^-?\d+(\.\d+)?$/.test(s.trim()) ? Number(s) : s;
}

function splitList(s: string): string[] {
  return s.split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
}

/** Reads flags, env and the optional config file; throws ConfigError naming the field. */
export function loadConfig(args: string[], env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: false, strict: true,
      options: {
        config: { type: 'string' }, replicas: { type: 'string' }, 'k8s-selector': { type: 'string' },
        'inference-pool': { type: 'string' }, namespace: { type: 'string' }, 'target-port': { type: 'string' },
        kubeconfig: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' },
        'scrape-interval-ms': { type: 'string' }, 'scrape-timeout-ms': { type: 'string' }, 'staleness-ms': { type: 'string' },
        'max-long-poll-ms': { type: 'string' }, 'metrics-path': { type: 'string' }, 'decision-log-every': { type: 'string' },
        'weights-file': { type: 'string' }, 'weights-configmap': { type: 'string' }, 'token-file': { type: 'string' },
        'allow-unauthenticated-writes': { type: 'boolean' }, 'no-metrics-name-filter': { type: 'boolean' }, 'log-level': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new ConfigError([(e as Error).message]);
  }
  const f = parsed.values;
  let raw: Record<string, unknown> = {};
  if (f.config) {
    let text: string;
    try { text = readFileSync(f.config, 'utf8'); } catch (e) { throw new ConfigError([`--config ${f.config}: ${(e as Error).message}`]); }
    try {
      raw = (f.config.endsWith('.json') ? JSON.parse(text) : parseYaml(text)) ?? {};
    } catch (e) {
      throw new ConfigError([`--config ${f.config}: not valid ${f.config.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`]);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([`--config ${f.config}: must hold an object`]);
  }
  if (env.PREFIX_ROUTER_REPLICAS && !f.replicas) raw.replicas = splitList(env.PREFIX_ROUTER_REPLICAS);
  if (f.replicas !== undefined) raw.replicas = splitList(f.replicas);
  const wantsK8s = f['k8s-selector'] !== undefined || f['inference-pool'] !== undefined ||
    (f.namespace !== undefined && f.replicas === undefined && raw.replicas === undefined);
  if (wantsK8s || raw.kubernetes) {
    const k = { ...((raw.kubernetes as Record<string, unknown>) ?? {}) };
    if (f.namespace !== undefined) k.namespace = f.namespace;
    if (k.namespace === undefined) k.namespace = env.POD_NAMESPACE || 'default';
    if (f['k8s-selector'] !== undefined) k.selector = f['k8s-selector'];
    if (f['inference-pool'] !== undefined) k.inferencePool = f['inference-pool'];
    if (f['target-port'] !== undefined) k.targetPort = num(f['target-port']);
    if (f.kubeconfig !== undefined) k.kubeconfig = f.kubeconfig;
    raw.kubernetes = k;
  }
  const direct: Array<[string, string]> = [
    ['host', 'host'], ['port', 'port'], ['scrape-interval-ms', 'scrapeIntervalMs'], ['scrape-timeout-ms', 'scrapeTimeoutMs'],
    ['staleness-ms', 'stalenessMs'], ['max-long-poll-ms', 'maxLongPollMs'], ['metrics-path', 'metricsPath'],
    ['weights-file', 'weightsFile'], ['weights-configmap', 'weightsConfigMap'], ['token-file', 'tokenFile'], ['log-level', 'logLevel'],
    ['decision-log-every', 'decisionLogEvery'],
  ];
  for (const [flag, key] of direct) {
    const v = (f as Record<string, string | undefined>)[flag];
    if (v !== undefined) raw[key] = INTEGER_FLAGS.has(flag) ? num(v) : v;
  }
  if (f['allow-unauthenticated-writes']) raw.allowUnauthenticatedWrites = true;
  if (f['no-metrics-name-filter']) raw.metricsNameFilter = false;
  const config = validateConfig(raw);
  const { token, source } = readToken(config.tokenFile, env);
  return { config, token, tokenSource: source };
}

/** The API token from --token-file (a mounted Secret) or PREFIX_ROUTER_API_TOKEN; file wins. */
export function readToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv): { token: string | null; source: string | null } {
  if (tokenFile) {
    let text: string;
    try { text = readFileSync(tokenFile, 'utf8'); } catch (e) { throw new ConfigError([`tokenFile (--token-file): cannot read ${tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]); }
    const token = text.trim();
    if (!token) throw new ConfigError([`tokenFile (--token-file): ${tokenFile} is empty`]);
    return { token, source: `file ${tokenFile}` };
  }
  const t = env.PREFIX_ROUTER_API_TOKEN?.trim();
  return t ? { token: t, source: 'env PREFIX_ROUTER_API_TOKEN' } : { token: null, source: null };
}

/** True when `--help`/`-h` is among the args (checked before validation). */
export function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}
