// The other gateways' placements as a state shows them (router.ts,
// notePlacementsSeen): a rise of their queued tokens on a replica, or a
// placement of theirs there (section 1), stamps it with the state's arrival.
import { notePlacementsSeen } from "../../assembly/router";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { replicaTable } from "./support/replicas";

const ADDRESSES = ["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000"];

function state(queued: Array<f64>, receivedMs: u64): ReplicaTable {
  const t = replicaTable(ADDRESSES, 100000);
  for (let i = 0; i < queued.length; i++) t.otherGatewaysQueuedTokens[i] = queued[i];
  t.receivedAtNs = receivedMs * 1000000;
  return t;
}

describe("the other gateways' placement times", () => {
  it("stamps a replica whose queued tokens rose, and carries the others' stamps", () => {
    const a = state([0, 500, 0], 1000);
    a.otherGatewaysPlacedMs[2] = 900;
    const b = state([300, 200, 0], 1020);
    notePlacementsSeen(a, b, b.indexesIn(a));
    expect(b.otherGatewaysPlacedMs[0]).toBe(1020);
    expect(b.otherGatewaysPlacedMs[1]).toBe(0, "fell: no placement seen");
    expect(b.otherGatewaysPlacedMs[2]).toBe(900, "unchanged: the last stamp");
  });
  it("stamps a replica a placement of theirs names, though their queued tokens did not rise", () => {
    const a = state([0, 500, 0], 1000);
    const b = state([0, 400, 0], 1005);
    b.learnedReplica = [1];
    notePlacementsSeen(a, b, b.indexesIn(a));
    expect(b.otherGatewaysPlacedMs[1]).toBe(1005);
    expect(b.otherGatewaysPlacedMs[0]).toBe(0);
  });
  it("follows replicas by address when the list changes, and stamps nothing without an arrival time", () => {
    const a = state([0, 0, 0], 1000);
    a.otherGatewaysPlacedMs[1] = 990;
    const b = replicaTable([ADDRESSES[1], ADDRESSES[2]], 100000);
    b.receivedAtNs = 1010 * 1000000;
    notePlacementsSeen(a, b, b.indexesIn(a));
    expect(b.otherGatewaysPlacedMs[0]).toBe(990);
    const c = state([100, 100, 100], 0);
    notePlacementsSeen(a, c, c.indexesIn(a));
    expect(c.otherGatewaysPlacedMs[0]).toBe(0);
    expect(c.otherGatewaysPlacedMs[1]).toBe(990);
  });
});
