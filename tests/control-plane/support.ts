// Test helpers: stand-in replicas serving the real /metrics samples (with
// values tests can change), a local Kubernetes API (list + watch of pods,
// InferencePools and ConfigMaps), and waiting helpers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeState, type RouterState } from '../../control-plane/stateWire.js';

/** The real /metrics samples (data/README.md). */
export const METRICS_DIR = fileURLToPath(new URL('../../data/metrics', import.meta.url));
export const SAMPLE_FILES = readdirSync(METRICS_DIR).filter((f) => f.endsWith('.txt')).sort();
export const sample = (name: string) => readFileSync(`${METRICS_DIR}/${name}`, 'utf8');
export const VLLM_SAMPLE = 'vllm-datadog-fixture.txt';

/** Replaces the value of every sample of `metric` (any labels) in Prometheus text. */
export function setMetric(text: string, metric: string, value: number): string {
  const esc = metric.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return text.replace(new RegExp(`^(${esc}(?:\\{[^\\n]*\\})?[ \\t]+)\\S+`, 'gm'), `$1${value}`);
}

export type ReplicaMode = 'ok' | 'hang' | 'error500' | 'garbage';

export interface StandIn {
  address: string;
  port: number;
  /** metric name -> value substituted into the sample */
  values: Record<string, number>;
  mode: ReplicaMode;
  /** /metrics requests so far */
  requests: number;
  /** /metrics requests open right now, and the most ever open at once */
  active: number;
  maxActive: number;
  /** query string of the last /metrics request */
  lastQuery: string;
  close(): Promise<void>;
}

/** A replica serving `file` on `host` (any 127.x address: all of 127/8 is loopback on Linux) and `port` (0: any free one). */
export async function standInReplica(file = VLLM_SAMPLE, host = '127.0.0.1', port = 0): Promise<StandIn> {
  const base = sample(file);
  const hung: http.ServerResponse[] = [];
  const r: StandIn = {
    address: '', port: 0, values: {}, mode: 'ok', requests: 0, active: 0, maxActive: 0, lastQuery: '',
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
  const server = http.createServer((req, res) => {
    const [path, query] = (req.url ?? '/').split('?');
    // Only /metrics is served and counted: the control plane's other reads (its /v1/models) get a 404, as from an engine without them.
    if (path !== '/metrics') { res.writeHead(404).end(); return; }
    r.requests++;
    r.active++;
    r.maxActive = Math.max(r.maxActive, r.active);
    let counted = true;
    const uncount = () => { if (counted) { counted = false; r.active--; } };
    res.on('finish', uncount);
    res.on('close', uncount);
    r.lastQuery = query ?? '';
    if (r.mode === 'hang') { hung.push(res); return; }
    if (r.mode === 'error500') { res.writeHead(500).end('boom'); return; }
    if (r.mode === 'garbage') { res.writeHead(200, { 'content-type': 'text/plain' }).end('this is not prometheus\n{{{\n'); return; }
    let text = base;
    for (const [k, v] of Object.entries(r.values)) text = setMetric(text, k, v);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(text);
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(port, host, ok); });
  r.port = (server.address() as AddressInfo).port;
  r.address = `${host}:${r.port}`;
  return r;
}

/** Polls `check` until it returns a truthy value; fails after `maxMs` (generous: the machine is shared). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, maxMs = 30_000, everyMs = 10): Promise<NonNullable<T>> {
  const end = Date.now() + maxMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function getState(url: string, after = '0', waitMs = 0): Promise<{ status: number; version: string | null; state: RouterState | null; contentType: string | null }> {
  const res = await fetch(`${url}/v1/state?after=${after}&waitMs=${waitMs}`);
  const body = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status, version: res.headers.get('x-prefix-router-state-version'), contentType: res.headers.get('content-type'),
    state: res.status === 200 ? decodeState(body) : null,
  };
}

// ---------------------------------------------------------------------------
// A local Kubernetes API server: list and watch (JSON lines) for pods and
// InferencePools in one namespace, plus get/create/replace of ConfigMaps.

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> }; [k: string]: unknown };

interface Watcher { kind: 'pods' | 'inferencepools'; res: http.ServerResponse; selector: Record<string, string>; fieldName?: string }

function parseSelector(s: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    out[k.trim()] = (v ?? '').trim();
  }
  return out;
}

const matches = (o: Obj, sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => o.metadata.labels?.[k] === v);

export class FakeKube {
  readonly pods = new Map<string, Obj>();
  readonly pools = new Map<string, Obj>();
  readonly configMaps = new Map<string, Obj>();
  private rv = 100;
  private watchers = new Set<Watcher>();
  /** every change, so a watch from resourceVersion N replays what came after N (as the real API server does) */
  private readonly events: Array<{ kind: Watcher['kind']; type: string; object: Obj; rv: number }> = [];
  private server!: http.Server;
  url = '';
  requests: string[] = [];

  constructor(readonly namespace = 'ns1') {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  /** Ends every open watch, as the API server does when a watch times out. */
  dropWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  get openWatches(): number { return this.watchers.size; }

  /** A KubeConfig pointing at this server. */
  async kubeConfig() {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'c', cluster: 'fake', user: 'u', namespace: this.namespace }],
      currentContext: 'c',
    });
    return kc;
  }

  static pod(name: string, ip: string | null, ready: boolean, labels: Record<string, string> = { 'llm-d.ai/inferenceServing': 'true' }): Obj {
    return {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, labels },
      spec: { containers: [{ name: 'vllm', image: 'vllm' }] },
      status: { phase: 'Running', ...(ip ? { podIP: ip } : {}), conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
    };
  }

  static pool(name: string, matchLabels: Record<string, string>, port: number): Obj {
    return {
      apiVersion: 'inference.networking.k8s.io/v1', kind: 'InferencePool', metadata: { name },
      spec: { selector: { matchLabels }, targetPorts: [{ number: port }], endpointPickerRef: { name: 'epp', kind: 'Service', port: { number: 9002 } } },
    };
  }

  upsertPod(o: Obj): void { this.upsert('pods', this.pods, o); }
  deletePod(name: string): void { this.remove('pods', this.pods, name); }
  upsertPool(o: Obj): void { this.upsert('inferencepools', this.pools, o); }
  deletePool(name: string): void { this.remove('inferencepools', this.pools, name); }

  private upsert(kind: Watcher['kind'], map: Map<string, Obj>, o: Obj): void {
    const copy = structuredClone(o);
    copy.metadata.namespace = this.namespace;
    copy.metadata.resourceVersion = String(++this.rv);
    const type = map.has(copy.metadata.name) ? 'MODIFIED' : 'ADDED';
    map.set(copy.metadata.name, copy);
    this.notify(kind, type, copy);
  }

  private remove(kind: Watcher['kind'], map: Map<string, Obj>, name: string): void {
    const o = map.get(name);
    if (!o) return;
    map.delete(name);
    const copy = structuredClone(o);
    copy.metadata.resourceVersion = String(++this.rv);
    this.notify(kind, 'DELETED', copy);
  }

  private notify(kind: Watcher['kind'], type: string, o: Obj): void {
    this.events.push({ kind, type, object: o, rv: Number(o.metadata.resourceVersion) });
    for (const w of this.watchers) {
      if (w.kind !== kind || !matches(o, w.selector)) continue;
      if (w.fieldName && o.metadata.name !== w.fieldName) continue;
      w.res.write(JSON.stringify({ type, object: o }) + '\n');
    }
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url!, this.url);
    this.requests.push(`${req.method} ${u.pathname}${u.search}`);
    const ns = this.namespace;
    const podsPath = `/api/v1/namespaces/${ns}/pods`;
    const poolsPath = `/apis/inference.networking.k8s.io/v1/namespaces/${ns}/inferencepools`;
    const cmPath = `/api/v1/namespaces/${ns}/configmaps`;
    const selector = parseSelector(u.searchParams.get('labelSelector'));
    const field = u.searchParams.get('fieldSelector');
    const fieldName = field?.startsWith('metadata.name=') ? field.slice('metadata.name='.length) : undefined;
    if (u.pathname === podsPath || u.pathname === poolsPath) {
      const kind = u.pathname === podsPath ? 'pods' : 'inferencepools';
      const map = kind === 'pods' ? this.pods : this.pools;
      if (u.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        res.flushHeaders();
        const w: Watcher = { kind, res, selector, fieldName };
        this.watchers.add(w);
        const from = Number(u.searchParams.get('resourceVersion') || this.rv);
        for (const e of this.events) {
          if (e.kind !== kind || e.rv <= from || !matches(e.object, selector)) continue;
          if (fieldName && e.object.metadata.name !== fieldName) continue;
          res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
        }
        res.on('close', () => this.watchers.delete(w));
        return;
      }
      const items = [...map.values()].filter((o) => matches(o, selector) && (!fieldName || o.metadata.name === fieldName));
      return this.json(res, 200, {
        apiVersion: kind === 'pods' ? 'v1' : 'inference.networking.k8s.io/v1', kind: kind === 'pods' ? 'PodList' : 'InferencePoolList',
        metadata: { resourceVersion: String(this.rv) }, items,
      });
    }
    if (u.pathname.startsWith(cmPath)) {
      const name = u.pathname.slice(cmPath.length + 1);
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        if (req.method === 'GET' && name) {
          const cm = this.configMaps.get(name);
          return cm ? this.json(res, 200, cm) : this.json(res, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `configmaps "${name}" not found` });
        }
        if (req.method === 'POST' && !name) {
          const o = JSON.parse(body) as Obj;
          if (this.configMaps.has(o.metadata.name)) return this.json(res, 409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
          o.metadata.resourceVersion = String(++this.rv);
          this.configMaps.set(o.metadata.name, o);
          return this.json(res, 201, o);
        }
        if (req.method === 'PUT' && name) {
          const o = JSON.parse(body) as Obj;
          const cur = this.configMaps.get(name);
          if (!cur) return this.json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound' });
          if (o.metadata.resourceVersion !== cur.metadata.resourceVersion) return this.json(res, 409, { kind: 'Status', code: 409, reason: 'Conflict' });
          o.metadata.resourceVersion = String(++this.rv);
          this.configMaps.set(name, o);
          return this.json(res, 200, o);
        }
        this.json(res, 405, { kind: 'Status', code: 405 });
      });
      return;
    }
    this.json(res, 404, { kind: 'Status', code: 404, message: `no route ${u.pathname}` });
  }
}
