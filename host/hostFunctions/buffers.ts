// The buffer host functions (cpp-host src/exports.cc get_buffer_bytes, get_buffer_status,
// set_buffer_bytes): the context finds the buffer; a stream's bodies change on the Stream.
import { BUFFER_TYPE_MAX, BufferType, WasmResult as R } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function bufferFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const contexts = vm.contexts;
  return {
    proxy_get_buffer_bytes: (type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      const bytes = contexts.buffer(type);
      if (!bytes) return R.NotFound;
      start >>>= 0;
      length >>>= 0;
      if (start > bytes.length) length = 0;
      else if (start + length > bytes.length) length = bytes.length - start;
      if (length === 0) return mem.writeU32(ptrPtr, 0) && mem.writeU32(sizePtr, 0) ? R.Ok : R.InvalidMemoryAccess;
      const part = start === 0 && length === bytes.length ? bytes : bytes.subarray(start, start + length);
      return mem.copyOut(part, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_get_buffer_status: (type: number, lengthPtr: number, flagsPtr: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      const bytes = contexts.buffer(type);
      if (!bytes) return R.NotFound;
      if (!mem.writeU32(lengthPtr, bytes.length)) return R.InvalidMemoryAccess;
      if (!mem.writeU32(flagsPtr, 0)) return R.InvalidMemoryAccess;
      return R.Ok;
    },
    proxy_set_buffer_bytes: (type: number, start: number, length: number, dataPtr: number, dataSize: number) => {
      if (type >>> 0 > BUFFER_TYPE_MAX) return R.BadArgument;
      if (!contexts.buffer(type)) return R.NotFound;
      const data = mem.read(dataPtr, dataSize);
      if (!data) return R.InvalidMemoryAccess;
      // Only a stream's bodies are writable (configuration, http-call body: immutable; a root context has no body).
      const s = type === BufferType.HttpRequestBody || type === BufferType.HttpResponseBody ? contexts.active().stream : null;
      if (!s) return R.BadArgument;
      return s.setBufferBytes(type, start >>> 0, length >>> 0, data);
    },
  };
}
