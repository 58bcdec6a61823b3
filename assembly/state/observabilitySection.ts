// State section 32, observability settings (plugin/STATE_FORMAT.md): what the
// operator turned on at run time. The control plane's encoder is
// control-plane/observabilitySection.ts. Body, 8 bytes:
// [u32 decisionLogEvery: 0 off, N one request in N per worker VM][u32 reserved 0].
import * as E from "../errors";
import { ReplicaTable } from "./replicaTable";

export const OBSERVABILITY_TAG: u32 = 32;
const BODY_BYTES: i32 = 8;
export const DECISION_LOG_EVERY_MAX: u32 = 1000000;

/** Decodes the section at [p, p+len) into `t`; returns "" or why it is malformed. */
export function decodeObservability(t: ReplicaTable, p: usize, len: i32): string {
  if (len != BODY_BYTES) return E.STATE_ERR_OBSERVABILITY_LENGTH;
  const every = load<u32>(p);
  if (load<u32>(p, 4) != 0) return E.STATE_ERR_OBSERVABILITY_RESERVED;
  if (every > DECISION_LOG_EVERY_MAX) return E.STATE_ERR_OBSERVABILITY_EVERY;
  t.decisionLogEvery = every;
  return "";
}
