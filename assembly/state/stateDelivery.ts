// How a new state reaches every worker VM of a proxy. The VM that polls the
// control plane decodes what it receives, publishes the bytes under
// prefix_router.state and then announces them by raising the stamp in the
// gateway blob. Every VM reads that blob on every request anyway: when its
// stamp names a state newer than the one the VM routes on, the VM fetches the
// published bytes and decodes them. Each VM decodes a state once.
import { HostBytes, LogLevel, WasmResult, getShared, log, setShared, sharedCas } from "../abi/hostCalls";
import { STATE_REJECTED } from "../errors";
import { Counter, RouterMetrics } from "../metrics";
import { GatewayBlob } from "./gatewayBlob";
import { ReplicaTable } from "./replicaTable";
import { KEY_STATE } from "./sharedKeys";
import { decodeState, stateError } from "./stateWire";

/** Attempts of the publishing CAS loop; contention is between a few worker threads. */
const CAS_ATTEMPTS = 16;
/** Published bytes: [u64 receivedAtNs][state payload]. */
const PAYLOAD_AT: usize = 8;

@final
export class StateDelivery {
  private readonly blob: GatewayBlob;
  private readonly metrics: RouterMetrics;
  private readonly bytes: HostBytes = new HostBytes();
  /** Last time the control plane was heard from, as the stamp says. */
  controlPlaneSeenNs: u64 = 0;
  /** The stamp version last fetched and decoded (or rejected): not fetched again. */
  private decodedVersion: u64 = 0;
  /** The last received() found a newer state published already. */
  superseded: bool = false;
  /** The state the last received() decoded, published or superseded; null when it was rejected. */
  lastReceived: ReplicaTable | null = null;

  constructor(blob: GatewayBlob, metrics: RouterMetrics) {
    this.blob = blob;
    this.metrics = metrics;
  }

  /**
   * The polling VM received a state: decodes it and, when it is valid,
   * publishes it for every VM unless a newer one is there, and announces it.
   * Returns the decoded table to route on, or null when the state was
   * rejected (stateError says why) or another VM's newer state won (then
   * `superseded` is set and the next notice() picks that one up).
   * `routedOn`: the table the VM routes on, whose unchanged replicas the
   * decode takes as they are (decodeState).
   */
  received(payload: usize, len: i32, nowNs: u64, routedOn: ReplicaTable): ReplicaTable | null {
    this.superseded = false;
    const t = decodeState(payload, len, routedOn);
    this.lastReceived = t;
    if (t === null) return null;
    const published = this.publish(payload, len, t.version, nowNs);
    this.blob.raiseStamp(published ? t.version : 0, nowNs);
    if (nowNs > this.controlPlaneSeenNs) this.controlPlaneSeenNs = nowNs;
    if (!published) {
      this.superseded = true;
      return null;
    }
    this.decodedVersion = t.version;
    t.receivedAtNs = nowNs;
    return t;
  }

  /** The control plane answered that nothing changed: announces that it is alive. */
  answered(nowNs: u64): void {
    this.blob.raiseStamp(0, nowNs);
  }

  /**
   * After the gateway blob was fetched: the published state, decoded, when
   * the stamp names one newer than `current`; null otherwise. Cheap when
   * nothing changed.
   */
  notice(current: ReplicaTable): ReplicaTable | null {
    const blob = this.blob;
    if (blob.stampSeenNs > this.controlPlaneSeenNs) this.controlPlaneSeenNs = blob.stampSeenNs;
    const version = blob.stampVersion;
    if (version == 0) return null; // no state published yet
    if (version == current.version && current.fromControlPlane) return null;
    if (version == this.decodedVersion) return null;
    const bytes = this.bytes;
    if (getShared(KEY_STATE, bytes) != WasmResult.Ok || bytes.len <= PAYLOAD_AT) {
      bytes.free();
      return null;
    }
    this.decodedVersion = version;
    const receivedAt = load<u64>(bytes.ptr);
    const t = decodeState(bytes.ptr + PAYLOAD_AT, <i32>(bytes.len - PAYLOAD_AT), current);
    bytes.free();
    if (t === null) {
      // Validated before it was published, so only a foreign writer gets here.
      this.metrics.add(Counter.StateRejected, 1);
      log(LogLevel.Error, STATE_REJECTED + stateError);
      return null;
    }
    if (t.version == current.version && current.fromControlPlane) return null;
    t.receivedAtNs = receivedAt;
    return t;
  }

  /** Publishes a validated payload unless a newer one is there already; false when it lost to a newer state. */
  private publish(payload: usize, len: i32, version: u64, nowNs: u64): bool {
    const buf = heap.alloc(<usize>len + PAYLOAD_AT);
    store<u64>(buf, nowNs);
    memory.copy(buf + PAYLOAD_AT, payload, <usize>len);
    const bytes = this.bytes;
    let published = false;
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const r = getShared(KEY_STATE, bytes);
      let cas: u32 = 0;
      if (r == WasmResult.Ok) {
        cas = sharedCas;
        const newer = bytes.len >= PAYLOAD_AT + 16 && load<u64>(bytes.ptr, PAYLOAD_AT + 8) >= version;
        bytes.free();
        if (newer) break;
      }
      if (setShared(KEY_STATE, buf, <usize>len + PAYLOAD_AT, cas) == WasmResult.Ok) {
        published = true;
        break;
      }
    }
    heap.free(buf);
    return published;
  }
}
