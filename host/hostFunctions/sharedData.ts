// Shared data and shared queues (cpp-host src/exports.cc *_shared_data, *_shared_queue): keyed
// by the VM's vm_id in the process-wide store.
import { WasmResult as R } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function sharedDataFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const store = vm.store;
  const vmId = vm.vmId;
  return {
    proxy_get_shared_data: (kPtr: number, kSize: number, ptrPtr: number, sizePtr: number, casPtr: number) => {
      const key = mem.readLatin1(kPtr, kSize);
      if (key === null) return R.InvalidMemoryAccess;
      const hit = store.peek(vmId, key);
      if (hit === null) return R.NotFound;
      const cas = hit.cas;
      if (!mem.copyOut(hit.value, ptrPtr, sizePtr)) return R.InvalidMemoryAccess;
      if (!mem.writeU32(casPtr, cas)) return R.InvalidMemoryAccess;
      return R.Ok;
    },
    proxy_set_shared_data: (kPtr: number, kSize: number, vPtr: number, vSize: number, cas: number) => {
      const key = mem.readLatin1(kPtr, kSize);
      vPtr >>>= 0;
      vSize >>>= 0;
      const m = mem.bytes();
      if (key === null || vPtr + vSize > m.length) return R.InvalidMemoryAccess;
      // The store copies the value (into the key's previous one when it owns that and it fits).
      return store.setFrom(vmId, key, m, vPtr, vSize, cas >>> 0);
    },
    proxy_register_shared_queue: (nPtr: number, nSize: number, tokenPtr: number) => {
      const name = mem.readLatin1(nPtr, nSize);
      if (name === null) return R.InvalidMemoryAccess;
      const token = store.registerQueue(vmId, name, vm.contexts.active().rootId, vm);
      return mem.writeU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_resolve_shared_queue: (vPtr: number, vSize: number, nPtr: number, nSize: number, tokenPtr: number) => {
      const otherVmId = mem.readLatin1(vPtr, vSize);
      const name = mem.readLatin1(nPtr, nSize);
      if (otherVmId === null || name === null) return R.InvalidMemoryAccess;
      const token = store.resolveQueue(otherVmId === '' ? vmId : otherVmId, name);
      if (token === 0) return R.NotFound;
      return mem.writeU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_enqueue_shared_queue: (token: number, dPtr: number, dSize: number) => {
      const data = mem.read(dPtr, dSize);
      if (!data) return R.InvalidMemoryAccess;
      return store.enqueue(token >>> 0, data);
    },
    proxy_dequeue_shared_queue: (token: number, ptrPtr: number, sizePtr: number) => {
      const r = store.dequeue(token >>> 0);
      if (r.status !== R.Ok) return r.status;
      return mem.copyOut(r.value!, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
  };
}
