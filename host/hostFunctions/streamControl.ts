// Continue, close, local reply (cpp-host src/exports.cc continue_stream, close_stream,
// send_local_response): the stream defers them until the call returns (DeferAfterCallActions).
import { STREAM_TYPE_MAX, WasmResult as R, parsePairs } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function streamControlFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const contexts = vm.contexts;
  return {
    proxy_continue_stream: (type: number) => {
      if (type >>> 0 > STREAM_TYPE_MAX) return R.BadArgument;
      const s = contexts.active().stream;
      if (!s) return R.Ok; // Envoy: no decoder callbacks on a root context, nothing happens
      return s.continueStream(type >>> 0);
    },
    proxy_close_stream: (type: number) => {
      if (type >>> 0 > STREAM_TYPE_MAX) return R.BadArgument;
      const s = contexts.active().stream;
      if (!s) return R.Ok;
      return s.closeStream(type >>> 0);
    },
    proxy_send_local_response: (code: number, dPtr: number, dSize: number, bPtr: number, bSize: number, hPtr: number, hSize: number, grpc: number) => {
      const details = mem.readLatin1(dPtr, dSize);
      const body = mem.read(bPtr, bSize);
      const hdrs = mem.read(hPtr, hSize);
      if (details === null || !body || !hdrs) return R.InvalidMemoryAccess;
      const s = contexts.active().stream;
      if (s) s.sendLocalResponse(code >>> 0, details, body, parsePairs(hdrs), grpc | 0);
      vm.stopNextIteration();
      return R.Ok;
    },
  };
}
