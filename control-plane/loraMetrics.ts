// The LoRA adapters an engine runs and queues, from vLLM's
// `vllm:lora_requests_info{running_lora_adapters="a,b",waiting_lora_adapters="c",max_lora="4"} <time>`.
// vLLM keeps one series per label set it has ever set, each valued with the
// time it was last set: the newest per engine is the current one; engines
// (vLLM V1's `engine` label, data parallel) add up.
import { labelValue } from './engineMetrics.js';

export const LORA_METRIC = 'vllm:lora_requests_info';

export interface LoraInfo {
  /** adapters the engine can run at once (sum over engines) */
  maxLora: number;
  /** adapters of running requests, distinct, in first-seen order */
  running: string[];
  /** adapters of waiting requests, distinct */
  waiting: string[];
  /** the engine's base model (`model_name` label), when it says */
  baseModel?: string;
}

function splitAdapters(v: string | undefined): string[] {
  if (!v) return [];
  return v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Reads the LoRA series out of Prometheus text; null when the engine has none.
 * Only lines starting with the metric name are looked at (one native search).
 */
export function parseLoraInfo(text: string): LoraInfo | null {
  const needle = LORA_METRIC + '{';
  const newest = new Map<string, { t: number; block: string }>();
  let i = text.indexOf(needle);
  while (i >= 0) {
    if (i === 0 || text.charCodeAt(i - 1) === 10) {
      let eol = text.indexOf('\n', i);
      if (eol < 0) eol = text.length;
      const line = text.slice(i, eol);
      const close = line.lastIndexOf('}');
      if (close > needle.length - 1) {
        const block = line.slice(needle.length - 1, close + 1);
        const t = Number(line.slice(close + 1).trim().split(/\s+/)[0]);
        const engine = labelValue(block, 'engine="') ?? '';
        const prev = newest.get(engine);
        if (Number.isFinite(t) && (!prev || t >= prev.t)) newest.set(engine, { t, block });
      }
    }
    i = text.indexOf(needle, i + needle.length);
  }
  if (newest.size === 0) return null;
  const out: LoraInfo = { maxLora: 0, running: [], waiting: [] };
  for (const { block } of newest.values()) {
    const m = Number(labelValue(block, 'max_lora="'));
    if (Number.isInteger(m) && m > 0) out.maxLora += m;
    for (const a of splitAdapters(labelValue(block, 'running_lora_adapters="'))) if (!out.running.includes(a)) out.running.push(a);
    for (const a of splitAdapters(labelValue(block, 'waiting_lora_adapters="'))) if (!out.waiting.includes(a)) out.waiting.push(a);
    const base = labelValue(block, 'model_name="');
    if (base) out.baseModel = base;
  }
  return out;
}

/** Two scrapes' LoRA information is the same (what the state's LoRA section is built from). */
export function sameLoraInfo(a: LoraInfo | null, b: LoraInfo | null): boolean {
  if (a === null || b === null) return a === b;
  const sameList = (x: string[], y: string[]) => x.length === y.length && x.every((v, i) => v === y[i]);
  return a.maxLora === b.maxLora && a.baseModel === b.baseModel && sameList(a.running, b.running) && sameList(a.waiting, b.waiting);
}
