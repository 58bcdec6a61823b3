// The module's imports: every host-function family, each function behind its own compiled
// wrapper (cpp-host's restricted-mode check, and the host-call timing when asked for), and a
// clear error for any import the host does not provide (Envoy refuses to load such a module).
import type { WasmVm } from '../wasmVm.js';
import { bufferFunctions } from './buffers.js';
import { generalFunctions } from './general.js';
import { headerFunctions } from './headers.js';
import type { HostFn, HostFunctions } from './hostFunction.js';
import { httpCallFunctions } from './httpCalls.js';
import { metricFunctions } from './metrics.js';
import { propertyFunctions } from './properties.js';
import { sharedDataFunctions } from './sharedData.js';
import { streamControlFunctions } from './streamControl.js';
import { wasiFunctions } from './wasi.js';

/** A bound clock read: a double, no allocation (process.hrtime.bigint() makes a BigInt per read). */
const nowMs = performance.now.bind(performance);

type GuardFactory = (vm: WasmVm, fn: HostFn, full: string, now: () => number) => HostFn;
const guardFactories = new Map<string, GuardFactory>();

/**
 * Makes the wrapper every host function sits behind: cpp-host's restricted-mode check, and with
 * `timed` the host-call timing (outermost host call only; see WasmVm.alloc for malloc inside).
 * Each import gets its own compiled wrapper (its name is in the source), so the call to `fn`
 * inside has one target and V8 inlines it; a wrapper shared by many imports (closures of one
 * function) makes that call megamorphic, a real share of the host's time per request. The
 * source is fixed text plus an identifier made from the import's name; made once per process.
 * The wrapper reads the VM's restricted, hostDepth, checkRestricted and addHostMs.
 */
function guardFactory(full: string, arity: number, timed: boolean): GuardFactory {
  const key = `${full}/${arity}/${timed ? 1 : 0}`;
  let f = guardFactories.get(key);
  if (f === undefined) {
    const name = `guarded_${full.replace(/[^A-Za-z0-9_]/g, '_')}`;
    const params = Array.from({ length: arity }, (_, i) => `a${i}`).join(', ');
    const body = timed
      ? `if (vm.restricted !== null) vm.checkRestricted(full);
         if (vm.hostDepth++ !== 0) { try { return fn(${params}); } finally { vm.hostDepth--; } }
         const t0 = now();
         try { return fn(${params}); } finally { vm.hostDepth--; vm.addHostMs(now() - t0); }`
      : `if (vm.restricted !== null) vm.checkRestricted(full);
         return fn(${params});`;
    f = new Function('vm', 'fn', 'full', 'now', `'use strict'; return function ${name}(${params}) { ${body} };`) as GuardFactory;
    guardFactories.set(key, f);
  }
  return f;
}

function guardAll(vm: WasmVm, mod: string, table: HostFunctions): HostFunctions {
  const out: HostFunctions = {};
  for (const [name, fn] of Object.entries(table)) {
    const full = `${mod}.${name}`;
    out[name] = guardFactory(full, fn.length, vm.timeHostCalls)(vm, fn, full, nowMs);
  }
  return out;
}

/** The import object for `module` on `vm`; throws naming the first import the host does not provide. */
export function buildImports(vm: WasmVm, module: WebAssembly.Module): WebAssembly.Imports {
  const env: HostFunctions = {
    ...generalFunctions(vm),
    ...propertyFunctions(vm),
    ...headerFunctions(vm),
    ...bufferFunctions(vm),
    ...streamControlFunctions(vm),
    ...sharedDataFunctions(vm),
    ...metricFunctions(vm),
    ...httpCallFunctions(vm),
  };
  if (vm.abi === '0.2.0') delete env.proxy_get_log_level; // cpp-host registers it for ABI 0.2.1 only
  const wasi = wasiFunctions(vm);
  const tables: Record<string, HostFunctions> = {
    env: guardAll(vm, 'env', env),
    wasi_snapshot_preview1: guardAll(vm, 'wasi_snapshot_preview1', wasi),
    wasi_unstable: guardAll(vm, 'wasi_unstable', wasi),
  };
  for (const imp of WebAssembly.Module.imports(module)) {
    const full = `${imp.module}.${imp.name}`;
    if (imp.kind !== 'function' || !tables[imp.module] || !(imp.name in tables[imp.module])) {
      let why = '';
      if (full === 'env.proxy_clear_route_cache') {
        why = ' (proxy_clear_route_cache is not a host function under Proxy-Wasm ABI 0.2.x; Envoy clears the route cache itself when a filter changes request headers)';
      } else if (full === 'env.proxy_get_log_level') {
        why = ' (proxy_get_log_level exists only for modules exporting proxy_abi_version_0_2_1)';
      } else if (imp.kind === 'memory' && imp.module === 'env') {
        why = ' (this host needs the module to export its own memory)';
      }
      throw new Error(`Failed to load Wasm module due to a missing import: ${full}${why}`);
    }
  }
  return tables;
}
