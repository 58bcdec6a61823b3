// The root context of one worker VM: configuration, ticks, the control-plane
// long poll and the state it brings, and the routing core. It hands each
// stream what it needs (the router and the paused-stream list); streams stay
// thin.
import {
  BufferType, HeaderMap, HostBytes, LogLevel, WasmResult, getBuffer, getHeader, httpCall,
  log, nowNs, serializePairs, setTickPeriodMs,
} from "./abi/hostCalls";
import { PluginConfig, configError, parseConfig } from "./config/pluginConfig";
import {
  CONFIG_REJECTED, EXPECTED_CONFIG_SHAPE, POLL_CONTENT_REFUSED, POLL_FAILED, POLL_FLEET_REFUSED, POLL_NOT_STARTED, STATE_FROM_CONTROL_PLANE, STATE_REJECTED,
} from "./errors";
import { HttpContext } from "./httpContext";
import { Counter, Gauge, RouterMetrics } from "./metrics";
import { PausedStreams } from "./pausedStreams";
import { HeldStreams } from "./admission/heldStreams";
import { configureTraitHeaders } from "./request/requestTraits";
import { Router } from "./router";
import { FleetReport, REPORT_CONTENT_TYPE } from "./state/fleetReport";
import { GatewayBlob } from "./state/gatewayBlob";
import { ReplicaTable } from "./state/replicaTable";
import { ReportWake } from "./state/reportWake";
import { StateDelivery } from "./state/stateDelivery";
import { stateError } from "./state/stateWire";
import { allocateVmId, holdLease, releaseLease } from "./state/workerVms";
import { CharCode } from "./charCode";

/** Ticks drive the lease, heartbeats and state pick-up; 100 ms keeps each well inside its bound. */
const TICK_MS: u32 = 100;
/**
 * The worker VM that polls for a gateway of a fleet (more than one live
 * gateway, state section 3) reports a placement the moment any worker VM
 * makes it (state/reportWake.ts): the other gateways hear of it within a
 * round trip and the control plane's fleet publish interval, a few
 * milliseconds, so that they do not all place on the replica that looked
 * idle to each. While the gateway has requests in flight or routed one since
 * the last full tick, it also ticks this often to report changed work (after
 * WORK_REPORT_NS) and what a wake missed; idle, every TICK_MS. The rest of
 * the tick's work still runs every TICK_MS.
 */
const REPORT_TICK_MS: u32 = 10;
/** A report with changed work and no placement waits this long after the last report: work alone is news the fleet can hear a little later. */
const WORK_REPORT_NS: u64 = 20000000;
/** A poller that stops renewing (its VM died) is replaced after this long. */
const LEASE_TTL_NS: u64 = 1000000000;
/** In-flight rows are refreshed this often (rows live ROW_TTL_S = 10 s without one). */
const HEARTBEAT_NS: u64 = 1000000000;
/** Extra time the host gives a long poll beyond what the control plane may hold it. */
const POLL_TIMEOUT_SLACK_MS: u32 = 5000;

const STATUS = String.UTF8.encode(":status");
const STATE_ACCEPT = "application/vnd.prefix-router.state.v1";

@final
export class RootContext {
  readonly id: u32;
  cfg: PluginConfig | null = null;
  router: Router | null = null;
  private delivery: StateDelivery | null = null;
  readonly metrics: RouterMetrics = new RouterMetrics();
  /** Streams whose headers wait for their body. */
  readonly paused: PausedStreams<HttpContext> = new PausedStreams<HttpContext>();
  /** Requests admission holds while every replica is saturated. */
  readonly held: HeldStreams<HttpContext> = new HeldStreams<HttpContext>(this.metrics);
  vmId: u32 = 0;
  private pollToken: u32 = 0;
  private nextPollAtNs: u64 = 0;
  private lastHeartbeatNs: u64 = 0;
  /** Control-plane age counts from here until the control plane first answers. */
  private configuredAtNs: u64 = 0;
  private failing: bool = false;
  /** This gateway's part in the fleet exchange (plugin/STATE_FORMAT.md, "Gateway fleet"); null without a control plane. */
  private fleet: FleetReport | null = null;
  /** Polls carry a fleet report (POST) until the control plane refuses them (405: it predates the exchange). */
  private fleetPost: bool = true;
  /** The report sent alone while the poll is held; 0: none outstanding. */
  private reportToken: u32 = 0;
  /** Wakes the poller as placements are made (the gateway's queue; this VM registers it while it polls). */
  private readonly wake: ReportWake = new ReportWake();
  /** A wake came while a report was in flight: report again when it is answered. */
  private reportAgain: bool = false;
  /** Ticking every REPORT_TICK_MS (the poller of a gateway of a fleet), and how many such ticks since the last full one. */
  private reportTicking: bool = false;
  private reportTicks: u32 = 0;
  /** This VM held the poll lease at its last full tick. */
  private polling: bool = false;
  /** The gateway had requests in flight, or routed one, at this VM's last full tick; and its request count then. */
  private busy: bool = false;
  private routedAt: u32 = 0;
  /** When the last report (alone or with a poll) was sent. */
  private reportedAtNs: u64 = 0;
  private readonly bytes: HostBytes = new HostBytes();

  constructor(id: u32) {
    this.id = id;
  }

  onConfigure(size: u32): bool {
    const raw = new Uint8Array(<i32>size);
    if (size > 0) {
      if (getBuffer(BufferType.PluginConfiguration, 0, size, this.bytes) == WasmResult.Ok) {
        const n = this.bytes.len < <usize>size ? <i32>this.bytes.len : <i32>size;
        memory.copy(raw.dataStart, this.bytes.ptr, <usize>n);
      }
      this.bytes.free();
    }
    const cfg = parseConfig(raw);
    if (cfg === null) {
      log(LogLevel.Error, CONFIG_REJECTED + configError + ". Expected: " + EXPECTED_CONFIG_SHAPE);
      return false;
    }
    this.cfg = cfg;
    this.configuredAtNs = nowNs();
    configureTraitHeaders(cfg.session.enabled ? cfg.session.header : "", cfg.admission.enabled ? cfg.admission : null, cfg.subsetHeader);
    this.metrics.define();
    // Without ticks nothing would flush batched counts: hand each one over at once.
    this.metrics.immediate = !cfg.sharedState;
    if (cfg.sharedState) this.vmId = allocateVmId();
    const blob = new GatewayBlob(cfg.sharedState && this.vmId != 0);
    const delivery = new StateDelivery(blob, this.metrics);
    this.delivery = delivery;
    this.router = new Router(cfg, this.metrics, this.vmId, blob, delivery);
    if (cfg.hasControlPlane && cfg.sharedState && this.vmId != 0) {
      this.fleet = new FleetReport();
      this.router!.reportWake = this.wake;
    }
    if (cfg.sharedState) {
      setTickPeriodMs(TICK_MS);
      this.router!.refresh();
    }
    log(LogLevel.Info, "prefix_router: configured (" + cfg.replicas.length.toString() + " static replicas, control plane " +
      (cfg.hasControlPlane ? "cluster '" + cfg.cluster + "'" : "none") + ", worker " + this.vmId.toString() + ")");
    return true;
  }

  onTick(): void {
    const router = this.router;
    const cfg = this.cfg;
    if (router === null || cfg === null) return;
    const now = nowNs();
    if (this.fleet !== null) {
      const fleet = router.replicas.fleetCount > 1;
      router.placementsAtOnce = fleet && !this.polling;
      const fast = fleet && this.polling && this.busy;
      if (fast != this.reportTicking) this.setReportTicking(fast);
      if (fast) {
        this.report(cfg, router, now);
        if (++this.reportTicks < TICK_MS / REPORT_TICK_MS) return;
        this.reportTicks = 0;
      }
    }
    router.sawTime(now);
    this.paused.tick(this.id);
    if (this.held.count > 0) this.held.tick(this.id, now, router.admissionRoom(now));
    router.refresh();
    this.metrics.set(Gauge.StateVersion, router.stateVersion);
    if (cfg.hasControlPlane) {
      // Only a control plane carries placements to other gateways.
      router.flushPlacements();
      const heard = router.controlPlaneHeardNs;
      const since = heard > 0 ? heard : this.configuredAtNs;
      this.metrics.set(Gauge.ControlPlaneAgeMs, now > since ? (now - since) / 1000000 : 0);
    }
    this.metrics.flush();
    if (now - this.lastHeartbeatNs >= HEARTBEAT_NS) {
      this.lastHeartbeatNs = now;
      router.heartbeat(now);
    }
    this.polling = cfg.hasControlPlane && this.vmId != 0 && holdLease(this.vmId, now, LEASE_TTL_NS);
    if (this.fleet !== null && this.polling != this.wake.registered) {
      if (this.polling) this.wake.register();
      else this.wake.unregistered();
    }
    if (this.polling && this.fleet !== null && router.replicas.fleetCount > 1) this.busy = this.gatewayBusy(router, now);
    if (this.polling && this.pollToken == 0 && now >= this.nextPollAtNs) this.startPoll(cfg, router, now);
  }

  private setReportTicking(fast: bool): void {
    this.reportTicking = fast;
    this.reportTicks = 0;
    setTickPeriodMs(fast ? REPORT_TICK_MS : TICK_MS);
  }

  /** A worker VM placed a prefix (state/reportWake.ts): the poller reports it now, and ticks as a busy gateway's poller. */
  onQueueReady(token: u32): void {
    const router = this.router;
    const cfg = this.cfg;
    if (router === null || cfg === null || !this.wake.owns(token)) return;
    this.wake.drain();
    if (this.fleet === null || !this.polling || router.replicas.fleetCount <= 1) return;
    if (!this.reportTicking) {
      this.busy = true;
      this.setReportTicking(true);
    }
    if (this.reportToken != 0) this.reportAgain = true;
    else this.report(cfg, router, nowNs());
  }

  private startPoll(cfg: PluginConfig, router: Router, now: u64): void {
    // An open poll is silence; waiting at most half the staleness bound tells a
    // quiet control plane (it answers 304 in time) from a dead one.
    const half = cfg.stalenessMs / 2;
    const waitMs = cfg.longPollMs < half ? cfg.longPollMs : half;
    const fleet = this.fleet;
    if (fleet !== null && this.fleetPost) {
      const work = router.gatewayWork(now);
      fleet.build(router.replicas, this.drainPlacements(router, fleet), work);
      this.reportedAtNs = now;
      this.pollToken = httpCall(cfg.cluster, this.pollHeaders(cfg, router, waitMs, true), waitMs + POLL_TIMEOUT_SLACK_MS, fleet.ptr, fleet.len);
    } else {
      this.pollToken = httpCall(cfg.cluster, this.pollHeaders(cfg, router, waitMs, false), waitMs + POLL_TIMEOUT_SLACK_MS);
    }
    if (this.pollToken == 0) {
      this.pollFailed(cfg, now, POLL_NOT_STARTED + cfg.cluster);
    }
  }

  /**
   * While this VM's poll is held, sends the fleet report alone (a poll that
   * does not wait) with the gateway's new placements, or with its changed
   * work WORK_REPORT_NS after the last report; one at a time. Its answer is
   * handled like the poll's.
   */
  private report(cfg: PluginConfig, router: Router, now: u64): void {
    const fleet = this.fleet!;
    if (this.pollToken == 0 || this.reportToken != 0 || !this.fleetPost) {
      router.flushPlacements();
      return;
    }
    const placed = this.drainPlacements(router, fleet);
    if (placed == 0 && now - this.reportedAtNs < WORK_REPORT_NS) return;
    if (!fleet.build(router.replicas, placed, router.gatewayWork(now))) return;
    this.reportedAtNs = now;
    this.reportToken = httpCall(cfg.cluster, this.pollHeaders(cfg, router, 0, true), POLL_TIMEOUT_SLACK_MS, fleet.ptr, fleet.len);
  }

  private pollHeaders(cfg: PluginConfig, router: Router, waitMs: u32, post: bool): ArrayBuffer {
    const path = cfg.path + (cfg.path.includes("?") ? "&" : "?") + "after=" + router.stateVersion.toString() + "&waitMs=" + waitMs.toString();
    const pairs = new StaticArray<ArrayBuffer>(post ? 10 : 8);
    pairs[0] = String.UTF8.encode(":method");
    pairs[1] = String.UTF8.encode(post ? "POST" : "GET");
    pairs[2] = String.UTF8.encode(":path");
    pairs[3] = String.UTF8.encode(path);
    pairs[4] = String.UTF8.encode(":authority");
    pairs[5] = String.UTF8.encode(cfg.authority);
    pairs[6] = String.UTF8.encode("accept");
    pairs[7] = String.UTF8.encode(STATE_ACCEPT);
    if (post) {
      pairs[8] = String.UTF8.encode("content-type");
      pairs[9] = String.UTF8.encode(REPORT_CONTENT_TYPE);
    }
    return serializePairs(pairs);
  }

  private pollFailed(cfg: PluginConfig, now: u64, why: string): void {
    this.nextPollAtNs = now + <u64>cfg.retryMs * 1000000;
    this.metrics.add(Counter.PollFailures, 1);
    // Log when polling starts failing, not at every retry.
    if (!this.failing) log(LogLevel.Warn, why + "; routing on the last state, retrying every " + cfg.retryMs.toString() + " ms");
    this.failing = true;
  }

  onHttpCallResponse(token: u32, nheaders: u32, bodySize: u32): void {
    const router = this.router;
    const cfg = this.cfg;
    if (router === null || cfg === null) return;
    // The report sent alone is answered like a poll that did not wait, but starts none.
    const polled = token == this.pollToken;
    if (polled) this.pollToken = 0;
    else if (token == this.reportToken) this.reportToken = 0;
    else return;
    const reportAgain = !polled && this.reportAgain;
    if (!polled) this.reportAgain = false;
    const now = nowNs();
    if (nheaders == 0) {
      this.pollFailed(cfg, now, POLL_FAILED + "no response (connection failed or timed out)");
      return;
    }
    let status = 0;
    if (getHeader(HeaderMap.HttpCallResponseHeaders, STATUS, this.bytes) == WasmResult.Ok) {
      for (let i: usize = 0; i < this.bytes.len; i++) {
        const c = <i32>load<u8>(this.bytes.ptr + i);
        if (c < CharCode._0 || c > CharCode._9) break;
        status = status * 10 + (c - CharCode._0);
      }
    }
    this.bytes.free();
    const delivery = this.delivery!;
    if (status == 304) {
      delivery.answered(now);
      this.recovered();
    } else if (status == 200) {
      if (getBuffer(BufferType.HttpCallResponseBody, 0, bodySize, this.bytes) != WasmResult.Ok) {
        this.bytes.free();
        this.pollFailed(cfg, now, POLL_FAILED + "could not read the response body");
        return;
      }
      const t = delivery.received(this.bytes.ptr, <i32>this.bytes.len, now, router.replicas);
      this.bytes.free();
      const got = delivery.lastReceived;
      if (got !== null) this.learn(router, got);
      if (t !== null) router.adopt(t);
      else if (delivery.superseded) router.refresh();
      else {
        this.metrics.add(Counter.StateRejected, 1);
        log(LogLevel.Error, STATE_REJECTED + stateError + "; keeping state version " + router.stateVersion.toString());
        this.nextPollAtNs = now + <u64>cfg.retryMs * 1000000;
        return;
      }
      if (this.failing) log(LogLevel.Info, STATE_FROM_CONTROL_PLANE + router.stateVersion.toString() + " received");
      this.recovered();
    } else if (status == 405 && this.fleet !== null && this.fleetPost) {
      // A control plane from before the fleet exchange: poll as it expects, at once.
      this.fleetPost = false;
      log(LogLevel.Warn, POLL_FLEET_REFUSED);
    } else if (status == 400 && this.fleet !== null && this.fleetPost && this.fleet!.withContent) {
      // A control plane from before the content records refuses report format 2: report as it expects, at once.
      this.fleet!.withContent = false;
      log(LogLevel.Warn, POLL_CONTENT_REFUSED);
    } else {
      this.pollFailed(cfg, now, POLL_FAILED + "HTTP status " + status.toString());
      return;
    }
    // Long poll: ask again at once, so the next change is pushed, not waited for.
    if (polled && this.vmId != 0 && holdLease(this.vmId, now, LEASE_TTL_NS)) this.startPoll(cfg, router, now);
    // Placements made while the report was in flight go now, not at the next tick.
    else if (reportAgain) this.report(cfg, router, now);
  }

  /** Whether the gateway has requests in flight or routed one since the last look (its worker VMs' rows). */
  private gatewayBusy(router: Router, now: u64): bool {
    const work = router.gatewayWork(now);
    const routed = work.routed;
    let busy = routed != this.routedAt;
    this.routedAt = routed;
    const inflight = work.inflight;
    for (let i = 0, n = router.replicas.n; i < n && !busy; i++) busy = unchecked(inflight[i]) > 0;
    return busy;
  }

  /** Moves this VM's new placements from the prefix locator into the report's own* arrays; returns how many. */
  private drainPlacements(router: Router, fleet: FleetReport): i32 {
    return router.placements.takePlacements(fleet.ownHashes, fleet.ownReplicas, fleet.ownDepths);
  }

  /** The polling VM takes in what the other gateways placed (state section 1) and notes how far it has seen. */
  private learn(router: Router, t: ReplicaTable): void {
    const fleet = this.fleet;
    if (fleet === null || t.placementsThrough == 0) return;
    const locator = router.placements;
    locator.sawTime(<u32>(nowNs() / 1000000000));
    const n = t.learnedHash.length;
    for (let i = 0; i < n; i++) {
      locator.learnPlacement(unchecked(t.learnedHash[i]), unchecked(t.addressHash[unchecked(t.learnedReplica[i])]), unchecked(t.learnedDepth[i]));
    }
    fleet.learned(t.placementsThrough);
  }

  private recovered(): void {
    if (this.failing) log(LogLevel.Info, "prefix_router: control plane reachable again");
    this.failing = false;
  }

  onDone(): void {
    if (this.vmId != 0) releaseLease(this.vmId);
  }
}
