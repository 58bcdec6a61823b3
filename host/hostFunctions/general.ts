// Logging, time, ticks, the status of the last call, effective context, foreign functions
// (cpp-host src/exports.cc: log, get_log_level, get_status, set_tick_period_milliseconds,
// get_current_time_nanoseconds, set_effective_context, done, call_foreign_function).
import { LOG_LEVEL_MAX, WasmResult as R } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function generalFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const contexts = vm.contexts;
  const owner = vm.owner;
  const logLevel = vm.logLevel;
  const clock = vm.clock;
  return {
    proxy_log: (level: number, ptr: number, size: number) => {
      if (level >>> 0 > LOG_LEVEL_MAX) return R.BadArgument;
      if (!mem.inBounds(ptr, size)) return R.InvalidMemoryAccess;
      // Below the log level the message is not even decoded (Envoy's ENVOY_LOG checks the level first).
      if (level >= logLevel) owner.log(level, mem.utf8(ptr, size));
      return R.Ok;
    },
    proxy_get_log_level: (ptr: number) => (mem.writeU32(ptr, logLevel) ? R.Ok : R.InvalidMemoryAccess),
    proxy_get_status: (codePtr: number, ptrPtr: number, sizePtr: number) => {
      const status = contexts.status;
      if (!mem.writeU32(codePtr, status.code)) return R.InvalidMemoryAccess;
      return mem.copyOutLatin1(status.message, ptrPtr, sizePtr) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_set_tick_period_milliseconds: (ms: number) => {
      owner.setTickPeriod(vm, ms >>> 0);
      return R.Ok;
    },
    proxy_get_current_time_nanoseconds: (ptr: number) => (mem.writeNowNs(ptr, clock) ? R.Ok : R.InvalidMemoryAccess),
    proxy_set_effective_context: (id: number) => (contexts.setEffective(id >>> 0) ? R.Ok : R.BadArgument),
    proxy_done: () => R.NotFound, // nothing is ever pending done here: root on_done's answer is not waited on
    proxy_call_foreign_function: (namePtr: number, nameSize: number, argPtr: number, argSize: number) => {
      if (!mem.inBounds(namePtr, nameSize) || !mem.inBounds(argPtr, argSize)) return R.InvalidMemoryAccess;
      return R.NotFound; // no foreign functions are registered (Envoy registers a few of its own)
    },
    pthread_equal: (a: number, b: number) => (a === b ? 1 : 0),
    emscripten_notify_memory_growth: () => {},
  };
}
