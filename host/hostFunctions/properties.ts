// proxy_get_property / proxy_set_property (cpp-host src/exports.cc get_property, set_property):
// the path arrives as NUL-separated parts; the context answers.
import { WasmResult as R } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function propertyFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const contexts = vm.contexts;
  return {
    proxy_get_property: (pathPtr: number, pathSize: number, ptrPtr: number, sizePtr: number) => {
      const path = mem.readLatin1(pathPtr, pathSize);
      if (path === null) return R.InvalidMemoryAccess;
      const parts = path.split('\0');
      if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
      const value = contexts.property(parts);
      if (value === null) return R.NotFound;
      return mem.copyOut(value, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_set_property: (kPtr: number, kSize: number, vPtr: number, vSize: number) => {
      const key = mem.readLatin1(kPtr, kSize);
      const value = mem.read(vPtr, vSize);
      if (key === null || value === null) return R.InvalidMemoryAccess;
      const s = contexts.active().stream;
      if (!s) return R.NotFound; // Envoy: no stream info on a root context
      return s.setProperty(key, value);
    },
  };
}
