// How a proxy's worker VMs tell themselves apart, in shared data: a
// process-unique id each, and the lease that lets one of them poll the
// control plane. cpp-host rules: a set with a CAS that is
// not current fails with CAS_MISMATCH; CAS 0 writes unconditionally.
import { HostBytes, WasmResult, getShared, setShared, sharedCas } from "../abi/hostCalls";
import { KEY_POLL_LEASE, KEY_VM_SEQ } from "./sharedKeys";

/** Attempts of a CAS loop before giving up; contention is between a few worker threads. */
const CAS_ATTEMPTS = 16;

const bytes = new HostBytes();
const SCRATCH: usize = memory.data(16);

/** A process-unique id for this VM, or 0 when shared data is unavailable. */
export function allocateVmId(): u32 {
  for (let i = 0; i < CAS_ATTEMPTS; i++) {
    const r = getShared(KEY_VM_SEQ, bytes);
    let next: u32 = 1;
    let cas: u32 = 0;
    if (r == WasmResult.Ok) {
      if (bytes.len == 4) next = load<u32>(bytes.ptr) + 1;
      cas = sharedCas;
    } else if (r != WasmResult.NotFound) {
      bytes.free();
      return 0;
    }
    bytes.free();
    if (next == 0) next = 1;
    store<u32>(SCRATCH, next);
    if (setShared(KEY_VM_SEQ, SCRATCH, 4, cas) == WasmResult.Ok) return next;
  }
  return 0;
}

/** Takes or renews the poll lease; true when this VM holds it until now + ttl. */
export function holdLease(vmId: u32, nowNs: u64, ttlNs: u64): bool {
  const r = getShared(KEY_POLL_LEASE, bytes);
  let cas: u32 = 0;
  if (r == WasmResult.Ok) {
    cas = sharedCas;
    if (bytes.len == 12) {
      const holder = load<u32>(bytes.ptr);
      const expires = load<u64>(bytes.ptr, 4);
      if (holder != vmId && expires > nowNs) {
        bytes.free();
        return false;
      }
    }
  } else if (r != WasmResult.NotFound) return false;
  bytes.free();
  store<u32>(SCRATCH, vmId);
  store<u64>(SCRATCH, nowNs + ttlNs, 4);
  return setShared(KEY_POLL_LEASE, SCRATCH, 12, cas) == WasmResult.Ok;
}

/** Gives the lease up (the VM is going away), if this VM holds it. */
export function releaseLease(vmId: u32): void {
  if (getShared(KEY_POLL_LEASE, bytes) != WasmResult.Ok) return;
  const mine = bytes.len == 12 && load<u32>(bytes.ptr) == vmId;
  const cas = sharedCas;
  bytes.free();
  if (!mine) return;
  store<u32>(SCRATCH, 0);
  store<u64>(SCRATCH, 0, 4);
  setShared(KEY_POLL_LEASE, SCRATCH, 12, cas);
}
