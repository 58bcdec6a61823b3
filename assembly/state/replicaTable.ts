// The decoded scorer state one worker VM routes on: replicas with their
// metrics and prefix-index slots, weights, version. Built off the request path
// (at a state change), read on it.
import { Weights } from "../scheduling/weights";
import { xxh64, xxh64String } from "../prefix/hash";
import { LoraAdapters } from "./loraSection";

@final
export class ReplicaTable {
  version: u64 = 0;
  /** False for a table built from the static configuration (no metrics). */
  fromControlPlane: bool = false;
  /** When this VM's root context received the state (host clock). */
  receivedAtNs: u64 = 0;
  weights: Weights = new Weights();
  /** One request in this many logs its decision record; 0: none (state section 32, observabilitySection.ts). */
  decisionLogEvery: u32 = 0;
  n: i32 = 0;
  addresses: Array<string> = [];
  /** UTF-8 of each address, ready for the destination header. */
  addressBytes: Array<ArrayBuffer> = [];
  addressHash: Array<u64> = [];
  ready: Array<bool> = [];
  metricsKnown: Array<bool> = [];
  waiting: Array<f64> = [];
  running: Array<f64> = [];
  kvUsage: Array<f64> = [];
  kvCapacityTokens: Array<u32> = [];
  /** Each replica's max_model_len, tokens, 0 unknown (state section 17); empty when the state has none. */
  maxModelLen: StaticArray<u32> = new StaticArray<u32>(0);
  metricsAgeMs: Array<u32> = [];
  /**
   * Prefill tokens the other gateways have queued on each replica (sent, no
   * response yet), and their decode work (prefill-token equivalents), as the
   * control plane last reported them; 0 when it does not. Added to this
   * gateway's own counters when predicting.
   */
  otherGatewaysQueuedTokens: Array<f64> = [];
  otherGatewaysDecodeWork: Array<f64> = [];
  /**
   * Tokens the other gateways have written into each replica's cache (state
   * section 4), as the control plane last reported them; 0 when it does not.
   * Added to this gateway's own content counts.
   */
  otherGatewaysWritten: Array<f64> = [];
  /**
   * When (ms, the host clock) a state first showed the other gateways'
   * queued tokens on each replica rise: their latest placement there as far
   * as this gateway knows (0: none seen). Router.install carries it from
   * table to table.
   */
  otherGatewaysPlacedMs: Array<u32> = [];
  /** Prefix-index slot of each replica, -1 for none (PrefixLocator.resize assigns them). */
  slot: Array<i32> = [];
  /** Identifies the replica list (addresses in order): in-flight counters are laid out by it. */
  setHash: u64 = 0;
  /** Replica index by address hash (indexOf checks the address itself). */
  private readonly byHash: Map<u64, i32> = new Map<u64, i32>();
  /** The LoRA adapters of each replica (state section 16), null when the state has none. */
  lora: LoraAdapters | null = null;
  /**
   * Placements the other gateways made (state section 1: checkpoint hash,
   * replica index, depth), for the VM that polls to learn; `placementsThrough`
   * is the section's cursor, 0 when the state had none.
   */
  learnedHash: Array<u64> = [];
  learnedReplica: Array<i32> = [];
  learnedDepth: Array<u32> = [];
  placementsThrough: u64 = 0;
  /**
   * This gateway's position among the live gateways (state section 3):
   * index < count; 0 of 1 when the state has none (a gateway alone).
   */
  fleetIndex: i32 = 0;
  fleetCount: i32 = 1;

  add(address: string, ready: bool, metricsKnown: bool, waiting: f64, running: f64, kvUsage: f64, kvCapacityTokens: u32, metricsAgeMs: u32): void {
    const bytes = String.UTF8.encode(address);
    this.addHashed(address, bytes, xxh64(changetype<usize>(bytes), <usize>bytes.byteLength, 0), ready, metricsKnown, waiting, running, kvUsage, kvCapacityTokens, metricsAgeMs);
  }

  /** add() for an address whose UTF-8 `bytes` and their xxHash64 `h` are known (the state decoder has them). */
  addHashed(address: string, bytes: ArrayBuffer, h: u64, ready: bool, metricsKnown: bool, waiting: f64, running: f64, kvUsage: f64, kvCapacityTokens: u32, metricsAgeMs: u32): void {
    this.byHash.set(h, this.n);
    this.addresses.push(address);
    this.addressBytes.push(bytes);
    this.addressHash.push(h);
    this.setHash = xxh64(changetype<usize>(bytes), <usize>bytes.byteLength, this.setHash ^ h);
    this.ready.push(ready);
    this.metricsKnown.push(metricsKnown);
    this.waiting.push(waiting);
    this.running.push(running);
    this.kvUsage.push(kvUsage);
    this.kvCapacityTokens.push(kvCapacityTokens);
    this.metricsAgeMs.push(metricsAgeMs);
    this.otherGatewaysQueuedTokens.push(0);
    this.otherGatewaysDecodeWork.push(0);
    this.otherGatewaysWritten.push(0);
    this.otherGatewaysPlacedMs.push(0);
    this.slot.push(-1);
    this.n++;
  }

  /**
   * For each replica of this table, its index in `prev`, or -1: how the
   * state routed on before maps to this one (a replica at the same place in
   * both, the common case, is found without a lookup).
   */
  indexesIn(prev: ReplicaTable): StaticArray<i32> {
    const out = new StaticArray<i32>(this.n);
    for (let i = 0; i < this.n; i++) {
      const a = unchecked(this.addresses[i]);
      unchecked(out[i] = i < prev.n && unchecked(prev.addresses[i]) == a ? i : prev.indexOf(a));
    }
    return out;
  }

  /** The index of the replica at `address`, or -1. */
  indexOf(address: string): i32 {
    return this.indexOfHashed(address, xxh64String(address, 0));
  }

  /** indexOf() for an address whose xxHash64 `h` is known. */
  indexOfHashed(address: string, h: u64): i32 {
    if (!this.byHash.has(h)) return -1;
    const i = this.byHash.get(h);
    return unchecked(this.addresses[i]) == address ? i : -1;
  }
}
