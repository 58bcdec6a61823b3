// The endpoints a request may go to, when the proxy restricts them: the
// Endpoint Picker Protocol's subset hint, which `prefix-router picker` hands
// the filter as a request header (`subsetHeader` in plugin/CONFIG.md). Kept
// as the replicas' address hashes (ReplicaTable.addressHash: xxHash64 of the
// "ip:port" bytes), so membership costs no string and reading allocates nothing.
import { CharCode } from "../charCode";
import { xxh64 } from "../prefix/hash";

/** The request header the subset arrives in: comma-separated ip:port. */
export const SUBSET_HEADER = "x-prefix-router-endpoint-subset";
/** Endpoints kept at most; a longer list is cut, and routing stays within what was kept. */
export const MAX_SUBSET: i32 = 64;

@final
export class EndpointSubset {
  private readonly keys: StaticArray<u64> = new StaticArray<u64>(MAX_SUBSET);
  /** Endpoints kept; -1: the request named no subset (any replica). */
  count: i32 = -1;

  @inline get given(): bool {
    return this.count >= 0;
  }

  reset(): void {
    this.count = -1;
  }

  copyFrom(o: EndpointSubset): void {
    this.count = o.count;
    for (let i = 0; i < o.count; i++) unchecked(this.keys[i] = unchecked(o.keys[i]));
  }

  /** Takes the header value [v, v+len): items between commas, spaces and tabs around them ignored. */
  read(v: isize, len: isize): void {
    let n = 0;
    let i: isize = 0;
    while (i < len && n < MAX_SUBSET) {
      let start = i;
      while (i < len && load<u8>(v + i) != CharCode.COMMA) i++;
      let end = i;
      i++;
      while (start < end && isBlank(load<u8>(v + start))) start++;
      while (end > start && isBlank(load<u8>(v + end - 1))) end--;
      if (end > start) unchecked(this.keys[n++] = xxh64(<usize>(v + start), <usize>(end - start), 0));
    }
    this.count = n;
  }

  /** Whether the replica whose address hash is `key` is in the subset (always, without one). */
  has(key: u64): bool {
    if (this.count < 0) return true;
    for (let i = 0; i < this.count; i++) if (unchecked(this.keys[i]) == key) return true;
    return false;
  }
}

@inline function isBlank(c: u8): bool {
  return c == CharCode.SPACE || c == CharCode.TAB;
}
