// The module's start code runs at instantiation, when no context is current:
// cpp-host's proxy_log acts on the current context, so a host call then can
// crash the proxy (under WAMR) instead of failing the VM. An abort there must
// trap without calling the host; an abort later still says where it happened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import binaryen from 'binaryen';
import { wasm } from './support.js';

/** Instantiates `bytes` with every import a function that records its calls (proxy_log's level too). */
async function instantiate(bytes: Uint8Array<ArrayBuffer>): Promise<{ calls: string[]; instance?: WebAssembly.Instance; error?: unknown }> {
  const calls: string[] = [];
  const imports: Record<string, Record<string, (...args: number[]) => number>> = {};
  for (const i of WebAssembly.Module.imports(new WebAssembly.Module(bytes))) {
    if (i.kind !== 'function') continue;
    (imports[i.module] ??= {})[i.name] = (...args: number[]) => {
      calls.push(i.name === 'proxy_log' ? `proxy_log(${args[0]})` : i.name);
      return 0;
    };
  }
  try {
    const instance = await WebAssembly.instantiate(new WebAssembly.Module(bytes), imports);
    return { calls, instance };
  } catch (error) {
    return { calls, error };
  }
}

/** The module with a call to its abort handler placed first in its start function. */
function abortingAtStart(): Uint8Array<ArrayBuffer> {
  const m = binaryen.readBinary(wasm);
  // The features the build enables (package.json build:wasm), so the binary reads back as it was.
  const f = binaryen.Features;
  m.setFeatures(f.MVP | f.BulkMemory | f.BulkMemoryOpt | f.SignExt | f.NontrappingFPToInt | f.MutableGlobals);
  const text = m.emitText();
  const start = /\(start \$([^)\s]+)\)/.exec(text)?.[1];
  const abort = /\(export "abortHandler" \(func \$([^)\s]+)\)\)/.exec(text)?.[1];
  assert.ok(start && abort, 'the module has a start function and exports abortHandler');
  const fn = binaryen.getFunctionInfo(m.getFunction(start));
  const zero = () => m.i32.const(0);
  const body = m.block(null, [m.call(abort, [zero(), zero(), zero(), zero()], binaryen.none), fn.body], fn.results);
  m.removeFunction(start);
  m.addFunction(start, fn.params, fn.results, fn.vars, body);
  assert.ok(m.validate(), 'the instrumented module validates');
  const out = new Uint8Array(m.emitBinary());
  m.dispose();
  return out;
}

test('an abort in the start code traps without calling the host', async () => {
  const { calls, error } = await instantiate(abortingAtStart());
  assert.ok(error instanceof WebAssembly.RuntimeError, `instantiation should trap; got ${String(error)}`);
  assert.deepEqual(calls, []);
});

test('the start code calls no host function, and an abort after it is logged as critical', async () => {
  const { calls, instance, error } = await instantiate(new Uint8Array(wasm));
  assert.equal(error, undefined);
  assert.deepEqual(calls, []);
  const abort = instance!.exports.abortHandler as (...a: number[]) => void;
  assert.throws(() => abort(0, 0, 0, 0), WebAssembly.RuntimeError);
  assert.deepEqual(calls, ['proxy_log(5)']);
});
