// The cycle's filter: which replicas a request may go to (ready, metrics
// fresh enough, in the request's endpoint subset when it names one, with a
// context long enough for it), and
// what each carries into scoring: its metrics and this gateway's counters
// (in-flight counters' read of every worker VM's row).
import { PluginConfig } from "../config/pluginConfig";
import { Counter, RouterMetrics } from "../metrics";
import { EndpointSubset } from "../request/endpointSubset";
import { WorkCounts, msSincePlacement } from "../state/gatewayBlob";
import { InflightCounters } from "../state/inflightCounters";
import { ReplicaTable } from "../state/replicaTable";
import { Candidates } from "./candidates";
import { decodePriceShare, decodeStepMs } from "./workModel";

@final
export class CandidateFilter {
  private readonly cfg: PluginConfig;
  private readonly metrics: RouterMetrics;
  private readonly inflight: InflightCounters;
  /** Other worker VMs of this gateway, as of the last filter(). */
  otherVms: i32 = 0;
  /**
   * The last filter() found every candidate's context too short for the
   * request: the engine will refuse it wherever it goes, and cache none of it.
   */
  tooLong: bool = false;

  constructor(cfg: PluginConfig, metrics: RouterMetrics, inflight: InflightCounters) {
    this.cfg = cfg;
    this.metrics = metrics;
    this.inflight = inflight;
  }

  /**
   * Fills `c`: ready replicas whose metrics are fresh enough, and their
   * counters and time since the last placement; only those in `subset` when it names one. A subset of
   * which none qualifies is set aside, so the request still goes somewhere
   * (the picker then sends it to the subset's own order). False when there is none.
   * A replica whose max_model_len (state section 17) the request's `tokens`
   * (prompt and max_tokens) pass is left out while another can take it, as
   * vLLM refuses such a request (a fleet of mixed context lengths); where
   * none can, all stay (the engine answers the error) and `tooLong` is set.
   */
  filter(t: ReplicaTable, c: Candidates, withMetrics: bool, nowNs: u64, subset: EndpointSubset | null, tokens: f64 = 0): bool {
    this.tooLong = false;
    // Every worker VM's counters, read once for the passes below.
    this.otherVms = this.inflight.read(t, <u32>(nowNs / 1000000000));
    const perDecode = t.fleetCount > 1 ? this.decodeWorkPerRequest(t, this.inflight.total) : 0;
    const bounded = tokens > 0 && t.maxModelLen.length > 0;
    if (subset !== null && subset.given) {
      if (bounded && this.gather(t, c, withMetrics, nowNs, subset, tokens, perDecode)) return true;
      if (this.gather(t, c, withMetrics, nowNs, subset, 0, perDecode)) {
        this.tooLong = bounded;
        return true;
      }
      this.metrics.add(Counter.SubsetIgnored, 1);
    }
    if (bounded && this.gather(t, c, withMetrics, nowNs, null, tokens, perDecode)) return true;
    if (!this.gather(t, c, withMetrics, nowNs, null, 0, perDecode)) return false;
    this.tooLong = bounded;
    return true;
  }

  /** Fills `c` with the replicas that pass (see filter()), the context bound only where `tokens` > 0; false when none does. */
  private gather(t: ReplicaTable, c: Candidates, withMetrics: bool, nowNs: u64, subset: EndpointSubset | null, tokens: f64, perDecode: f64): bool {
    const stalenessMs = this.cfg.stalenessMs;
    const nowMs = <u32>(nowNs / 1000000);
    const sum = this.inflight.total;
    const wp = this.cfg.work;
    c.fleetGateways = t.fleetCount;
    let n = 0;
    // A replica's metrics age is the control plane's as of the state it sent;
    // time since then is covered by the router's metricsTrusted (the control
    // plane answers every long poll, 304 included, while it is alive).
    for (let i = 0; i < t.n; i++) {
      if (!unchecked(t.ready[i])) continue;
      if (withMetrics && unchecked(t.metricsKnown[i]) && unchecked(t.metricsAgeMs[i]) > stalenessMs) continue;
      if (subset !== null && !subset.has(unchecked(t.addressHash[i]))) continue;
      if (tokens > 0 && t.maxModelLen.length > 0 && unchecked(t.maxModelLen[i]) > 0 && tokens > <f64>unchecked(t.maxModelLen[i])) continue;
      unchecked(c.replica[n] = i);
      unchecked(c.waiting[n] = unchecked(t.waiting[i]));
      unchecked(c.kvUsage[n] = unchecked(t.kvUsage[i]));
      unchecked(c.running[n] = unchecked(t.running[i]));
      unchecked(c.kvCapacityTokens[n] = <f64>unchecked(t.kvCapacityTokens[i]));
      const inflight = unchecked(sum.inflight[i]);
      unchecked(c.inflight[n] = inflight);
      unchecked(c.decoding[n] = unchecked(sum.decoding[i]));
      const own = msSincePlacement(nowMs, unchecked(sum.placedMs[i]));
      const theirs = msSincePlacement(nowMs, unchecked(t.otherGatewaysPlacedMs[i]));
      unchecked(c.sincePlacedMs[n] = own);
      unchecked(c.sinceAnyPlacedMs[n] = theirs < own ? theirs : own);
      unchecked(c.written[n] = unchecked(sum.written[i]) + unchecked(t.otherGatewaysWritten[i]));
      // This gateway's own requests are counted as they start and end; the
      // engine queue (from metrics, up to a scrape old) adds what others sent
      // and what waits. Metrics' running count is left out: it lags the
      // in-flight count and would count finished requests again.
      // Other gateways' decoding requests count too, estimated from their decode
      // work (the control plane reports work, not counts): without them each
      // gateway of a fleet of g sees a g-th of a replica's batch and the guard
      // lets g times as many pile up.
      const others = perDecode > 0 ? Math.round(unchecked(t.otherGatewaysDecodeWork[i]) / perDecode) : 0;
      // A prompt is in flight until its first token, but the engine has been
      // prefilling it since it arrived: a 40k-token document sent 5 s ago is
      // half done, and counting it whole sends the next turns of a session
      // off the replica holding their history. This gateway's queue drains
      // from its anchor (the last send or first token there) at the prefill
      // rate with the replica's decode batch sharing each step, keeping one
      // engine step (a chunk) unseen, one per gateway of a fleet: the others'
      // sends since their last report may be ahead of ours. Where other
      // gateways have prompts queued there, the engine divides its steps
      // between the queues in an order no gateway knows, so none drains;
      // theirs add whole, as the control plane last reported them.
      const otherQueued = unchecked(t.otherGatewaysQueuedTokens[i]);
      const ownQueued = unchecked(sum.queued[i]);
      const msPerToken = wp.prefillTimePerTokenMs + decodeStepMs(wp, unchecked(sum.decoding[i]) + others) / wp.chunkTokens;
      const ahead = otherQueued > 0 ? ownQueued : this.inflight.remaining(i, ownQueued, nowMs, msPerToken, wp.chunkTokens * <f64>t.fleetCount);
      unchecked(c.gatewayQueued[n] = ahead);
      unchecked(c.queued[n] = ahead + otherQueued);
      // Decode work is counted at the saturated batch's price and priced here at this replica's batch (workModel.ts).
      const decodeWork = unchecked(sum.decodeWork[i]) + unchecked(t.otherGatewaysDecodeWork[i]);
      unchecked(c.decodeWork[n] = decodeWork * decodePriceShare(wp, unchecked(sum.decoding[i]) + others, unchecked(c.kvUsage[n])));
      unchecked(c.load[n] = inflight + others + (withMetrics ? unchecked(t.waiting[i]) : 0));
      n++;
    }
    c.n = n;
    return n > 0;
  }

  /** Decode work of one of this gateway's decoding requests on average; the configured default while none decodes. */
  private decodeWorkPerRequest(t: ReplicaTable, sum: WorkCounts): f64 {
    let requests: f64 = 0, work: f64 = 0;
    for (let i = 0; i < t.n; i++) {
      requests += unchecked(sum.decoding[i]);
      work += unchecked(sum.decodeWork[i]);
    }
    const wp = this.cfg.work;
    return requests > 0 && work > 0 ? work / requests : wp.decodeTokenCost * wp.defaultMaxTokens;
  }
}
