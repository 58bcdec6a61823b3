// State section 32, observability settings (plugin/STATE_FORMAT.md): what an
// operator turns on at run time, carried to every filter in the state. The
// filter's decoder is assembly/state/observabilitySection.ts.
// Body, 8 bytes: [u32 decisionLogEvery][u32 reserved 0].
import type { StateSection } from './stateWire.js';

export const OBSERVABILITY_TAG = 32;
const BODY_BYTES = 8;
/** Sampling rarer than one in a million is as good as off. */
export const DECISION_LOG_EVERY_MAX = 1_000_000;

export interface ObservabilitySettings {
  /** One request in this many (per worker VM) logs its decision record; 0: none. */
  decisionLogEvery: number;
}

export const DEFAULT_OBSERVABILITY: ObservabilitySettings = { decisionLogEvery: 0 };

export interface ObservabilityProblem {
  field: string;
  error: string;
}

/** The one rule for the settings, as the filter's decoder checks them. */
export function observabilityProblem(s: unknown): ObservabilityProblem | null {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return { field: '(body)', error: 'must be a JSON object' };
  for (const k of Object.keys(s)) {
    if (k !== 'decisionLogEvery') return { field: k, error: `unknown field ${k} (known: decisionLogEvery)` };
  }
  const v = (s as Record<string, unknown>).decisionLogEvery;
  if (v === undefined) return { field: 'decisionLogEvery', error: 'decisionLogEvery is required' };
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > DECISION_LOG_EVERY_MAX) {
    return { field: 'decisionLogEvery', error: `decisionLogEvery must be a whole number from 0 (off) to ${DECISION_LOG_EVERY_MAX}` };
  }
  return null;
}

/** The section for these settings, or null when all are off (the state then stays format 1 for older filters). */
export function encodeObservability(s: ObservabilitySettings): StateSection | null {
  const p = observabilityProblem(s);
  if (p) throw new Error(`observability settings not encoded: ${p.error}`);
  if (s.decisionLogEvery === 0) return null;
  const bytes = new Uint8Array(BODY_BYTES);
  new DataView(bytes.buffer).setUint32(0, s.decisionLogEvery, true);
  return { tag: OBSERVABILITY_TAG, bytes };
}

/** Reads a section body back, by the filter's rules; throws naming what is wrong. */
export function decodeObservability(bytes: Uint8Array): ObservabilitySettings {
  if (bytes.length !== BODY_BYTES) throw new Error(`observability section must be ${BODY_BYTES} bytes, not ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(4, true) !== 0) throw new Error('observability section: reserved bits set');
  const decisionLogEvery = dv.getUint32(0, true);
  if (decisionLogEvery > DECISION_LOG_EVERY_MAX) throw new Error(`observability section: decisionLogEvery above ${DECISION_LOG_EVERY_MAX}`);
  return { decisionLogEvery };
}
