// How long a replica's cache keeps what it was last sent: a vLLM cache holds
// its KV size of the most recently used content and evicts the least
// recently used, so content not touched since the replica was written its
// capacity in new tokens is gone. Per replica, the rate at which the gateway
// writes new tokens there (prompt tokens it had to prefill, and output),
// from the gateway's content counts (state/gatewayBlob.ts) sampled over
// windows of WINDOW_S; the turnover is the capacity over that rate. Shared
// index entries older than it are taken as evicted (prefixLocator.ts).
import { MAX_SLOTS } from "./prefixIndex";

/** Seconds a rate sample spans at least. */
const WINDOW_S: u32 = 10;

@final
export class CacheTurnover {
  /** Tokens written per second, smoothed over windows; 0: not known yet. */
  private readonly rate: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);
  /** Start of the window being sampled: the time (s, +1 so that 0 is none) and the written count then. */
  private readonly fromS: StaticArray<u32> = new StaticArray<u32>(MAX_SLOTS);
  private readonly fromWritten: StaticArray<f64> = new StaticArray<f64>(MAX_SLOTS);

  /** The gateway has written `writtenTokens` to the replica in `slot` by `nowS`. */
  observe(slot: i32, writtenTokens: f64, nowS: u32): void {
    if (slot < 0) return;
    const at = nowS + 1;
    const from = unchecked(this.fromS[slot]);
    const w0 = unchecked(this.fromWritten[slot]);
    if (from == 0 || writtenTokens < w0 || at < from) {
      // First sight, or the counts restarted (a worker VM's row went away).
      unchecked(this.fromS[slot] = at);
      unchecked(this.fromWritten[slot] = writtenTokens);
      return;
    }
    const span = at - from;
    if (span < WINDOW_S) return;
    const sample = (writtenTokens - w0) / <f64>span;
    const r = unchecked(this.rate[slot]);
    unchecked(this.rate[slot] = r > 0 ? (r + sample) / 2 : sample);
    unchecked(this.fromS[slot] = at);
    unchecked(this.fromWritten[slot] = writtenTokens);
  }

  /** Seconds the replica in `slot` keeps untouched content, with `capacityTokens` of cache; Infinity while its write rate is not known. */
  @inline seconds(slot: i32, capacityTokens: f64): f64 {
    if (slot < 0) return Infinity;
    const r = unchecked(this.rate[slot]);
    return r > 0 ? capacityTokens / r : Infinity;
  }

  /** The replica in `slot` left. */
  forget(slot: i32): void {
    unchecked(this.rate[slot] = 0);
    unchecked(this.fromS[slot] = 0);
    unchecked(this.fromWritten[slot] = 0);
  }
}
