// LoRA affinity: a request whose `model` names a LoRA adapter prefers the
// replicas that run or queue that adapter (no load, and its requests batch
// together), then those with a free adapter slot (a load, but no wait for a
// slot), over those whose slots are all taken by other adapters (it waits
// until one frees). Adds weight x (1, SLOT_SCORE or 0) to each candidate's
// score, after the weighted sum. A request naming a replica's base model, or
// a state without LoRA information, is left alone.
//
// Prefix hashes are already per adapter: the prompt hasher seeds them with
// the `model` value, which for a LoRA request is the adapter's name, and
// vLLM never shares KV blocks between adapters either.
import { Scorer, decisions } from "../decisionRecord";
import { Counter, RouterMetrics } from "../metrics";
import { RequestTraits } from "../request/requestTraits";
import { BASE_MODEL } from "../state/loraSection";
import { ReplicaTable } from "../state/replicaTable";
import { Candidates } from "./candidates";

/** Score of a replica with a free adapter slot: between holding the adapter (1) and having no slot (0). */
const SLOT_SCORE: f64 = 0.5;
/**
 * Equal to the default prefix weight: a replica that holds the adapter beats
 * a full prefix match elsewhere that would wait for a slot, and the
 * bounded-load guard still spreads a busy adapter.
 */
export const DEFAULT_LORA_WEIGHT: f64 = 3;

@final
export class LoraConfig {
  weight: f64 = DEFAULT_LORA_WEIGHT;
}

/**
 * Adds LoRA affinity to `c.score`. Returns true when the request named an
 * adapter (some candidate's score changed by it).
 */
export function addLoraAffinity(t: ReplicaTable, c: Candidates, traits: RequestTraits, cfg: LoraConfig): bool {
  const lora = t.lora;
  if (lora === null || !traits.hasModel || cfg.weight <= 0 || !lora.anySlots) return false;
  const key = traits.model;
  const a = lora.byKey.has(key) ? lora.byKey.get(key) : -1;
  if (a == BASE_MODEL) return false;
  const w = cfg.weight;
  for (let k = 0; k < c.n; k++) {
    const i = unchecked(c.replica[k]);
    const s = a >= 0 && lora.holds(i, a) ? 1.0 : lora.freeSlot(i) ? SLOT_SCORE : 0.0;
    unchecked(c.scratch[k] = s);
    unchecked(c.score[k] += w * s);
  }
  if (decisions.active) decisions.column(Scorer.Lora, c, w);
  return true;
}

/** The cycle's LoRA affinity plugin: after the weighted sum, before the picker. */
@final
export class LoraAffinity {
  private readonly cfg: LoraConfig;
  private readonly metrics: RouterMetrics;

  constructor(cfg: LoraConfig, metrics: RouterMetrics) {
    this.cfg = cfg;
    this.metrics = metrics;
  }

  score(t: ReplicaTable, c: Candidates, traits: RequestTraits): void {
    if (!addLoraAffinity(t, c, traits, this.cfg)) return;
    this.metrics.add(Counter.LoraRouted, 1);
    // The prediction knows nothing of adapters: near-equal predictions keep the score's order.
    c.nearMs = 0;
  }
}
