// The in-flight counters' request hooks in the scheduling cycle
// (state/inflightCounters.ts): a request counts as queued from commit, as
// decoding from its response's start, and not at all once it finishes, each
// change once whatever order the stream's callbacks come in.
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { Decision } from "../../assembly/scheduling/decision";
import { GatewayBlob } from "../../assembly/state/gatewayBlob";
import { InflightCounters } from "../../assembly/state/inflightCounters";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000"];
const NOW_NS: u64 = 5000000000;

/** A request of 300 prefill tokens and 900 of decode work, decided for replica 1 of `t`. */
function decidedFor(t: ReplicaTable): Decision {
  const d = new Decision();
  d.replica = 1;
  d.address = A[1];
  d.tableVersion = t.version;
  d.newTokens = 300;
  d.decodeWork = 900;
  return d;
}

describe("in-flight counters' request hooks", () => {
  it("share the content each worker VM has written to a replica through the gateway blob", () => {
    const t = replicaTable(A, 100000);
    const blob = new GatewayBlob(true);
    const vm1 = new InflightCounters(blob, 1);
    const vm2 = new InflightCounters(new GatewayBlob(true), 2);
    vm1.committed(t, decidedFor(t), NOW_NS, 1000, 0);
    vm1.committed(t, decidedFor(t), NOW_NS, 1000, 0);
    vm2.committed(t, decidedFor(t), NOW_NS, 640, 0);
    expect(vm1.own.written[1]).toBe(2000);
    // Rows carry it in units of 64 tokens, rounded down: 2000 -> 1984.
    vm2.read(t, 5);
    expect(vm2.total.written[1]).toBe(640 + 1984);
    expect(vm2.total.written[0]).toBe(0);
    // A replica set that keeps the replica keeps its content; one given its index starts from none.
    const u = replicaTable([A[1], "10.0.0.9:8000"], 100000);
    vm1.remap(t, u);
    expect(vm1.own.written[0]).toBe(2000);
    expect(vm1.own.written[1]).toBe(0);
  });
  it("give a worker VM's share of the gateway's writes to a replica, at least an even one", () => {
    const t = replicaTable(A, 100000);
    const vm1 = new InflightCounters(new GatewayBlob(true), 1);
    const vm2 = new InflightCounters(new GatewayBlob(true), 2);
    vm1.committed(t, decidedFor(t), NOW_NS, 640, 0);
    for (let i = 0; i < 3; i++) vm2.committed(t, decidedFor(t), NOW_NS, 640, 0);
    const others = vm2.read(t, 5);
    expect(others).toBe(1);
    expect(vm2.writeShare(1, vm2.total.written[1], 1 + others)).toBe(0.75);
    vm1.read(t, 5);
    // A quarter of the writes, but two VMs: an even share.
    expect(vm1.writeShare(1, vm1.total.written[1], 2)).toBe(0.5);
    // Two VMs in each of four gateways, and the others' writes reported: an eighth at least.
    expect(vm1.writeShare(1, vm1.total.written[1] * 8, 8)).toBe(0.125);
    // Nothing written yet, or alone: the whole cache.
    expect(vm1.writeShare(0, vm1.total.written[0], 2)).toBe(1.0);
    expect(vm1.writeShare(1, vm1.total.written[1], 1)).toBe(1.0);
  });
  it("count a committed request as queued on its replica, then as decoding, then not at all", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    const d = decidedFor(t);
    vm.committed(t, d, NOW_NS, 556, 0);
    expect(d.counted).toBe(true);
    expect(vm.own.inflight[1]).toBe(1);
    expect(vm.own.queued[1]).toBe(300);
    expect(vm.own.placedMs[1]).toBe(5000);
    expect(vm.own.inflight[0]).toBe(0);
    vm.responseStarted(t, d, 5, 5000);
    expect(vm.own.queued[1]).toBe(0);
    expect(vm.own.decoding[1]).toBe(1);
    expect(vm.own.decodeWork[1]).toBe(900);
    vm.finished(t, d, 6);
    expect(vm.own.inflight[1]).toBe(0);
    expect(vm.own.decoding[1]).toBe(0);
    expect(vm.own.decodeWork[1]).toBe(0);
  });
  it("drop a request that finishes before its response starts from the queue, and count each change once", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    const other = decidedFor(t);
    vm.committed(t, other, NOW_NS, 556, 0);
    const d = decidedFor(t);
    vm.committed(t, d, NOW_NS, 556, 0);
    vm.finished(t, d, 5);
    vm.finished(t, d, 5);
    vm.responseStarted(t, d, 5, 5000);
    expect(vm.own.inflight[1]).toBe(1);
    expect(vm.own.queued[1]).toBe(300);
    expect(vm.own.decoding[1]).toBe(0);
  });
  it("find the replica by address in a newer table, and leave the counters alone when it left", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    const d = decidedFor(t);
    vm.committed(t, d, NOW_NS, 556, 0);
    const moved = replicaTable([A[1], A[0]], 100000);
    moved.version = t.version + 1;
    vm.remap(t, moved);
    vm.responseStarted(moved, d, 5, 5000);
    expect(vm.own.decoding[0]).toBe(1);
    expect(vm.own.queued[0]).toBe(0);
    const gone = replicaTable(["10.0.0.9:8000"], 100000);
    gone.version = t.version + 2;
    vm.remap(moved, gone);
    vm.finished(gone, d, 6);
    expect(d.counted).toBe(false);
    expect(vm.own.inflight[0]).toBe(0);
  });
});

// Last in the file: its rows stay live in the shared blob for the rest of it.
describe("in-flight rows", () => {
  it("count the requests each worker VM routed, summed over the live rows into the gateway's (the shared demand's clock)", () => {
    const t = replicaTable(A, 100000);
    const vm7 = new InflightCounters(new GatewayBlob(true), 7);
    const vm8 = new InflightCounters(new GatewayBlob(true), 8);
    const before = vm8.read(t, 5) >= 0 ? vm8.total.routed : 0;
    for (let i = 0; i < 3; i++) vm7.committed(t, decidedFor(t), NOW_NS, 0, 0);
    vm8.committed(t, decidedFor(t), NOW_NS, 0, 0);
    vm8.read(t, 5);
    expect(vm8.own.routed).toBe(1);
    expect(vm8.total.routed - before).toBe(4);
    // A replica set that changes keeps each VM's count.
    vm7.remap(t, replicaTable([A[1]], 100000));
    expect(vm7.own.routed).toBe(3);
  });
});
