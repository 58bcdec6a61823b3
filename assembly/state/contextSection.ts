// State section 17, context lengths (plugin/STATE_FORMAT.md): each replica's
// max_model_len, as its /v1/models reports it. The control plane's encoder
// is control-plane/contextSection.ts. Body: [u32 replicaCount][replicaCount x
// u32 maxModelLen, tokens, 0 unknown], in the order of the replica records.
import * as E from "../errors";
import { ReplicaTable } from "./replicaTable";

export const CONTEXT_SECTION_TAG: u32 = 17;

/** Decodes the section at [p, p+len) into `t`; returns "" or why it is malformed. */
export function decodeContextSection(t: ReplicaTable, p: usize, len: i32): string {
  if (len != 4 + 4 * t.n || load<u32>(p) != <u32>t.n) return E.STATE_ERR_CONTEXT;
  const lengths = new StaticArray<u32>(t.n);
  for (let i = 0; i < t.n; i++) unchecked(lengths[i] = load<u32>(p + 4 + <usize>(i * 4)));
  t.maxModelLen = lengths;
  return "";
}
