// Where replicas come from: a static list, or Kubernetes pods (by label
// selector, or by the selector and port of an InferencePool), watched with
// @kubernetes/client-node informers.
import type { KubeConfig, KubernetesObject, V1Pod, Informer, ObjectCache } from '@kubernetes/client-node';
import type { Logger } from './log.js';
import type { Member } from './stateStore.js';
import { addressError } from './stateWire.js';

export interface Discovery {
  /** Human description for logs and /readyz. */
  readonly description: string;
  /** true once the first full member list is known */
  readonly synced: boolean;
  /** why discovery is not (yet) usable, or null */
  readonly problem: string | null;
  start(onChange: (members: Member[]) => void): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Normalizes one static replica: `http://10.0.0.1:8000`, `10.0.0.1:8000`,
 * `[fd00::1]:8000`, `localhost:8000`. Returns the `ip:port` address or throws
 * with a message naming the entry.
 */
export function normalizeReplicaAddress(entry: string): string {
  let s = entry.trim();
  const original = s;
  if (/^https:\/\//i.test(s)) throw new Error(`replica ${JSON.stringify(original)}: https is not supported for scraping; give http:// or ip:port`);
  if (/^http:\/\//i.test(s)) {
    let u: URL;
    try { u = new URL(s); } catch { throw new Error(`replica ${JSON.stringify(original)}: not a URL`); }
    if (u.pathname !== '/' && u.pathname !== '') throw new Error(`replica ${JSON.stringify(original)}: give the replica's base URL without a path (metrics are read from metricsPath)`);
    if (!u.port) throw new Error(`replica ${JSON.stringify(original)}: the port is required`);
    s = `${u.hostname}:${u.port}`;
  }
  // The filter hands Envoy an ip:port (ORIGINAL_DST), so names other than localhost are not accepted.
  s = s.replace(/^localhost:/i, '127.0.0.1:');
  const err = addressError(s);
  if (err) throw new Error(`replica ${JSON.stringify(original)}: ${err}`);
  return s;
}

export class StaticDiscovery implements Discovery {
  readonly description: string;
  readonly synced = true;
  readonly problem = null;
  private readonly addresses: string[];

  constructor(entries: string[]) {
    this.addresses = [...new Set(entries.map(normalizeReplicaAddress))];
    this.description = `static list of ${this.addresses.length} replica(s)`;
  }

  async start(onChange: (members: Member[]) => void): Promise<void> {
    onChange(this.addresses.map((address) => ({ address, ready: true, source: 'static' })));
  }

  async stop(): Promise<void> {}
}

/** The label a vLLM pod of llm-d / GIE examples carries. */
export const DEFAULT_POD_SELECTOR = 'llm-d.ai/inferenceServing=true';
export const INFERENCE_POOL_GROUP = 'inference.networking.k8s.io';
export const INFERENCE_POOL_VERSION = 'v1';
export const INFERENCE_POOL_PLURAL = 'inferencepools';
/** First retry after a failed list/watch; doubles up to the max. */
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;

/** Ready = the pod's Ready condition is True, it has an IP and is not being deleted. */
export function podMember(pod: V1Pod, port: number): Member | null {
  const ip = pod.status?.podIP;
  if (!ip) return null;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const ready = !pod.metadata?.deletionTimestamp &&
    (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
  return { address: `${host}:${port}`, ready, source: `pod ${pod.metadata?.name ?? '?'}` };
}

interface PoolSpec { selector: string; port: number }

interface InferencePoolObject extends KubernetesObject {
  spec?: { selector?: { matchLabels?: Record<string, string> }; targetPorts?: Array<{ number?: number }> };
}

/** Reads selector and port from an InferencePool (inference.networking.k8s.io/v1), or says what is missing. */
export function poolSpec(pool: InferencePoolObject): PoolSpec | string {
  const labels = pool.spec?.selector?.matchLabels;
  if (!labels || Object.keys(labels).length === 0) return 'spec.selector.matchLabels is empty';
  const port = pool.spec?.targetPorts?.[0]?.number;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return 'spec.targetPorts[0].number is missing or not a port';
  const selector = Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
  return { selector, port };
}

type Watched<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** An informer restarted with backoff after errors (the library stops on them). */
class RestartingInformer<T extends KubernetesObject> {
  private stopped = false;
  private delay = RESTART_BASE_MS;
  private timer: NodeJS.Timeout | null = null;
  listed = false;

  constructor(readonly informer: Watched<T>, private readonly what: string, private readonly log: Logger, onChange: () => void, private readonly onError: (e: string) => void) {
    informer.on('add', onChange);
    informer.on('update', onChange);
    informer.on('delete', onChange);
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      const msg = describeError(err);
      this.log.warn('kubernetes watch failed; restarting', { what, error: msg, retryMs: this.delay });
      this.onError(`${what}: ${msg}`);
      this.timer = setTimeout(() => { this.timer = null; void this.start(); }, this.delay);
      this.delay = Math.min(RESTART_MAX_MS, this.delay * 2);
    });
  }

  markListed(): void {
    this.listed = true;
    this.delay = RESTART_BASE_MS;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { code?: number; body?: unknown; message?: string };
  if (e?.code) return `HTTP ${e.code}${e.body ? ` ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}` : ''}`;
  return String(err);
}

export interface KubernetesDiscoveryOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** label selector of the pods (ignored when inferencePool is set) */
  selector?: string;
  /** port on the pods (selector mode) */
  targetPort?: number;
  inferencePool?: string;
  logger: Logger;
}

export class KubernetesDiscovery implements Discovery {
  readonly description: string;
  private pods: RestartingInformer<V1Pod> | null = null;
  private pool: RestartingInformer<InferencePoolObject> | null = null;
  private current: PoolSpec | null = null;
  private onChange: (members: Member[]) => void = () => {};
  private problemValue: string | null = null;
  private stopped = false;

  constructor(private readonly opts: KubernetesDiscoveryOptions) {
    this.description = opts.inferencePool
      ? `InferencePool ${opts.namespace}/${opts.inferencePool}`
      : `pods in ${opts.namespace} matching ${opts.selector ?? DEFAULT_POD_SELECTOR}, port ${opts.targetPort}`;
  }

  get synced(): boolean {
    if (this.opts.inferencePool === undefined) return this.pods !== null && this.pods.listed;
    // A pool that is missing or unusable is a known (empty) member list.
    return this.pool !== null && this.pool.listed && (this.current === null || (this.pods !== null && this.pods.listed));
  }

  get problem(): string | null {
    if (this.opts.inferencePool && this.pool?.listed && this.current === null) return this.problemValue ?? `InferencePool ${this.opts.inferencePool} not found`;
    return this.problemValue;
  }

  async start(onChange: (members: Member[]) => void): Promise<void> {
    this.onChange = onChange;
    if (this.opts.inferencePool) await this.watchPool(this.opts.inferencePool);
    else await this.watchPods({ selector: this.opts.selector ?? DEFAULT_POD_SELECTOR, port: this.opts.targetPort ?? 8000 });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.pods?.stop();
    await this.pool?.stop();
  }

  private emit(): void {
    if (this.stopped) return;
    const members: Member[] = [];
    if (this.pods && this.current) {
      for (const pod of this.pods.informer.list()) {
        const m = podMember(pod, this.current.port);
        if (m) members.push(m);
      }
    }
    this.onChange(members);
  }

  private async watchPods(spec: PoolSpec): Promise<void> {
    const { CoreV1Api, makeInformer } = await import('@kubernetes/client-node');
    const { kubeConfig: kc, namespace, logger } = this.opts;
    if (this.pods) await this.pods.stop();
    this.current = spec;
    const api = kc.makeApiClient(CoreV1Api);
    let holder: RestartingInformer<V1Pod> | null = null;
    const informer = makeInformer<V1Pod>(kc, `/api/v1/namespaces/${namespace}/pods`, async () => {
      const list = await api.listNamespacedPod({ namespace, labelSelector: spec.selector });
      holder?.markListed();
      this.problemValue = null;
      return list;
    }, spec.selector);
    holder = new RestartingInformer(informer, `pods (${spec.selector})`, logger, () => this.emit(), (e) => { this.problemValue = e; });
    this.pods = holder;
    logger.info('watching pods', { namespace, selector: spec.selector, port: spec.port });
    await holder.start();
    this.emit();
  }

  private async watchPool(name: string): Promise<void> {
    const { CustomObjectsApi, ListWatch, Watch } = await import('@kubernetes/client-node');
    const { kubeConfig: kc, namespace, logger } = this.opts;
    const api = kc.makeApiClient(CustomObjectsApi);
    const fieldSelector = `metadata.name=${name}`;
    let holder: RestartingInformer<InferencePoolObject> | null = null;
    const path = `/apis/${INFERENCE_POOL_GROUP}/${INFERENCE_POOL_VERSION}/namespaces/${namespace}/${INFERENCE_POOL_PLURAL}`;
    const informer = new ListWatch<InferencePoolObject>(path, new Watch(kc), async () => {
      const list = await api.listNamespacedCustomObject({
        group: INFERENCE_POOL_GROUP, version: INFERENCE_POOL_VERSION, namespace, plural: INFERENCE_POOL_PLURAL, fieldSelector,
      });
      holder?.markListed();
      return list;
    }, false, undefined, fieldSelector);
    holder = new RestartingInformer(informer, `InferencePool ${namespace}/${name}`, logger, () => void this.poolChanged(name), (e) => { this.problemValue = e; });
    this.pool = holder;
    logger.info('watching InferencePool', { namespace, name });
    await holder.start();
    await this.poolChanged(name);
  }

  private poolChain: Promise<void> = Promise.resolve();

  /** Serialized: a pool edited twice quickly must not start two pod watches. */
  private poolChanged(name: string): Promise<void> {
    this.poolChain = this.poolChain.then(() => this.applyPool(name)).catch((e) => {
      this.opts.logger.error('applying InferencePool failed', { error: describeError(e) });
    });
    return this.poolChain;
  }

  private async applyPool(name: string): Promise<void> {
    if (this.stopped || !this.pool) return;
    const obj = this.pool.informer.get(name, this.opts.namespace);
    if (!obj) {
      if (this.current !== null) this.opts.logger.warn('InferencePool gone; no replicas', { name });
      this.current = null;
      this.problemValue = `InferencePool ${this.opts.namespace}/${name} not found`;
      if (this.pods) { await this.pods.stop(); this.pods = null; }
      this.emit();
      return;
    }
    const spec = poolSpec(obj);
    if (typeof spec === 'string') {
      this.opts.logger.error('InferencePool unusable', { name, problem: spec });
      this.problemValue = `InferencePool ${name}: ${spec}`;
      this.current = null;
      if (this.pods) { await this.pods.stop(); this.pods = null; }
      this.emit();
      return;
    }
    this.problemValue = null;
    if (this.current && this.pods && this.current.selector === spec.selector && this.current.port === spec.port) return;
    if (this.current && this.current.selector === spec.selector && this.pods) {
      this.current = spec; // port change only: same pods, new addresses
      this.emit();
      return;
    }
    await this.watchPods(spec);
  }
}
