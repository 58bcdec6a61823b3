// State section 17 (plugin/STATE_FORMAT.md): each replica's context length,
// max_model_len as its /v1/models reports it (modelInfo.ts). The filter's
// decoder is assembly/state/contextSection.ts: it leaves a replica too short
// for a request out while another can take it, and records no prompt where
// every replica would refuse it.
import type { StateSection } from './stateWire.js';

export const CONTEXT_SECTION_TAG = 17;
/** Largest value the section carries: a u32. */
export const MAX_CONTEXT_TOKENS = 0xffffffff;

/**
 * The section for replicas in state order (null or undefined: not known, sent
 * as 0); null when no replica's is known, so a fleet that does not report it
 * keeps sending what it sent before.
 */
export function encodeContextSection(lengths: ReadonlyArray<number | null | undefined>): StateSection | null {
  if (!lengths.some((l) => typeof l === 'number' && l > 0)) return null;
  const bytes = new Uint8Array(4 + 4 * lengths.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, lengths.length, true);
  lengths.forEach((l, i) => {
    const v = typeof l === 'number' && Number.isInteger(l) && l > 0 && l <= MAX_CONTEXT_TOKENS ? l : 0;
    view.setUint32(4 + 4 * i, v, true);
  });
  return { tag: CONTEXT_SECTION_TAG, bytes };
}

/** Each replica's length (0: unknown), as the filter reads the section; throws where the filter would refuse the state. */
export function decodeContextSection(bytes: Uint8Array, replicas: number): number[] {
  if (bytes.length < 4 || (bytes.length - 4) % 4 !== 0) throw new Error('context section must be 4 bytes a replica after its count');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(0, true);
  if (n !== replicas || (bytes.length - 4) / 4 !== n) throw new Error(`context section: ${n} replicas, the state has ${replicas}`);
  return Array.from({ length: n }, (_, i) => dv.getUint32(4 + 4 * i, true));
}
