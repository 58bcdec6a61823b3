// What this gateway has in flight to each replica, across all worker VMs:
// requests, how many of them are decoding, the prefill tokens still queued
// and the decode work, when it last sent a request there and how much content it has written there,
// and the drain anchor: the prefill still ahead there when the queue last changed. Each VM counts its own and publishes them as its row
// of the gateway blob (gatewayBlob.ts); readers add the other VMs' live rows.
// A VM that dies (a trap replaces it) stops its heartbeat and its row is
// dropped after a TTL, so its counts cannot leak forever.
// In the scheduling cycle (scheduling/cycle.ts) the counters count a request
// at commit, move it from queued to decoding when its response starts, and
// drop it when it finishes.
import { Decision } from "../scheduling/decision";
import { GatewayBlob, WorkCounts, msSincePlacement } from "./gatewayBlob";
import { ReplicaTable } from "./replicaTable";

@final
export class InflightCounters {
  /** This VM's own counters, by replica-table index. */
  private readonly local: WorkCounts = new WorkCounts();
  /** The gateway's: this VM's plus the other VMs' rows, as of the last read(). */
  readonly total: WorkCounts = new WorkCounts();
  private readonly blob: GatewayBlob;
  private readonly vmId: u32;

  constructor(blob: GatewayBlob, vmId: u32) {
    this.blob = blob;
    this.vmId = vmId;
  }

  /** Carries this VM's counters over to a new replica table, by address (`from[j]`: replica j's index in `old`, -1 new; computed when not given). */
  remap(old: ReplicaTable, next: ReplicaTable, from: StaticArray<i32> | null = null): void {
    this.local.remap(from !== null ? from : next.indexesIn(old), next.n, old.n);
    this.blob.drop();
  }

  /**
   * Fills `total` for the replicas of `t` (from the fetched blob; fetched
   * now if there is none). Returns how many other worker VMs are counting.
   */
  read(t: ReplicaTable, nowS: u32): i32 {
    const n = t.n;
    const blob = this.blob;
    const sum = this.total;
    sum.copyFrom(this.local, n);
    if (this.blobReady()) return blob.addOtherRows(t.setHash, n, this.vmId, nowS, sum);
    return 0;
  }

  /** The gateway's queued tokens on replica i now: this VM's and the other VMs' live rows' (read()'s sum, for one replica). */
  private queuedAcrossVms(t: ReplicaTable, i: i32, nowS: u32): f64 {
    const own = unchecked(this.local.queued[i]);
    return this.blobReady() ? own + this.blob.otherRowsQueued(t.setHash, t.n, this.vmId, nowS, i) : own;
  }

  /** The gateway blob is shared and fetched (held for this request, or read now). */
  @inline private blobReady(): bool {
    const blob = this.blob;
    return blob.shared && (blob.held || blob.fetch());
  }

  /** Notes that a request is sent to replica i at `nowMs` (the ms clock mod 2^32); the next add() publishes it. */
  placed(t: ReplicaTable, i: i32, nowMs: u32): void {
    if (i >= 0 && i < t.n) unchecked(this.local.placedMs[i] = nowMs != 0 ? nowMs : 1);
  }

  /**
   * Changes this VM's counters for replica i (requests in flight, decoding,
   * queued tokens, decode work) and publishes its row. None drops below 0.
   */
  add(t: ReplicaTable, i: i32, inflight: f64, decoding: f64, queued: f64, decodeWork: f64, nowS: u32): void {
    if (i < 0 || i >= t.n) return;
    const l = this.local;
    unchecked(l.inflight[i] = atLeastZero(unchecked(l.inflight[i]) + inflight));
    unchecked(l.decoding[i] = atLeastZero(unchecked(l.decoding[i]) + decoding));
    unchecked(l.queued[i] = atLeastZero(unchecked(l.queued[i]) + queued));
    unchecked(l.decodeWork[i] = atLeastZero(unchecked(l.decodeWork[i]) + decodeWork));
    this.publish(t, nowS);
  }

  /**
   * The gateway's prefill tokens still ahead on replica i at `nowMs` (the ms
   * clock mod 2^32), of `queued` in flight with no response (`total`, as of
   * the last read()): what the drain anchor counted, less what the engine
   * prefills in the time since at `msPerToken`, within [min(queued, `floor`), queued].
   * vLLM prefills its queue first come, first served, and the anchor is
   * reset on every send and every first token, so the estimate drifts only
   * between two such events. Without an anchor, `queued`.
   */
  remaining(i: i32, queued: f64, nowMs: u32, msPerToken: f64, floor: f64): f64 {
    const anchor = unchecked(this.total.drainAnchorMs[i]);
    if (anchor == 0) return queued;
    // A prefill rate configured as free drains everything at once (and 0 / 0 must not make NaN).
    const drained = msPerToken > 0 ? msSincePlacement(nowMs, anchor) / msPerToken : Infinity;
    const left = unchecked(this.total.drainTokens[i]) - drained;
    const least = queued < floor ? queued : floor;
    return left < least ? least : left > queued ? queued : left;
  }

  /** Anchors replica i's drain: `tokens` of prefill ahead there at `nowMs`; the next add() publishes it. */
  anchor(t: ReplicaTable, i: i32, tokens: f64, nowMs: u32): void {
    if (i < 0 || i >= t.n) return;
    unchecked(this.local.drainTokens[i] = tokens > 0 ? tokens : 0);
    unchecked(this.local.drainAnchorMs[i] = nowMs != 0 ? nowMs : 1);
  }

  /**
   * Commit: the decided request is in flight on its replica, its prefill
   * queued, sent at `nowNs` behind `ahead` tokens of prefill (the filter's
   * estimate); it writes `writtenTokens` into the replica's cache.
   */
  committed(t: ReplicaTable, d: Decision, nowNs: u64, writtenTokens: f64, ahead: f64): void {
    const nowMs = <u32>(nowNs / 1000000);
    this.placed(t, d.replica, nowMs);
    this.anchor(t, d.replica, ahead + d.newTokens, nowMs);
    if (d.replica >= 0 && d.replica < t.n) unchecked(this.local.written[d.replica] += writtenTokens);
    this.local.routed++;
    this.add(t, d.replica, 1, 0, d.newTokens, 0, <u32>(nowNs / 1000000000));
    d.counted = true;
  }

  /**
   * The response began (its headers came; for a streamed completion, with
   * the first token) at `nowMs`: the prompt is prefilled, the request decodes
   * now, and the engine starts on what this gateway queued there after it
   * (first come, first served): the drain is anchored at that.
   */
  responseStarted(t: ReplicaTable, d: Decision, nowS: u32, nowMs: u32): void {
    if (!d.counted || d.decoding) return;
    d.decoding = true;
    const i = d.indexIn(t);
    if (i >= 0) this.anchor(t, i, this.queuedAcrossVms(t, i, nowS) - d.newTokens, nowMs);
    this.add(t, i, 0, 1, -d.newTokens, d.decodeWork, nowS);
  }

  /** The request ended (served, failed or reset): it no longer loads its replica. */
  finished(t: ReplicaTable, d: Decision, nowS: u32): void {
    if (!d.counted) return;
    d.counted = false;
    const i = d.indexIn(t);
    if (d.decoding) this.add(t, i, -1, -1, 0, -d.decodeWork, nowS);
    else this.add(t, i, -1, 0, -d.newTokens, 0, nowS);
  }

  /**
   * This VM's share of what has been written to replica i (`written`: the
   * gateway's total there, and the other gateways' where the fleet reports
   * them): its own writes over the total, and at least an even share among
   * `writers` worker VMs (the scheduling cycle names its gateway's; prefixLocator.ts
   * applyQuota says why not the fleet's), so that a VM that has just started,
   * and so has written little yet, is not taken for one that takes little traffic.
   */
  writeShare(i: i32, written: f64, writers: i32): f64 {
    const even = 1.0 / <f64>(writers > 1 ? writers : 1);
    if (i < 0 || written <= 0) return 1.0;
    const own = unchecked(this.local.written[i]) / written;
    return own > 1 ? 1.0 : own > even ? own : even;
  }

  /** This VM's own counters (for tests and the fleet exchange), by replica-table index. */
  @inline get own(): WorkCounts {
    return this.local;
  }

  /** Rewrites this VM's row (counters and heartbeat), keeping the other live rows. */
  publish(t: ReplicaTable, nowS: u32): void {
    if (this.blob.shared) this.blob.writeRow(t.setHash, t.n, this.vmId, nowS, this.local);
  }
}

@inline function atLeastZero(v: f64): f64 {
  return v > 0 ? v : 0;
}
