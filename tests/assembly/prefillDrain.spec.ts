// How much of a replica's queued prefill a request sent there now waits
// behind (state/inflightCounters.ts remaining, scheduling/candidateFilter.ts):
// the engine prefills its queue first come, first served from the moment a
// prompt arrives, so the queue drains from the last send or first token at
// the prefill rate, with one engine step kept unseen, and only while no other
// gateway has prompts queued there.
import { hostAlloc } from "../../assembly/abi/hostCalls";
import { PluginConfig } from "../../assembly/config/pluginConfig";
import { RouterMetrics } from "../../assembly/metrics";
import { CandidateFilter } from "../../assembly/scheduling/candidateFilter";
import { Candidates } from "../../assembly/scheduling/candidates";
import { Decision } from "../../assembly/scheduling/decision";
import { GatewayBlob } from "../../assembly/state/gatewayBlob";
import { InflightCounters } from "../../assembly/state/inflightCounters";
import { ReplicaTable } from "../../assembly/state/replicaTable";
import { replicaTable } from "./support/replicas";

export function specHostAlloc(size: usize): usize {
  return hostAlloc(size);
}

const A = ["10.0.0.1:8000", "10.0.0.2:8000"];
const MS: u64 = 1000000;
const CHUNK: f64 = 2048;

/** A request of `tokens` prefill tokens decided for replica 1 of `t`. */
function prompt(t: ReplicaTable, tokens: f64): Decision {
  const d = new Decision();
  d.replica = 1;
  d.address = A[1];
  d.tableVersion = t.version;
  d.newTokens = tokens;
  d.decodeWork = 900;
  return d;
}

describe("a replica's queued prefill", () => {
  // One shared-data store serves the whole file: each test starts 100 s after the last, when the earlier rows are dead.
  it("drains from the send at the prefill rate, keeping one chunk unseen", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    vm.committed(t, prompt(t, 40000), 5000 * MS, 40000, 0);
    vm.read(t, 5);
    // 5 s at 0.25 ms a token: half of it.
    expect(vm.remaining(1, 40000, 10000, 0.25, CHUNK)).toBe(20000);
    expect(vm.remaining(1, 40000, 20000, 0.25, CHUNK)).toBe(CHUNK);
    // A clock read before the send (another VM's): nothing drained yet.
    expect(vm.remaining(1, 40000, 4000, 0.25, CHUNK)).toBe(40000);
    // Never more than is queued, and a short queue is never credited.
    expect(vm.remaining(1, 30000, 5000, 0.25, CHUNK)).toBe(30000);
    expect(vm.remaining(1, 1500, 20000, 0.25, CHUNK)).toBe(1500);
    // No send yet: all of it.
    expect(vm.remaining(0, 700, 20000, 0.25, CHUNK)).toBe(700);
    // A prefill configured as free: all but the floor, at once.
    expect(vm.remaining(1, 40000, 5000, 0, CHUNK)).toBe(CHUNK);
  });

  it("restarts at a first token from what was sent after it", () => {
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    const first = prompt(t, 40000);
    vm.committed(t, first, 5000 * MS, 40000, 0);
    vm.committed(t, prompt(t, 10000), 6000 * MS, 10000, 36000);
    // The first prompt took longer than the rate says: its first token at 16 s.
    vm.responseStarted(t, first, 16, 16000);
    vm.read(t, 16);
    expect(vm.total.queued[1]).toBe(10000);
    expect(vm.remaining(1, 10000, 16000, 0.25, CHUNK)).toBe(10000);
    expect(vm.remaining(1, 10000, 17000, 0.25, CHUNK)).toBe(6000);
  });

  it("is anchored by the worker VM that sent there last, for every VM of the gateway", () => {
    const t = replicaTable(A, 100000);
    const vm1 = new InflightCounters(new GatewayBlob(true), 1);
    const vm2 = new InflightCounters(new GatewayBlob(true), 2);
    vm1.committed(t, prompt(t, 40000), 5000 * MS, 40000, 0);
    vm2.read(t, 7);
    vm2.committed(t, prompt(t, 10000), 7000 * MS, 10000, vm2.remaining(1, vm2.total.queued[1], 7000, 0.25, CHUNK));
    vm1.read(t, 7);
    expect(vm1.total.queued[1]).toBe(50000);
    expect(vm1.total.drainAnchorMs[1]).toBe(7000);
    expect(vm1.total.drainTokens[1]).toBe(42000);
    expect(vm1.remaining(1, 50000, 8000, 0.25, CHUNK)).toBe(38000);
  });

  it("is what the candidate filter queues on the replica, whole where other gateways have prefill queued there", () => {
    const cfg = new PluginConfig();
    const t = replicaTable(A, 100000);
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    vm.committed(t, prompt(t, 40000), 105000 * MS, 40000, 0);
    const filter = new CandidateFilter(cfg, new RouterMetrics(), vm);
    const c = new Candidates();
    // Nothing decodes there: the bare prefill rate, 0.228 ms a token; 20000 tokens take 4560 ms.
    expect(filter.filter(t, c, false, 109560 * MS, null)).toBe(true);
    expect(c.queued[1]).toBeCloseTo(20000);
    expect(c.gatewayQueued[1]).toBeCloseTo(20000);
    expect(c.queued[0]).toBe(0);
    t.otherGatewaysQueuedTokens[1] = 500;
    filter.filter(t, c, false, 109560 * MS, null);
    expect(c.queued[1]).toBe(40500);
    expect(c.gatewayQueued[1]).toBe(40000);
  });

  it("keeps a chunk unseen per gateway of a fleet: the others' sends since their last report may be ahead", () => {
    const t = replicaTable(A, 100000);
    t.fleetCount = 4;
    const vm = new InflightCounters(new GatewayBlob(true), 1);
    vm.committed(t, prompt(t, 40000), 205000 * MS, 40000, 0);
    const filter = new CandidateFilter(new PluginConfig(), new RouterMetrics(), vm);
    const c = new Candidates();
    filter.filter(t, c, false, 209560 * MS, null);
    expect(c.queued[1]).toBeCloseTo(20000);
    filter.filter(t, c, false, 260000 * MS, null);
    expect(c.queued[1]).toBe(4 * CHUNK);
  });
});
