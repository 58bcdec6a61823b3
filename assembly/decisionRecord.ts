// Decision records (plugin/METRICS.md, "Decision records"): why a sampled
// request went where it did. The scheduling cycle fills the record through
// hooks: each scorer's clamped scores as one column (weightedScore), the
// guard's cap and preferred candidate (after pick), the choice (commit).
// Sampling is one in `every` requests per worker VM, set at run time by the
// control plane's state (section 32); with sampling off, each hook costs one
// branch on `active`. Rendering allocates, but only for sampled requests.
import { LogLevel, log } from "./abi/hostCalls";
import { decimal3 } from "./decimalText";
import { MAX_SLOTS } from "./prefix/prefixIndex";
import { Candidates } from "./scheduling/candidates";
import { ReplicaTable } from "./state/replicaTable";

/** The scorers, one column each: weightedScore's in its order, then LoRA affinity. A new scorer is one more entry. */
export const enum Scorer { Prefix, Queue, KvCache, Inflight, Work, Lora, COUNT }

const SCORER_NAMES: StaticArray<string> = ["prefix", "queue", "kvCache", "inflight", "work", "lora"];

/** Candidates listed in the response header at most (the log line lists all). */
const HEADER_CANDIDATES: i32 = 16;

@final
export class DecisionRecord {
  /** The request being scheduled is sampled: the hooks record. */
  active: bool = false;
  private count: u32 = 0;
  /** Which scorers ran for this request (a scorer with weight 0, or without trusted metrics, sits out). */
  readonly ran: StaticArray<bool> = new StaticArray<bool>(Scorer.COUNT);
  readonly weight: StaticArray<f64> = new StaticArray<f64>(Scorer.COUNT);
  /** Clamped score of candidate k by scorer s at [s * MAX_SLOTS + k]; allocated when sampling first starts. */
  private scores: StaticArray<f64> = new StaticArray<f64>(0);
  /** The load guard's cap: a candidate whose load + 1 exceeds it is passed over. */
  cap: f64 = 0;
  /** The candidate the scores alone chose; differs from the chosen one when the guard spilled. */
  preferred: i32 = -1;
  spilled: bool = false;
  /** A prompt start no replica holds, placed among near-equal candidates on the one given the least content. */
  newPrefix: bool = false;
  /** A prompt its best holder holds less than half of, placed as a new one. */
  mostlyNew: bool = false;
  metricsTrusted: bool = false;
  /** Session affinity chose the replica (its session's), over the scores. */
  session: bool = false;

  /** Starts a request: records it when it is the `every`-th since the last one recorded (0: never). */
  @inline sample(every: u32): bool {
    this.active = false;
    if (every == 0) return false;
    return this.draw(every);
  }

  private draw(every: u32): bool {
    this.count++;
    if (this.count < every) return false;
    this.count = 0;
    if (this.scores.length == 0) this.scores = new StaticArray<f64>(Scorer.COUNT * MAX_SLOTS);
    for (let s = 0; s < Scorer.COUNT; s++) unchecked(this.ran[s] = false);
    this.preferred = -1;
    this.spilled = false;
    this.cap = 0;
    this.active = true;
    return true;
  }

  /** Scorer `s` left its scores in c.scratch and is summed with `weight`. */
  column(s: Scorer, c: Candidates, weight: f64): void {
    unchecked(this.ran[s] = true);
    unchecked(this.weight[s] = weight);
    const base = <i32>s * MAX_SLOTS;
    for (let k = 0; k < c.n; k++) {
      const v = unchecked(c.scratch[k]);
      unchecked(this.scores[base + k] = v < 0 ? 0 : v > 1 ? 1 : v);
    }
  }

  /** What the picker saw beyond the scores. */
  guard(cap: f64, preferred: i32, spilled: bool, newPrefix: bool, mostlyNew: bool, metricsTrusted: bool, session: bool): void {
    this.session = session;
    this.cap = cap;
    this.preferred = preferred;
    this.spilled = spilled;
    this.newPrefix = newPrefix;
    this.mostlyNew = mostlyNew;
    this.metricsTrusted = metricsTrusted;
  }

  /** The record as one JSON object (the log line). */
  json(t: ReplicaTable, c: Candidates, chosen: i32, runnerUp: i32, matched: i32, total: i32): string {
    let s = '{"event":"prefix_router.decision","stateVersion":' + t.version.toString();
    s += ',"chosen":' + quoted(t, c, chosen) + ',"runnerUp":' + quoted(t, c, runnerUp);
    s += ',"blocks":{"matched":' + matched.toString() + ',"total":' + total.toString() + "}";
    s += ',"weights":{' + this.weightList(":", '"') + "}";
    const bound = c.workBound;
    s += ',"guard":{"cap":' + decimal3(this.cap) + ',"workBound":' + (isFinite(bound) ? decimal3(bound) : "null") +
      ',"spilled":' + (this.spilled ? "true" : "false") + ',"passedOver":' +
      (this.spilled ? quoted(t, c, this.preferred) : "null") + "}";
    s += ',"newPrefix":' + (this.newPrefix ? "true" : "false") + ',"mostlyNew":' + (this.mostlyNew ? "true" : "false") + ',"metricsTrusted":' + (this.metricsTrusted ? "true" : "false");
    s += ',"session":' + (this.session ? "true" : "false");
    s += ',"candidates":[';
    for (let k = 0; k < c.n; k++) {
      if (k > 0) s += ",";
      s += '{"replica":' + quoted(t, c, k) + ',"matchedBlocks":' + unchecked(c.matched[k]).toString() + ',"load":' + decimal3(unchecked(c.load[k]));
      s += ',"overCap":' + (unchecked(c.load[k]) + 1 > this.cap ? "true" : "false");
      s += ',"workTokens":' + decimal3(unchecked(c.work[k])) + ',"overWork":' + (unchecked(c.work[k]) > bound ? "true" : "false");
      s += ',"predictedTtftMs":' + decimal3(unchecked(c.ttftMs[k])) + ',"memoryWaitMs":' + decimal3(unchecked(c.memoryWaitMs[k]));
      s += ',"score":' + decimal3(unchecked(c.score[k])) + ',"scores":{' + this.scoreList(k, ":", '"') + "}}";
    }
    return s + "]}";
  }

  /**
   * The same, compact, for the x-prefix-router-decision response header:
   * `chosen=A; runnerUp=B; blocks=m/t; cap=N; spilled=0|1; weights=prefix:3,queue:1;
   * A=score:S,load:L,prefix:P,...` for at most HEADER_CANDIDATES candidates, then `more=N`.
   */
  header(t: ReplicaTable, c: Candidates, chosen: i32, runnerUp: i32, matched: i32, total: i32): string {
    let s = "chosen=" + address(t, c, chosen) + "; runnerUp=" + address(t, c, runnerUp);
    s += "; blocks=" + matched.toString() + "/" + total.toString() + "; cap=" + decimal3(this.cap) + "; spilled=" + (this.spilled ? "1" : "0");
    s += "; weights=" + this.weightList(":", "");
    const shown = c.n < HEADER_CANDIDATES ? c.n : HEADER_CANDIDATES;
    for (let k = 0; k < shown; k++) {
      s += "; " + address(t, c, k) + "=score:" + decimal3(unchecked(c.score[k])) + ",load:" + decimal3(unchecked(c.load[k]));
      const scores = this.scoreList(k, ":", "");
      if (scores.length > 0) s += "," + scores;
    }
    if (c.n > shown) s += "; more=" + (c.n - shown).toString();
    return s;
  }

  /** Logs the record and returns the header value for the stream, or null without debug headers. */
  emit(t: ReplicaTable, c: Candidates, chosen: i32, runnerUp: i32, matched: i32, total: i32, withHeader: bool): ArrayBuffer | null {
    this.active = false;
    log(LogLevel.Info, this.json(t, c, chosen, runnerUp, matched, total));
    return withHeader ? String.UTF8.encode(this.header(t, c, chosen, runnerUp, matched, total)) : null;
  }

  private weightList(sep: string, q: string): string {
    let s = "";
    for (let i = 0; i < Scorer.COUNT; i++) {
      if (!unchecked(this.ran[i])) continue;
      if (s.length > 0) s += ",";
      s += q + SCORER_NAMES[i] + q + sep + decimal3(unchecked(this.weight[i]));
    }
    return s;
  }

  private scoreList(k: i32, sep: string, q: string): string {
    let s = "";
    for (let i = 0; i < Scorer.COUNT; i++) {
      if (!unchecked(this.ran[i])) continue;
      if (s.length > 0) s += ",";
      s += q + SCORER_NAMES[i] + q + sep + decimal3(unchecked(this.scores[i * MAX_SLOTS + k]));
    }
    return s;
  }
}

/** The record of this worker VM's scheduling cycle. */
export const decisions = new DecisionRecord();

function address(t: ReplicaTable, c: Candidates, k: i32): string {
  return k < 0 || k >= c.n ? "-" : unchecked(t.addresses[unchecked(c.replica[k])]);
}

/** Addresses are validated ip:port: nothing in them needs escaping. */
function quoted(t: ReplicaTable, c: Candidates, k: i32): string {
  return k < 0 || k >= c.n ? "null" : '"' + unchecked(t.addresses[unchecked(c.replica[k])]) + '"';
}

