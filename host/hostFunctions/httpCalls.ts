// proxy_http_call (cpp-host src/exports.cc http_call, always on the root context) and the gRPC
// calls, which no configured service answers here.
import { WasmResult as R, parsePairs } from '../abi.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function httpCallFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const owner = vm.owner;
  const fns: HostFunctions = {
    proxy_http_call: (uPtr: number, uSize: number, hPtr: number, hSize: number, bPtr: number, bSize: number, tPtr: number, tSize: number, timeoutMs: number, tokenPtr: number) => {
      const cluster = mem.readLatin1(uPtr, uSize);
      const body = mem.read(bPtr, bSize);
      const hdrs = mem.read(hPtr, hSize);
      const trls = mem.read(tPtr, tSize);
      if (cluster === null || !body || !hdrs || !trls) return R.InvalidMemoryAccess;
      const headers = parsePairs(hdrs).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      const trailers = parsePairs(trls).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
      // cpp-host writes the token slot first to prove it is writable before starting anything.
      if (!mem.writeU32(tokenPtr, 0)) return R.InvalidMemoryAccess;
      if ((timeoutMs | 0) < 0) return R.BadArgument;
      if (!owner.hasCluster(cluster)) return R.BadArgument; // Envoy: no such thread-local cluster
      const has = (k: string) => headers.some(([hk]) => hk === k);
      if (!has(':path') || !has(':method') || !has(':authority')) return R.BadArgument;
      const token = vm.startHttpCall({ cluster, headers, body, trailers, timeoutMs: timeoutMs >>> 0 });
      if (token === null) return R.InternalFailure;
      mem.writeU32(tokenPtr, token);
      return R.Ok;
    },
  };
  for (const g of ['grpc_call', 'grpc_stream', 'grpc_cancel', 'grpc_close', 'grpc_send']) fns[`proxy_${g}`] = () => R.Unimplemented;
  return fns;
}
