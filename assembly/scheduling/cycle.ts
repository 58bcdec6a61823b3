// The scheduling cycle's extension points and the plugins at each, in the
// order they run. One place to read what a request passes through and where
// a new concern plugs in; each plugin owns its state and its hooks, and
// router.ts only drives the points in order.
//
//   point            plugins, in order
//   prepare          prefix locator: hash the prompt (as the body arrives)
//   begin            decision records: sample
//   filter           candidate filter (ready, fresh, endpoint subset, context length; load from the in-flight counters)
//   admit            saturation: admission holds a request every candidate is saturated for
//   match            prefix locator: held blocks, cache reuse, rendezvous key
//   predict          work model: each candidate's predicted cost, the work guard
//   score            weighted scorers (prefix, queue, KV, in flight, work), LoRA affinity
//   pick             picker (bounded load, work guard, near-equal orders)
//   post-pick        session affinity, decision records: the guard
//   commit           decision, prefix locator: record (not where the engine refuses it), decision records: emit,
//                    in-flight counters: count, metrics
//   responseStarted  in-flight counters: queued becomes decoding
//   finish           in-flight counters: the request leaves
//   install          prefix locator: slots and quotas, in-flight counters: remap, metrics: per-replica counters
//
// The plugins are concrete classes called in a fixed order: no dispatch, and
// the request path allocates nothing (one preallocated cycle per worker VM).
import { PluginConfig } from "../config/pluginConfig";
import { decisions } from "../decisionRecord";
import { Counter, RouterMetrics } from "../metrics";
import { PrefixLocator } from "../prefix/prefixLocator";
import { Saturation } from "../admission/saturation";
import { GatewayBlob } from "../state/gatewayBlob";
import { InflightCounters } from "../state/inflightCounters";
import { ReplicaTable } from "../state/replicaTable";
import { CandidateFilter } from "./candidateFilter";
import { Candidates } from "./candidates";
import { Decision } from "./decision";
import { LoraAffinity } from "./loraAffinity";
import { Pick, pick, pickBand, runnerUp } from "./picker";
import { SessionAffinity } from "./sessionAffinity";
import { weightedScore } from "./weightedScore";
import { WorkPrediction, promptTokensOf } from "./workModel";
import { maxTokensAsked } from "../request/promptHasher";

@final
export class SchedulingCycle {
  private readonly cfg: PluginConfig;
  private readonly metrics: RouterMetrics;
  readonly prefix: PrefixLocator;
  readonly inflight: InflightCounters;
  private readonly candidates: CandidateFilter;
  private readonly saturation: Saturation;
  private readonly work: WorkPrediction = new WorkPrediction();
  private readonly lora: LoraAffinity;
  private readonly session: SessionAffinity;

  // The request being scheduled: what begin() and the points before each point found.
  private readonly cands: Candidates = new Candidates();
  private readonly picked: Pick = new Pick();
  private table: ReplicaTable = new ReplicaTable();
  private hasPrompt: bool = false;
  private withMetrics: bool = false;
  private nowNs: u64 = 0;
  /** Session affinity chose the replica. */
  private bySession: bool = false;

  constructor(cfg: PluginConfig, metrics: RouterMetrics, vmId: u32, blob: GatewayBlob) {
    this.cfg = cfg;
    this.metrics = metrics;
    this.prefix = new PrefixLocator(cfg, metrics, blob.shared ? vmId : 0);
    const inflight = new InflightCounters(blob, vmId);
    this.inflight = inflight;
    this.saturation = new Saturation(cfg.saturation);
    this.lora = new LoraAffinity(cfg.lora, metrics);
    this.session = new SessionAffinity(cfg.session, metrics);
    this.candidates = new CandidateFilter(cfg, metrics, inflight);
  }

  /** The routed replica set changes from `old` to `next`. */
  install(old: ReplicaTable, next: ReplicaTable, from: StaticArray<i32>): void {
    this.prefix.resize(old, next, from);
    this.inflight.remap(old, next, from);
    this.metrics.defineReplicas(next);
  }

  /** Hashes the prompt of the JSON body [body, body+len) (`cut`: more is still arriving); false: no prompt. */
  @inline prepare(body: usize, len: usize, cut: bool): bool {
    return this.prefix.hash(body, len, cut);
  }

  /** Starts scheduling a request on `t` (`hasPrompt`: prepare() found one; `withMetrics`: the replicas' metrics can be scored). */
  begin(t: ReplicaTable, hasPrompt: bool, withMetrics: bool, nowNs: u64): void {
    this.table = t;
    this.hasPrompt = hasPrompt;
    this.withMetrics = withMetrics;
    this.nowNs = nowNs;
    decisions.sample(t.decisionLogEvery);
    if (!withMetrics && t.fromControlPlane) this.metrics.add(Counter.StaleState, 1);
  }

  /** Candidates: false when the request has none. */
  filter(d: Decision): bool {
    // The request's tokens as vLLM bounds them by max_model_len: its prompt and the max_tokens it asks for.
    const tokens = this.hasPrompt ? promptTokensOf(this.prefix.textBytes) + <f64>(maxTokensAsked > 0 ? maxTokensAsked : 0) : 0;
    if (this.candidates.filter(this.table, this.cands, this.withMetrics, this.nowNs, d.traits.subset, tokens)) return true;
    this.metrics.add(Counter.NoReplica, 1);
    return false;
  }

  /** Admission: false (the decision marked saturated) when every candidate is past the saturation bound and admission holds the request. */
  admit(d: Decision): bool {
    if (this.saturation.admits(this.cands, this.withMetrics, d.traits.inference && this.cfg.admission.enabled)) return true;
    d.saturated = true;
    return false;
  }

  /** Match: how much of the prompt each candidate holds. */
  match(): void {
    const nowS = <u32>(this.nowNs / 1000000000);
    this.prefix.matchRequest(this.table, this.cands, this.hasPrompt, this.candidates.otherVms > 0, nowS, this.inflight.total.routed);
  }

  /** Predict: what the request would cost each candidate, and the work guard's bound. */
  predict(): void {
    const cfg = this.cfg;
    const p = this.prefix;
    const textBytes = this.hasPrompt ? p.textBytes : 0;
    this.work.predict(this.cands, cfg.work, this.hasPrompt, textBytes, p.blockBytes, cfg.loadBoundEpsilon, this.table.weights.work > 0, this.withMetrics);
  }

  /** Score: the weighted sum, then the affinities that add to it. */
  score(d: Decision): void {
    const c = this.cands;
    const w = this.table.weights;
    // Where the prompt's content goes is prefix affinity's concern: with its weight 0 neither kind of prompt is placed by content.
    const byContent = this.hasPrompt && w.prefix > 0;
    const newPrefix = byContent && !this.prefix.anyMatch;
    c.newPrefix = newPrefix;
    c.mostlyNew = byContent && c.mostlyNew;
    weightedScore(c, w, this.withMetrics, !newPrefix);
    this.lora.score(this.table, c, d.traits);
  }

  /** Pick, then what may replace the pick. */
  pick(d: Decision): void {
    const t = this.table;
    const c = this.cands;
    const w = t.weights;
    const cfg = this.cfg;
    const band = pickBand(c.newPrefix, this.withMetrics ? w.queue + w.kvCache : 0);
    const picked = this.picked;
    pick(c, cfg.loadBoundEpsilon, band, picked, c.copyNeeded ? cfg.work.chunkTokens : 0);
    this.bySession = this.session.apply(t, c, this.saturation, d.traits, picked);
    if (decisions.active) decisions.guard(picked.cap, picked.preferred, picked.spilled, c.newPrefix, c.mostlyNew, this.withMetrics, this.bySession);
  }

  /** Commit: fills the decision, records the prompt where it goes, counts the request. */
  commit(d: Decision): void {
    const t = this.table;
    const c = this.cands;
    const k = this.picked.index;
    const i = unchecked(c.replica[k]);
    d.replica = i;
    d.address = unchecked(t.addresses[i]);
    d.addressBytes = unchecked(t.addressBytes[i]);
    const r = runnerUp(c, k);
    d.fallbackBytes = r >= 0 ? unchecked(t.addressBytes[unchecked(c.replica[r])]) : null;
    d.tableVersion = t.version;
    d.newTokens = unchecked(c.newTokens[k]);
    // What the request writes into the replica's cache: the prompt tokens it prefills there, and its
    // output; nothing where the engine refuses it (its whole prompt recorded there would push out
    // what the index knows the replica holds).
    const refused = this.candidates.tooLong;
    const written = refused ? 0 : d.newTokens + this.work.outputTokens;
    const share = this.inflight.writeShare(i, unchecked(c.written[k]), 1 + this.candidates.otherVms);
    d.matched = refused ? 0 : this.prefix.record(t, c, k, i, written, share);
    d.total = c.totalBlocks;
    if (decisions.active) {
      d.record = decisions.emit(t, c, k, r, d.matched, d.total, this.cfg.debugHeaders);
      this.metrics.add(Counter.DecisionRecords, 1);
    }
    d.decodeWork = this.work.decodeWork;
    d.decoding = false;
    this.inflight.committed(t, d, this.nowNs, written, unchecked(c.gatewayQueued[k]));
    const passed = this.picked.spilled ? this.picked.preferred : -1;
    this.metrics.routed(unchecked(t.slot[i]), d.matched, d.total, this.picked.spilled, passed >= 0 ? unchecked(t.slot[unchecked(c.replica[passed])]) : -1);
  }

  /** The response began at `nowNs`: the request decodes now. */
  @inline responseStarted(t: ReplicaTable, d: Decision, nowNs: u64): void {
    this.inflight.responseStarted(t, d, <u32>(nowNs / 1000000000), <u32>(nowNs / 1000000));
  }

  /** The request ended: it no longer loads its replica. */
  @inline finish(t: ReplicaTable, d: Decision, nowS: u32): void {
    this.inflight.finished(t, d, nowS);
  }

  /**
   * Requests the candidates below the saturation bound can take now (at
   * least one each; unbounded without trusted metrics): how many held
   * requests a tick lets go.
   */
  admissionRoom(t: ReplicaTable, withMetrics: bool, nowNs: u64): f64 {
    if (!this.candidates.filter(t, this.cands, withMetrics, nowNs, null)) return 0;
    this.saturation.mark(this.cands, withMetrics);
    return withMetrics ? this.saturation.room : Infinity;
  }
}
