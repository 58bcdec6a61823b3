// The header-map host functions (cpp-host src/exports.cc *_header_map_*): check the map type
// and the memory, find the map through the context, and let headerMap.ts do what Envoy's
// HeaderMap does. No closures or tuples are made per call: these run several times a request.
import { MAP_TYPE_MAX, WasmResult as R, parsePairs } from '../abi.js';
import { byteSize, firstValue, removeValues, replaceAll, replaceValue } from '../headerMap.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

const EMPTY = new Uint8Array(0);

export function headerFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const contexts = vm.contexts;
  /** add (a new entry) or replace (Envoy setCopy) a value. */
  const put = (type: number, kPtr: number, kSize: number, vPtr: number, vSize: number, replace: boolean): number => {
    if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
    const k = mem.readHeaderKey(kPtr, kSize);
    const value = mem.readLatin1(vPtr, vSize);
    if (k === null || value === null) return R.InvalidMemoryAccess;
    const map = contexts.headerMap(type, true);
    if (!map) return R.BadArgument;
    if (replace) replaceValue(map, k, value);
    else map.push([k, value]);
    return R.Ok;
  };
  return {
    proxy_get_header_map_value: (type: number, kPtr: number, kSize: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = mem.readHeaderKey(kPtr, kSize);
      if (k === null) return R.InvalidMemoryAccess;
      const map = contexts.headerMap(type, false);
      if (!map) return R.BadArgument;
      const v = firstValue(map, k);
      if (v === null) return R.NotFound;
      return mem.copyOutLatin1(v, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_get_header_map_pairs: (type: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const map = contexts.headerMap(type, false); // Envoy: an absent map reads as no pairs
      if (!map || map.length === 0) return mem.copyOut(EMPTY, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
      return mem.copyOutPairs(map, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_get_header_map_size: (type: number, resultPtr: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const map = contexts.headerMap(type, true);
      if (!map) return R.BadArgument;
      return mem.writeU32(resultPtr, byteSize(map)) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_add_header_map_value: (type: number, kPtr: number, kSize: number, vPtr: number, vSize: number) => put(type, kPtr, kSize, vPtr, vSize, false),
    proxy_replace_header_map_value: (type: number, kPtr: number, kSize: number, vPtr: number, vSize: number) => put(type, kPtr, kSize, vPtr, vSize, true),
    proxy_remove_header_map_value: (type: number, kPtr: number, kSize: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const k = mem.readHeaderKey(kPtr, kSize);
      if (k === null) return R.InvalidMemoryAccess;
      const map = contexts.headerMap(type, true);
      if (!map) return R.BadArgument;
      removeValues(map, k);
      return R.Ok;
    },
    proxy_set_header_map_pairs: (type: number, ptr: number, size: number) => {
      if (type >>> 0 > MAP_TYPE_MAX) return R.BadArgument;
      const data = mem.read(ptr, size);
      if (!data) return R.InvalidMemoryAccess;
      const pairs = parsePairs(data);
      const map = contexts.headerMap(type, true);
      if (!map) return R.BadArgument;
      replaceAll(map, pairs);
      return R.Ok;
    },
  };
}
