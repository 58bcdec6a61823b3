// The control plane as a function of its configuration and dependencies:
// discovery -> scraping -> versioned state -> HTTP API. `handle(req, res)` is
// the whole HTTP surface; server.ts only binds it to a socket.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { makeTokenCheck, type AuthResult } from './auth.js';
import { effectiveMappings, type ControlPlaneConfig } from './config.js';
import { KubernetesDiscovery, StaticDiscovery, type Discovery } from './discovery.js';
import { createLogger, type Logger } from './log.js';
import { Scraper, type ScrapeOutcome } from './scraper.js';
import { isStale, StateStore, type Member } from './stateStore.js';
import { STATE_CONTENT_TYPE, STATE_VERSION_HEADER, type RouterState } from './stateWire.js';
import { Telemetry } from './telemetry.js';
import {
  applyWeightsUpdate, ConfigMapWeightsStore, FileWeightsStore, MemoryWeightsStore, profileOf, WEIGHT_PROFILES,
  type WeightsRecord, type WeightsStore,
} from './weights.js';

/** Staleness is re-checked this often even when no scrape changed anything. */
const STALENESS_CHECK_MS = 100;

export interface ControlPlaneDeps {
  logger?: Logger;
  /** API token for writes; null/undefined = none configured */
  token?: string | null;
  discovery?: Discovery;
  kubeConfig?: KubeConfig;
  weightsStore?: WeightsStore;
  /** called after every scrape (benchmarks, tests) */
  onScrape?: (address: string, outcome: ScrapeOutcome) => void;
}

export class WeightsInputError extends Error {
  constructor(readonly field: string, message: string) { super(message); }
}

export interface ControlPlane {
  handle(req: IncomingMessage, res: ServerResponse): void;
  start(): Promise<void>;
  close(): Promise<void>;
  readonly store: StateStore;
  readonly telemetry: Telemetry;
  readonly discovery: Discovery;
  readonly weightsStore: WeightsStore;
  weights(): WeightsRecord;
  /** Same rules as PUT /v1/weights (no token needed: in-process callers are trusted). Persists, then applies. */
  setWeights(update: unknown): Promise<WeightsRecord>;
  readiness(): { ready: boolean; reason: string };
}

async function loadKubeConfig(path?: string): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

type Json = Record<string, unknown>;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

const errorBody = (error: string, field?: string): Json => (field ? { error, field } : { error });

export async function buildControlPlane(config: ControlPlaneConfig, deps: ControlPlaneDeps = {}): Promise<ControlPlane> {
  const log = deps.logger ?? createLogger(config.logLevel);
  const telemetry = new Telemetry();
  const needsKube = !deps.discovery && config.kubernetes !== undefined || (!deps.weightsStore && config.weightsConfigMap !== undefined);
  const kc = deps.kubeConfig ?? (needsKube ? await loadKubeConfig(config.kubernetes?.kubeconfig) : undefined);
  const discovery: Discovery = deps.discovery ?? (config.kubernetes
    ? new KubernetesDiscovery({
      kubeConfig: kc!, namespace: config.kubernetes.namespace, selector: config.kubernetes.selector,
      inferencePool: config.kubernetes.inferencePool, targetPort: config.kubernetes.targetPort, logger: log,
    })
    : new StaticDiscovery(config.replicas ?? []));
  const weightsStore: WeightsStore = deps.weightsStore ??
    (config.weightsFile ? new FileWeightsStore(config.weightsFile)
      : config.weightsConfigMap ? new ConfigMapWeightsStore(kc!, config.kubernetes!.namespace, config.weightsConfigMap)
        : new MemoryWeightsStore());
  const store = new StateStore(config.weights, { stalenessMs: config.stalenessMs, hitRateWindowMs: config.hitRateWindowMs });
  let weightsRecord: WeightsRecord = { weights: store.weights, profile: profileOf(store.weights) };
  const token = deps.token ?? null;
  const checkToken = token ? makeTokenCheck(token) : null;

  // Log scrape failures when a replica starts failing and when it recovers, not at every scrape.
  const failing = new Set<string>();
  const scraper = new Scraper({
    intervalMs: config.scrapeIntervalMs, timeoutMs: config.scrapeTimeoutMs, metricsPath: config.metricsPath, nameFilter: config.metricsNameFilter,
    mappings: effectiveMappings(config),
    onResult(address, outcome) {
      telemetry.scrapeSeconds.observe({ replica: address }, outcome.durationMs / 1000);
      if (outcome.ok) {
        store.recordSuccess(address, outcome.metrics);
        if (failing.delete(address)) log.info('replica scrapes recovered', { replica: address });
      } else {
        telemetry.scrapeErrors.inc({ replica: address, reason: outcome.reason });
        store.recordFailure(address, outcome.error, outcome.reason);
        if (!failing.has(address)) {
          failing.add(address);
          log.warn('replica scrape failed', { replica: address, reason: outcome.reason, error: outcome.error });
        }
      }
      deps.onScrape?.(address, outcome);
    },
  });

  const known = new Map<string, boolean>();
  const onMembers = (members: Member[]) => {
    const next = new Map(members.map((m) => [m.address, m.ready]));
    for (const [a, ready] of next) {
      const was = known.get(a);
      if (was === undefined) log.info('replica added', { replica: a, ready });
      else if (was !== ready) log.info(ready ? 'replica ready' : 'replica not ready', { replica: a });
    }
    for (const a of known.keys()) {
      if (!next.has(a)) { log.info('replica removed', { replica: a }); telemetry.forgetReplica(a); failing.delete(a); }
    }
    known.clear();
    for (const [a, r] of next) known.set(a, r);
    store.setMembers(members);
    scraper.setTargets(members.filter((m) => m.ready).map((m) => m.address));
    store.publish();
  };

  store.onPublish((s: RouterState) => {
    telemetry.stateVersion.set(Number(s.version));
  });

  let tickTimer: NodeJS.Timeout | null = null;
  let lastStaleCheck = 0;
  let started = false;
  let closed = false;

  // Weight changes are serialized: persist, then apply, one at a time, in arrival order.
  let writeChain: Promise<unknown> = Promise.resolve();
  const setWeights = (update: unknown): Promise<WeightsRecord> => {
    const run = writeChain.then(async () => {
      const r = applyWeightsUpdate(update, weightsRecord.weights);
      if (!r.ok) throw new WeightsInputError(r.field, r.error);
      await weightsStore.save(r.record); // a failed save leaves the served weights as they were
      weightsRecord = r.record;
      store.setWeights(r.record.weights);
      telemetry.weightChanges.inc();
      log.info('weights changed', { weights: r.record.weights, profile: r.record.profile, version: store.version.toString() });
      return r.record;
    });
    writeChain = run.catch(() => {});
    return run;
  };

  const readiness = (): { ready: boolean; reason: string } => {
    if (!started) return { ready: false, reason: 'starting' };
    if (!discovery.synced) return { ready: false, reason: `discovery not synced yet (${discovery.description})${discovery.problem ? `: ${discovery.problem}` : ''}` };
    const ready = store.state.replicas.filter((r) => r.ready).length;
    if (ready === 0) {
      const total = store.state.replicas.length;
      return { ready: false, reason: total === 0 ? `no replicas found (${discovery.description})${discovery.problem ? `: ${discovery.problem}` : ''}` : `none of ${total} replicas is ready (not ready in discovery, or metrics stale for more than ${config.stalenessMs} ms)` };
    }
    return { ready: true, reason: `${ready} of ${store.state.replicas.length} replicas ready` };
  };

  const authorize = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!checkToken) {
      if (config.allowUnauthenticatedWrites) return true;
      sendJson(res, 403, errorBody('writes are disabled: no API token is configured (set PREFIX_ROUTER_API_TOKEN or --token-file; on a loopback host, --allow-unauthenticated-writes)'));
      return false;
    }
    const result: AuthResult = checkToken(req.headers.authorization);
    if (result === 'ok') return true;
    log.warn('weights write refused', { reason: result === 'missing' ? 'no bearer token' : 'wrong token', remote: req.socket.remoteAddress });
    sendJson(res, 401, errorBody(result === 'missing' ? 'missing bearer token (Authorization: Bearer <token>)' : 'invalid token'), { 'www-authenticate': 'Bearer' });
    return false;
  };

  /** Reads a JSON body within the size limit; answers the error itself and returns undefined on failure. */
  const readJsonBody = (req: IncomingMessage, res: ServerResponse): Promise<{ value: unknown } | undefined> => new Promise((resolve) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      sendJson(res, 415, errorBody(`Content-Type must be application/json (got ${type ? JSON.stringify(type) : 'none'})`));
      return resolve(undefined);
    }
    const declared = Number(req.headers['content-length']);
    const tooLarge = () => {
      sendJson(res, 413, errorBody(`body larger than ${config.maxBodyBytes} bytes`), { connection: 'close' });
      resolve(undefined);
    };
    if (Number.isFinite(declared) && declared > config.maxBodyBytes) { req.resume(); return tooLarge(); }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > config.maxBodyBytes) { failed = true; tooLarge(); req.resume(); return; }
      chunks.push(c);
    });
    req.on('error', () => { if (!failed) { failed = true; resolve(undefined); } });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve({ value: JSON.parse(text) });
      } catch (e) {
        sendJson(res, 400, errorBody(`body is not valid JSON: ${(e as Error).message}`, '(body)'));
        resolve(undefined);
      }
    });
  });

  const weightsJson = (): Json => ({ ...weightsRecord.weights, profile: weightsRecord.profile, version: store.version.toString(), persistedIn: weightsStore.description });

  const serveState = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const afterRaw = url.searchParams.get('after') ?? '0';
    const waitRaw = url.searchParams.get('waitMs') ?? '0';
    if (!/^\d{1,20}$/.test(afterRaw) || BigInt(afterRaw) > 0xffffffffffffffffn) return sendJson(res, 400, errorBody('after must be a non-negative integer (a state version)', 'after'));
    if (!/^\d{1,9}$/.test(waitRaw)) return sendJson(res, 400, errorBody('waitMs must be a non-negative integer (milliseconds)', 'waitMs'));
    const after = BigInt(afterRaw);
    const waitMs = Math.min(Number(waitRaw), config.maxLongPollMs);
    let answered = false;
    const cancel = store.waitForChange(after, waitMs, (changed) => {
      if (answered || res.destroyed) return;
      answered = true;
      const version = store.version.toString();
      if (changed) {
        const bytes = store.bytes;
        telemetry.stateDeliveries.inc({ status: '200' });
        res.writeHead(200, { 'content-type': STATE_CONTENT_TYPE, 'content-length': bytes.length, [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
        res.end(bytes);
      } else {
        telemetry.stateDeliveries.inc({ status: '304' });
        res.writeHead(304, { [STATE_VERSION_HEADER]: version, 'cache-control': 'no-store' });
        res.end();
      }
    });
    if (!answered) res.on('close', cancel);
  };

  const replicasJson = (): Json => {
    const now = Date.now();
    const list = [...store.replicas.values()].sort((a, b) => (a.address < b.address ? -1 : 1)).map((r) => {
      const stale = isStale(r, now, config.stalenessMs);
      return {
        address: r.address,
        source: r.source,
        ready: r.discoveryReady && !stale,
        discoveryReady: r.discoveryReady,
        stale,
        metricsAgeMs: r.lastSuccessMs === null ? null : now - r.lastSuccessMs,
        metrics: r.metrics,
        observedHitRate: store.observedHitRate(r),
        kvCapacityTokens: r.metrics?.kvCapacityTokens ?? null,
        consecutiveFailures: r.consecutiveFailures,
        lastError: r.lastError,
      };
    });
    return { version: store.version.toString(), discovery: discovery.description, replicas: list };
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://control-plane');
    const method = req.method ?? 'GET';
    const only = (allowed: string[]): boolean => {
      if (allowed.includes(method)) return true;
      req.resume();
      sendJson(res, 405, errorBody(`method ${method} not allowed on ${url.pathname}; use ${allowed.join(' or ')}`), { allow: allowed.join(', ') });
      return false;
    };
    switch (url.pathname) {
      case '/v1/state':
        if (only(['GET'])) serveState(req, res, url);
        return;
      case '/v1/replicas':
        if (only(['GET'])) sendJson(res, 200, replicasJson());
        return;
      case '/v1/weights/profiles':
        if (only(['GET'])) sendJson(res, 200, { profiles: Object.fromEntries(Object.entries(WEIGHT_PROFILES).map(([k, v]) => [k, { ...v.weights, description: v.description }])) });
        return;
      case '/v1/weights': {
        if (!only(['GET', 'PUT'])) return;
        if (method === 'GET') return sendJson(res, 200, weightsJson());
        if (!authorize(req, res)) { req.resume(); return; }
        const body = await readJsonBody(req, res);
        if (!body) return;
        try {
          await setWeights(body.value);
        } catch (e) {
          if (e instanceof WeightsInputError) return sendJson(res, 400, errorBody(e.message, e.field));
          log.error('saving weights failed; weights unchanged', { store: weightsStore.description, error: e as Error });
          return sendJson(res, 500, errorBody(`could not save the weights (${weightsStore.description}); weights unchanged`));
        }
        return sendJson(res, 200, weightsJson());
      }
      case '/healthz':
        if (only(['GET'])) sendJson(res, 200, { ok: true });
        return;
      case '/readyz':
        if (only(['GET'])) {
          const r = readiness();
          sendJson(res, r.ready ? 200 : 503, r);
        }
        return;
      case '/metrics':
        if (!only(['GET'])) return;
        telemetry.longPollsWaiting.set(store.waiting);
        updateReplicaGauge();
        {
          const text = await telemetry.registry.metrics();
          res.writeHead(200, { 'content-type': telemetry.registry.contentType });
          res.end(text);
        }
        return;
      default:
        req.resume();
        sendJson(res, 404, errorBody(`no such endpoint: ${url.pathname}`));
    }
  };

  const updateReplicaGauge = () => {
    const now = Date.now();
    let ready = 0, stale = 0, notReady = 0;
    for (const r of store.replicas.values()) {
      if (!r.discoveryReady) notReady++;
      else if (isStale(r, now, config.stalenessMs)) stale++;
      else ready++;
    }
    telemetry.replicas.set({ state: 'ready' }, ready);
    telemetry.replicas.set({ state: 'stale' }, stale);
    telemetry.replicas.set({ state: 'not_ready' }, notReady);
  };
  store.onPublish(updateReplicaGauge);

  return {
    store, telemetry, discovery, weightsStore,
    weights: () => ({ weights: { ...weightsRecord.weights }, profile: weightsRecord.profile }),
    setWeights,
    readiness,
    handle(req, res) {
      route(req, res).catch((e) => {
        log.error('request failed', { path: req.url, error: e as Error });
        if (!res.headersSent) sendJson(res, 500, errorBody('internal error'));
        else res.destroy();
      });
    },
    async start() {
      if (started || closed) return;
      const stored = await weightsStore.load().catch((e: Error) => {
        throw new Error(`cannot read stored weights (${weightsStore.description}): ${e.message}`);
      });
      if (stored) {
        weightsRecord = stored;
        store.setWeights(stored.weights);
        log.info('weights restored', { from: weightsStore.description, weights: stored.weights, profile: stored.profile });
      }
      if (weightsStore instanceof MemoryWeightsStore) log.warn('weights are not persisted (no weights file or ConfigMap configured): changes are lost on restart');
      if (!checkToken) {
        log.warn(config.allowUnauthenticatedWrites
          ? `no API token configured and unauthenticated writes allowed: ANYONE who can connect to ${config.host} can change weights`
          : 'no API token configured: weight changes are refused (set PREFIX_ROUTER_API_TOKEN or --token-file)');
      }
      tickTimer = setInterval(() => {
        const now = Date.now();
        const check = now - lastStaleCheck >= STALENESS_CHECK_MS;
        if (check) lastStaleCheck = now;
        store.tick(check);
      }, config.publishIntervalMs);
      started = true;
      log.info('control plane starting', { discovery: discovery.description, scrapeIntervalMs: config.scrapeIntervalMs, stalenessMs: config.stalenessMs, weightsStore: weightsStore.description });
      await discovery.start(onMembers);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (tickTimer) clearInterval(tickTimer);
      scraper.stop();
      store.releaseWaiters();
      await discovery.stop();
    },
  };
}
