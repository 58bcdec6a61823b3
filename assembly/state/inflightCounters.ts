// Requests this gateway has in flight to each replica, across all worker VMs.
// Each VM counts its own and publishes them as its row of the gateway blob
// (gatewayBlob.ts); readers add the other VMs' live rows. A VM that dies (a
// trap replaces it) stops its heartbeat and its row is dropped after a TTL,
// so its counts cannot leak forever.
import { MAX_SLOTS } from "../prefix/prefixIndex";
import { GatewayBlob } from "./gatewayBlob";
import { ReplicaTable } from "./replicaTable";

@final
export class InflightCounters {
  /** This VM's own counts, by replica-table index. */
  private readonly local: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  /** Counts of the other VMs' rows, from the last read. */
  private readonly others: StaticArray<i32> = new StaticArray<i32>(MAX_SLOTS);
  private readonly blob: GatewayBlob;
  private readonly vmId: u32;

  constructor(blob: GatewayBlob, vmId: u32) {
    this.blob = blob;
    this.vmId = vmId;
  }

  /** Carries this VM's counts over to a new replica table, by address. */
  remap(old: ReplicaTable, next: ReplicaTable): void {
    const carried = new StaticArray<i32>(next.n);
    for (let i = 0; i < old.n; i++) {
      const j = next.indexOf(old.addresses[i]);
      if (j >= 0) carried[j] = this.local[i];
    }
    for (let i = 0; i < MAX_SLOTS; i++) unchecked(this.local[i] = i < next.n ? carried[i] : 0);
    this.blob.drop();
  }

  /**
   * Fills out[i] with the in-flight count of table replica i (from the
   * fetched blob; fetched now if there is none). Returns how many other
   * worker VMs are counting.
   */
  read(t: ReplicaTable, out: StaticArray<f64>, nowS: u32): i32 {
    const n = t.n;
    const blob = this.blob;
    for (let i = 0; i < n; i++) unchecked(this.others[i] = 0);
    let vms = 0;
    if (blob.shared && (blob.held || blob.fetch())) vms = blob.addOtherRows(t.setHash, n, this.vmId, nowS, this.others);
    for (let i = 0; i < n; i++) unchecked(out[i] = <f64>(unchecked(this.others[i]) + unchecked(this.local[i])));
    return vms;
  }

  /** Changes this VM's count for replica i by delta and publishes its row. */
  add(t: ReplicaTable, i: i32, delta: i32, nowS: u32): void {
    if (i < 0 || i >= t.n) return;
    const v = unchecked(this.local[i]) + delta;
    unchecked(this.local[i] = v < 0 ? 0 : v);
    this.publish(t, nowS);
  }

  /** Rewrites this VM's row (counts and heartbeat), keeping the other live rows. */
  publish(t: ReplicaTable, nowS: u32): void {
    if (this.blob.shared) this.blob.writeRow(t.setHash, t.n, this.vmId, nowS, this.local);
  }
}
