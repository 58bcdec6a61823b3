// Metrics (cpp-host src/exports.cc define_metric, increment_metric, record_metric, get_metric):
// ids carry the type in their low two bits and advance by 4 per type, as Envoy's; the host
// keeps the values, shared by every VM that defines the same name (Envoy's stats store).
import { METRIC_ID_INCREMENT, METRIC_TYPE_MASK, MetricType, WasmResult as R } from '../abi.js';
import type { MetricHandle, WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

export function metricFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const owner = vm.owner;
  const byId = new Map<number, MetricHandle>();
  const lastId = [MetricType.Counter, MetricType.Gauge, MetricType.Histogram] as number[];
  return {
    proxy_define_metric: (type: number, nPtr: number, nSize: number, idPtr: number) => {
      const name = mem.readLatin1(nPtr, nSize);
      if (name === null) return R.InvalidMemoryAccess;
      type >>>= 0;
      if (type > MetricType.Histogram) return R.BadArgument;
      lastId[type] = (lastId[type] + METRIC_ID_INCREMENT) >>> 0;
      const id = lastId[type];
      byId.set(id, owner.defineMetric(type, name));
      return mem.writeU32(idPtr, id) ? R.Ok : R.InvalidMemoryAccess;
    },
    proxy_increment_metric: (id: number, offset: bigint) => {
      id >>>= 0;
      const type = id & METRIC_TYPE_MASK;
      const m = byId.get(id);
      if (type === MetricType.Counter) {
        if (!m) return R.NotFound;
        if (offset <= 0n) return R.BadArgument;
        m.add(offset);
        return R.Ok;
      }
      if (type === MetricType.Gauge) {
        if (!m) return R.NotFound;
        m.add(offset);
        return R.Ok;
      }
      return R.BadArgument;
    },
    proxy_record_metric: (id: number, value: bigint) => {
      id >>>= 0;
      const m = byId.get(id);
      if (!m) return R.NotFound;
      const type = id & METRIC_TYPE_MASK;
      const v = BigInt.asUintN(64, value);
      if (type === MetricType.Counter) m.add(v);
      else if (type === MetricType.Gauge) m.set(v);
      else m.record(v);
      return R.Ok;
    },
    proxy_get_metric: (id: number, resultPtr: number) => {
      id >>>= 0;
      const type = id & METRIC_TYPE_MASK;
      if (type === MetricType.Histogram || type === 3) return R.BadArgument;
      const m = byId.get(id);
      if (!m) return R.NotFound;
      return mem.writeU64(resultPtr, m.get()) ? R.Ok : R.InvalidMemoryAccess;
    },
  };
}
