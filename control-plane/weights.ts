// Scorer weights: named profiles, validation of API input, and persistence
// (a JSON file written atomically, or one Kubernetes ConfigMap).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { WEIGHT_NAMES, weightsError, weightsProblem, type Weights } from './stateWire.js';

export const SCORER_NAMES = WEIGHT_NAMES;
export type ScorerName = (typeof SCORER_NAMES)[number];

/** The seed deployment's weights (REFERENCE.md section 7), plus in-flight at 1. */
export const DEFAULT_WEIGHTS: Weights = { prefix: 3, queue: 1, kvCache: 1, inflight: 1 };

export const WEIGHT_PROFILES: Readonly<Record<string, { weights: Weights; description: string }>> = {
  default: { weights: DEFAULT_WEIGHTS, description: 'the seed deployment: prefix 3, queue 1, KV cache 1, in-flight 1' },
  latency: { weights: { prefix: 5, queue: 1, kvCache: 1, inflight: 1 }, description: 'favour cache hits (lowest time to first token)' },
  throughput: { weights: { prefix: 1, queue: 3, kvCache: 2, inflight: 1 }, description: 'favour short queues (spread load)' },
  capacity: { weights: { prefix: 1, queue: 1, kvCache: 5, inflight: 1 }, description: 'favour free KV cache (fewest evictions)' },
};

/** What is stored and served: the weights and, when they came from one, the profile's name. */
export interface WeightsRecord {
  weights: Weights;
  profile: string | null;
}

/** A weights update refused for its content (not for who sent it, nor for a failed save). */
export class WeightsInputError extends Error {
  constructor(readonly field: string, message: string) { super(message); }
}

export type WeightsUpdateResult = { ok: true; record: WeightsRecord } | { ok: false; field: string; error: string };

/**
 * Validates a PUT /v1/weights body. Accepted shapes:
 *   {"profile": "latency"}                       -> that profile's weights
 *   {"prefix": 3, "queue": 1, ...}               -> partial update: fields left out keep their current value
 * Mixing the two, unknown fields, and a result that breaks the weights rule
 * (stateWire.ts weightsProblem: what the filter can hold) are refused, naming the field.
 */
export function applyWeightsUpdate(body: unknown, current: Weights): WeightsUpdateResult {
  const bad = (field: string, error: string): WeightsUpdateResult => ({ ok: false, field, error });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('(body)', 'body must be a JSON object');
  const obj = body as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 0) return bad('(body)', `body must name a profile or at least one of ${SCORER_NAMES.join(', ')}`);
  for (const k of keys) {
    if (k !== 'profile' && !(SCORER_NAMES as readonly string[]).includes(k)) {
      return bad(k, `unknown field '${k}'; known: profile, ${SCORER_NAMES.join(', ')}`);
    }
  }
  if ('profile' in obj) {
    if (keys.length > 1) return bad('profile', 'give either a profile or weights, not both');
    const name = obj.profile;
    if (typeof name !== 'string' || !Object.hasOwn(WEIGHT_PROFILES, name)) {
      return bad('profile', `unknown profile; known: ${Object.keys(WEIGHT_PROFILES).join(', ')}`);
    }
    return { ok: true, record: { weights: { ...WEIGHT_PROFILES[name].weights }, profile: name } };
  }
  const next: Weights = { ...current };
  for (const k of SCORER_NAMES) if (k in obj) next[k] = obj[k] as number;
  const problem = weightsProblem(next);
  if (problem) return bad(problem.field, problem.error);
  return { ok: true, record: { weights: next, profile: profileOf(next) } };
}

/** The profile whose weights these are exactly, else null. */
export function profileOf(w: Weights): string | null {
  for (const [name, p] of Object.entries(WEIGHT_PROFILES)) {
    if (SCORER_NAMES.every((k) => p.weights[k] === w[k])) return name;
  }
  return null;
}

/** Where weights survive a restart. */
export interface WeightsStore {
  readonly description: string;
  /** null when nothing was stored yet */
  load(): Promise<WeightsRecord | null>;
  save(record: WeightsRecord): Promise<void>;
}

/** Parses a stored record, rejecting anything that is not valid weights. */
export function parseStoredRecord(text: string, where: string): WeightsRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
  const r = raw as { weights?: unknown; profile?: unknown };
  const w = r?.weights as Record<string, unknown> | undefined;
  if (typeof w !== 'object' || w === null) throw new Error(`${where}: missing "weights" object`);
  const weights = { prefix: w.prefix, queue: w.queue, kvCache: w.kvCache, inflight: w.inflight } as Weights;
  const err = weightsError(weights);
  if (err) throw new Error(`${where}: ${err}`);
  return { weights, profile: typeof r.profile === 'string' ? r.profile : profileOf(weights) };
}

export class FileWeightsStore implements WeightsStore {
  readonly description: string;
  constructor(private readonly path: string) {
    this.description = `file ${path}`;
  }

  async load(): Promise<WeightsRecord | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return parseStoredRecord(text, this.path);
  }

  /** temp file in the same directory + fsync + rename: a crash leaves the old or the new file, never half of one. */
  async save(record: WeightsRecord): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(this.path)}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(record, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }
}

/** Key of the weights document inside the ConfigMap. */
export const CONFIGMAP_KEY = 'weights.json';
/** Name manifests/base/rbac.yaml grants get/update on. */
export const DEFAULT_WEIGHTS_CONFIGMAP = 'prefix-router-weights';

function httpStatusOf(e: unknown): number | undefined {
  const x = e as { code?: unknown; statusCode?: unknown; body?: unknown };
  if (typeof x?.code === 'number') return x.code;
  if (typeof x?.statusCode === 'number') return x.statusCode;
  return undefined;
}

/** One ConfigMap (read, then replace or create). Needs get/update on it and create on configmaps. */
export class ConfigMapWeightsStore implements WeightsStore {
  readonly description: string;
  constructor(private readonly kc: KubeConfig, private readonly namespace: string, private readonly name: string) {
    this.description = `configmap ${namespace}/${name}`;
  }

  private async api() {
    const { CoreV1Api } = await import('@kubernetes/client-node');
    return this.kc.makeApiClient(CoreV1Api);
  }

  async load(): Promise<WeightsRecord | null> {
    const api = await this.api();
    try {
      const cm = await api.readNamespacedConfigMap({ name: this.name, namespace: this.namespace });
      const text = cm.data?.[CONFIGMAP_KEY];
      return text === undefined ? null : parseStoredRecord(text, `${this.description} key ${CONFIGMAP_KEY}`);
    } catch (e) {
      if (httpStatusOf(e) === 404) return null;
      throw e;
    }
  }

  async save(record: WeightsRecord): Promise<void> {
    const api = await this.api();
    const data = { [CONFIGMAP_KEY]: JSON.stringify(record) };
    let existing;
    try {
      existing = await api.readNamespacedConfigMap({ name: this.name, namespace: this.namespace });
    } catch (e) {
      if (httpStatusOf(e) !== 404) throw e;
    }
    if (existing) {
      // resourceVersion kept: a concurrent writer makes this fail (409) instead of silently losing its change.
      await api.replaceNamespacedConfigMap({
        name: this.name, namespace: this.namespace,
        body: { ...existing, data: { ...(existing.data ?? {}), ...data } },
      });
    } else {
      await api.createNamespacedConfigMap({
        namespace: this.namespace,
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: this.name, namespace: this.namespace, labels: { 'app.kubernetes.io/name': 'prefix-router-control-plane' } }, data },
      });
    }
  }
}

/** Keeps weights in memory only (no persistence configured). */
export class MemoryWeightsStore implements WeightsStore {
  readonly description = 'memory (not persisted)';
  private record: WeightsRecord | null = null;
  async load() { return this.record; }
  async save(r: WeightsRecord) { this.record = r; }
}
