// Replica tables and candidate sets for specs.
import { Candidates } from "../../../assembly/scheduling/candidates";
import { ReplicaTable } from "../../../assembly/state/replicaTable";

/** Ready replicas at `addresses`, no metrics, each with a KV cache of `kvTokens`. */
export function replicaTable(addresses: Array<string>, kvTokens: u32): ReplicaTable {
  const t = new ReplicaTable();
  for (let i = 0; i < addresses.length; i++) t.add(addresses[i], true, false, 0, 0, 0, kvTokens, 0);
  return t;
}

/** Every replica of `t` a candidate, in table order. */
export function allCandidates(t: ReplicaTable): Candidates {
  const c = new Candidates();
  for (let i = 0; i < t.n; i++) c.replica[i] = i;
  c.n = t.n;
  return c;
}
