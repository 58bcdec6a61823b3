// The control plane as a function of its configuration and dependencies:
// discovery -> scraping -> versioned state -> HTTP API. `handle(req, res)` is
// the whole HTTP surface, one route per file in routes/; server.ts only binds
// it to a socket, so tests call it without one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { makeWriteGuard } from './auth.js';
import { effectiveMappings, type ControlPlaneConfig } from './config.js';
import { KubernetesDiscovery, StaticDiscovery, type Discovery } from './discovery.js';
import { FleetExchange } from './fleetExchange.js';
import { dispatch, errorBody, sendJson } from './http.js';
import { createLogger, type Logger } from './log.js';
import { healthzRoute } from './routes/healthz.js';
import { metricsRoute } from './routes/metrics.js';
import { observabilityRoute } from './routes/observability.js';
import { encodeObservability, OBSERVABILITY_TAG, type ObservabilitySettings } from './observabilitySection.js';
import { readyzRoute } from './routes/readyz.js';
import { replicasRoute } from './routes/replicas.js';
import { stateRoute, statePollCall } from './routes/state.js';
import { weightProfilesRoute } from './routes/weightProfiles.js';
import { weightsRoute } from './routes/weights.js';
import { ModelInfoPoller } from './modelInfo.js';
import { Scraper, type ScrapeOutcome } from './scraper.js';
import { maxClockStepMs, StateStore, type Member } from './stateStore.js';
import type { RouterState } from './stateWire.js';
import { Telemetry } from './telemetry.js';
import {
  applyWeightsUpdate, ConfigMapWeightsStore, FileWeightsStore, MemoryWeightsStore, profileOf, WeightsInputError,
  type WeightsRecord, type WeightsStore,
} from './weights.js';

export { WeightsInputError };

/** Staleness is re-checked this often even when no scrape changed anything (more often under a tight bound: maxClockStepMs). */
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

export interface ControlPlane {
  handle(req: IncomingMessage, res: ServerResponse): void;
  start(): Promise<void>;
  close(): Promise<void>;
  readonly store: StateStore;
  readonly fleet: FleetExchange;
  readonly telemetry: Telemetry;
  readonly discovery: Discovery;
  readonly weightsStore: WeightsStore;
  /** GET/POST /v1/state as a proxy_http_call cluster handler, for a gateway in this process (routes/state.ts). */
  readonly stateCall: ReturnType<typeof statePollCall>;
  weights(): WeightsRecord;
  observability(): ObservabilitySettings;
  /** Same rules as PUT /v1/observability (no token needed: in-process callers are trusted); throws on bad settings. */
  setObservability(s: ObservabilitySettings): void;
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
  const fleet = new FleetExchange({ hashAddress: await addressHasher(), onNews: () => schedulePublish() });
  fleet.setReplicas(store.state.replicas);
  let weightsRecord: WeightsRecord = { weights: store.weights, profile: profileOf(store.weights) };
  const token = deps.token ?? null;
  let observability: ObservabilitySettings = { decisionLogEvery: config.decisionLogEvery ?? 0 };
  const setObservability = (s: ObservabilitySettings) => {
    const section = encodeObservability(s); // throws on settings the filter would refuse
    observability = { ...s };
    store.setSection(OBSERVABILITY_TAG, section === null ? null : section.bytes);
  };
  if (observability.decisionLogEvery !== 0) setObservability(observability);

  // Each replica's context length, read beside its scrapes (modelInfo.ts).
  const modelInfo = new ModelInfoPoller({
    timeoutMs: config.scrapeTimeoutMs,
    onResult: (address, maxModelLen) => store.recordModelInfo(address, maxModelLen),
    onError: (address, error) => log.debug('replica models not read', { replica: address, error }),
  });
  // Log scrape failures when a replica starts failing and when it recovers, not at every scrape.
  const failing = new Set<string>();
  const scraper = new Scraper({
    intervalMs: config.scrapeIntervalMs, timeoutMs: config.scrapeTimeoutMs, metricsPath: config.metricsPath, nameFilter: config.metricsNameFilter,
    mappings: effectiveMappings(config),
    onResult(address, outcome) {
      telemetry.scrapeSeconds.observe({ replica: address }, outcome.durationMs / 1000);
      if (outcome.ok) {
        store.recordSuccess(address, outcome.metrics, outcome.lora);
        modelInfo.scraped(address);
        if (failing.delete(address)) log.info('replica scrapes recovered', { replica: address });
      } else {
        telemetry.scrapeErrors.inc({ replica: address, reason: outcome.reason });
        store.recordFailure(address, outcome.error, outcome.reason);
        modelInfo.failed(address);
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
    modelInfo.retain(new Set(next.keys()));
    scraper.setTargets(members.filter((m) => m.ready).map((m) => m.address));
    store.publish();
  };

  store.onPublish((s: RouterState) => {
    telemetry.stateVersion.set(Number(s.version));
    fleet.setReplicas(s.replicas);
  });

  let started = false;
  let closed = false;
  // Publishing runs when there may be something to publish, not on a fixed beat: a scrape that moved
  // what the filters route on sets the publish timer, which runs at most every publishIntervalMs (so the
  // changes inside one interval make one version); the fleet's news sets it too, and goes out
  // PLACEMENT_PUBLISH_MS after the last fleet publish when it holds a placement, WORK_PUBLISH_MS when it
  // holds changed work alone (fleetExchange.ts). Staleness, and gateways that stopped polling, are looked
  // at on a timer of their own. A fleet whose engines sit still wakes the control plane only for its
  // scrapes and the staleness checks.
  let publishTimer: NodeJS.Timeout | null = null;
  let stalenessTimer: NodeJS.Timeout | null = null;
  let lastPublishTick = -Infinity;
  let lastStaleCheck = 0;
  let lastFleetPublish = 0;
  const publishTick = (checkStaleness: boolean) => {
    const now = Date.now();
    if (checkStaleness) { lastStaleCheck = now; fleet.expire(); }
    if (now - lastFleetPublish >= fleet.newsDelayMs && fleet.takeChanged()) {
      lastFleetPublish = lastPublishTick = now;
      store.publish(true);
    } else if (checkStaleness || now - lastPublishTick >= config.publishIntervalMs) {
      lastPublishTick = now;
      store.tick(checkStaleness);
    }
    schedulePublish();
  };
  const onPublishTimer = () => {
    publishTimer = null;
    publishTick(Date.now() - lastStaleCheck >= STALENESS_CHECK_MS);
  };
  function schedulePublish(): void {
    if (publishTimer !== null || !started || closed) return;
    const at = Math.min(store.isDirty ? lastPublishTick + config.publishIntervalMs : Infinity, lastFleetPublish + fleet.newsDelayMs);
    if (at === Infinity) return;
    publishTimer = setTimeout(onPublishTimer, Math.max(0, at - Date.now()));
  }
  store.onDirty(schedulePublish);

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

  const updateReplicaGauge = () => {
    let ready = 0, stale = 0, notReady = 0;
    for (const r of store.replicas.values()) {
      if (!r.discoveryReady) notReady++;
      else if (store.isStale(r)) stale++;
      else ready++;
    }
    telemetry.replicas.set({ state: 'ready' }, ready);
    telemetry.replicas.set({ state: 'stale' }, stale);
    telemetry.replicas.set({ state: 'not_ready' }, notReady);
  };
  store.onPublish(updateReplicaGauge);

  const mayWrite = makeWriteGuard({ token, allowUnauthenticatedWrites: config.allowUnauthenticatedWrites, log });
  const stateDeps = { store, fleet, telemetry, maxLongPollMs: config.maxLongPollMs };
  const route = dispatch([
    stateRoute(stateDeps),
    replicasRoute({ store, discovery }),
    weightsRoute({
      store, weightsStore, weights: () => weightsRecord, setWeights, log, maxBodyBytes: config.maxBodyBytes,
      mayWrite,
    }),
    weightProfilesRoute(),
    observabilityRoute({
      store, settings: () => ({ ...observability }), setSettings: setObservability, log, maxBodyBytes: config.maxBodyBytes,
      mayWrite,
    }),
    healthzRoute(),
    readyzRoute(readiness),
    metricsRoute(telemetry, () => {
      telemetry.longPollsWaiting.set(store.waiting);
      telemetry.decisionLogEvery.set(observability.decisionLogEvery);
      telemetry.observeStore(store, Date.now());
      telemetry.fleetPlacements.set(fleet.placementCount);
      telemetry.fleetGateways.set(fleet.gatewayCount);
      updateReplicaGauge();
    }),
  ]);

  return {
    store, fleet, telemetry, discovery, weightsStore,
    stateCall: statePollCall(stateDeps),
    weights: () => ({ weights: { ...weightsRecord.weights }, profile: weightsRecord.profile }),
    setWeights,
    observability: () => ({ ...observability }),
    setObservability,
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
      if (!token) {
        log.warn(config.allowUnauthenticatedWrites
          ? `no API token configured and unauthenticated writes allowed: ANYONE who can connect to ${config.host} can change weights`
          : 'no API token configured: weight changes are refused (set PREFIX_ROUTER_API_TOKEN or --token-file)');
      }
      stalenessTimer = setInterval(() => publishTick(true), Math.min(STALENESS_CHECK_MS, maxClockStepMs(config.stalenessMs)));
      started = true;
      schedulePublish();
      log.info('control plane starting', { discovery: discovery.description, scrapeIntervalMs: config.scrapeIntervalMs, stalenessMs: config.stalenessMs, weightsStore: weightsStore.description });
      await discovery.start(onMembers);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (stalenessTimer) clearInterval(stalenessTimer);
      if (publishTimer) clearTimeout(publishTimer);
      scraper.stop();
      modelInfo.stop();
      store.releaseWaiters();
      await discovery.stop();
    },
  };
}

/** xxHash64 (seed 0) of an address's bytes: how the filter names a replica in its fleet report. */
export async function addressHasher(): Promise<(address: string) => bigint> {
  const { default: xxhash } = await import('xxhash-wasm');
  const { h64 } = await xxhash();
  return (address) => h64(address, 0n);
}
