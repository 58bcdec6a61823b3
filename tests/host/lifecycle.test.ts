// Loading, call order, configuration rejection, import checks, traps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CANARY_WORKER, ProxyWasmHost, SharedDataStore, type LogEvent } from '../../host/index.js';
import { minimalModule, buildWat } from './fixtures/build.js';
import { REQ, header, probeHost, probeWasm } from './support.js';

test('call order: root create -> vm_start -> configure, then per stream create -> hooks -> done -> log -> delete, ids from one counter per VM', async () => {
  const { host, logs } = await probeHost({ workers: 2, pluginConfig: 'x=1' });
  try {
    const w0 = () => logs.filter((l) => l.worker === 0).map((l) => l.message);
    assert.deepEqual(w0(), ['create 1 0', 'vm_start 1 0', 'configure 1 3']);
    const s = host.newStream({ worker: 0 });
    assert.equal(s.requestHeaders([...REQ, ['content-length', '2']], false), 'continue');
    s.requestBody(new Uint8Array([104, 105]), true);
    s.responseHeaders([[':status', '200']], false);
    s.responseBody(new Uint8Array([1]), true);
    s.complete();
    const s2 = host.newStream({ worker: 0 });
    s2.requestHeaders(REQ, true);
    s2.complete();
    assert.deepEqual(w0().slice(3), [
      'create 2 1', 'request_headers 2 5 0', 'request_body 2 2 1', 'response_headers 2 1 0', 'response_body 2 1 1', 'done 2', 'log 2', 'delete 2',
      'create 3 1', 'request_headers 3 4 1', 'done 3', 'log 3', 'delete 3',
    ]);
    // Round-robin without a worker index.
    assert.deepEqual([host.newStream().worker, host.newStream().worker, host.newStream().worker], [0, 1, 0]);
  } finally {
    await host.close();
  }
});

test('a VM that rejects its configuration fails create() with a clear error, after its logs are delivered: the canary first, else worker 0', async () => {
  const logs: LogEvent[] = [];
  await assert.rejects(
    ProxyWasmHost.create({ wasm: await probeWasm(), pluginConfig: 'reject', sharedData: new SharedDataStore(), onLog: (e) => logs.push(e) }),
    /configuration canary: proxy_on_configure returned false \(configuration rejected\)/,
  );
  assert.deepEqual(logs.filter((l) => l.message === 'configuration rejected: probe told to').map((l) => l.worker), [CANARY_WORKER]);
  assert.ok(logs.every((l) => l.worker === CANARY_WORKER), 'no worker VM started');
  await assert.rejects(
    ProxyWasmHost.create({ wasm: await probeWasm(), pluginConfig: 'reject', canary: false, sharedData: new SharedDataStore(), onLog: () => {} }),
    /worker 0: proxy_on_configure returned false \(configuration rejected\)/,
  );
});

test('the configuration canary (cpp-host createWasm): configured first, then dropped without on_done/on_delete; what it wrote in shared data stays', async () => {
  const store = new SharedDataStore();
  const { host, logs } = await probeHost({ workers: 2, pluginConfig: 'number;tick=10;metrics', sharedData: store });
  try {
    const canary = logs.filter((l) => l.worker === CANARY_WORKER).map((l) => l.message);
    assert.deepEqual(canary.slice(0, 3), ['create 1 0', 'vm_start 1 0', 'configure 1 22']);
    assert.ok(canary.includes('vm number 1'), 'the canary took the first number');
    assert.deepEqual([0, 1].map((w) => logs.find((l) => l.worker === w && l.message.startsWith('vm number'))?.message), ['vm number 2', 'vm number 3']);
    assert.equal(Buffer.from(store.get('prefix_router', 'probe-vm-numbers')!.value).toString(), '3');
    host.tick();
    assert.ok(!logs.some((l) => l.worker === CANARY_WORKER && /^(tick|done|delete) /.test(l.message)), 'no tick, on_done or on_delete reached the canary');
  } finally {
    await host.close();
  }
  assert.equal(store.get('prefix_router', 'probe-vm-numbers'), null, "the vm_id's data goes with the host");
  const off = await probeHost({ workers: 1, pluginConfig: 'number', canary: false });
  try {
    assert.deepEqual(off.logs.filter((l) => l.message.startsWith('vm number')).map((l) => [l.worker, l.message]), [[0, 'vm number 1']]);
  } finally {
    await off.host.close();
  }
});

test('plugin configuration is readable only during proxy_on_configure; VM configuration any time', async () => {
  const { host } = await probeHost({ pluginConfig: 'hello', vmConfig: 'vmconf' });
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'conf']], true);
    assert.equal(header(s.requestHeaderList(), 'x-conf'), '1,0,vmconf');
    s.complete();
  } finally {
    await host.close();
  }
});

test('a module importing proxy_clear_route_cache fails to load, naming the import and why', async () => {
  const wasm = minimalModule('', '(import "env" "proxy_clear_route_cache" (func $c (result i32)))');
  await assert.rejects(ProxyWasmHost.create({ wasm, sharedData: new SharedDataStore() }), (e: Error) => {
    assert.match(e.message, /missing import: env\.proxy_clear_route_cache/);
    assert.match(e.message, /not a host function under Proxy-Wasm ABI 0\.2\.x/);
    return true;
  });
});

test('any unknown import fails instantiation naming it; proxy_get_log_level needs ABI 0.2.1', async () => {
  await assert.rejects(
    ProxyWasmHost.create({ wasm: minimalModule('', '(import "env" "proxy_make_coffee" (func $c (result i32)))'), sharedData: new SharedDataStore() }),
    /missing import: env\.proxy_make_coffee/,
  );
  await assert.rejects(
    ProxyWasmHost.create({ wasm: minimalModule('', '(import "env" "proxy_get_log_level" (func $c (param i32) (result i32)))'), sharedData: new SharedDataStore() }),
    /missing import: env\.proxy_get_log_level.*0_2_1/,
  );
});

test('ABI detection and malloc are required', async () => {
  const noAbi = buildWat('(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 8)))');
  await assert.rejects(ProxyWasmHost.create({ wasm: noAbi, sharedData: new SharedDataStore() }), /Missing or unknown Proxy-Wasm ABI version/);
  const noMalloc = buildWat('(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_0")))');
  await assert.rejects(ProxyWasmHost.create({ wasm: noMalloc, sharedData: new SharedDataStore() }), /missing malloc function/);
  await assert.rejects(ProxyWasmHost.create({ wasm: new Uint8Array([0, 1, 2]), sharedData: new SharedDataStore() }), /failed to compile/);
});

test('the start function runs with no context current (cpp-host links the instance before any exists): a host call there fails the VM, naming it', async () => {
  const log = '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))';
  // What an AssemblyScript abort in top-level code does: log, then exit.
  const aborting = minimalModule('(data (i32.const 16) "abort: bad") (func $s (drop (call $log (i32.const 4) (i32.const 16) (i32.const 10)))) (start $s)', log);
  const messages: string[] = [];
  await assert.rejects(ProxyWasmHost.create({ wasm: aborting, sharedData: new SharedDataStore(), onLog: (e) => messages.push(e.message) }), (e: Error) => {
    assert.match(e.message, /its start function/);
    assert.match(e.message, /env\.proxy_log called from the module's start function, where no context is current/);
    assert.match(e.message, /proxy-wasm-cpp-host dereferences a null context there/);
    return true;
  });
  assert.deepEqual(messages, [], 'nothing was logged as if a context were there');
  const tick = minimalModule('(func $s (drop (call $t (i32.const 5)))) (start $s)', '(import "env" "proxy_set_tick_period_milliseconds" (func $t (param i32) (result i32)))');
  await assert.rejects(ProxyWasmHost.create({ wasm: tick, sharedData: new SharedDataStore() }), /env\.proxy_set_tick_period_milliseconds called from the module's start function/);
  // Host functions that touch no context are fine there.
  const free = minimalModule('(func $s (drop (call $eq (i32.const 1) (i32.const 1)))) (start $s)', '(import "env" "pthread_equal" (func $eq (param i32 i32) (result i32)))');
  await (await ProxyWasmHost.create({ wasm: free, sharedData: new SharedDataStore(), workers: 1 })).close();
});

test('_initialize runs on the VM context in restricted mode: logging allowed, anything else restricted_callback', async () => {
  const tick = minimalModule('(func $s (drop (call $t (i32.const 5)))) (export "_initialize" (func $s))', '(import "env" "proxy_set_tick_period_milliseconds" (func $t (param i32) (result i32)))');
  await assert.rejects(ProxyWasmHost.create({ wasm: tick, sharedData: new SharedDataStore(), onLog: () => {} }), /restricted_callback: env\.proxy_set_tick_period_milliseconds/);
  const logs: string[] = [];
  const ok = minimalModule(
    `(data (i32.const 16) "init ran")
     (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 16) (i32.const 8))))`,
    '(import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))',
  );
  const host = await ProxyWasmHost.create({ wasm: ok, sharedData: new SharedDataStore(), workers: 1, canary: false, onLog: (e) => logs.push(e.message) });
  await host.close();
  assert.deepEqual(logs, ['init ran']);
});

test('a bad out-pointer gets INVALID_MEMORY_ACCESS (6), never a host crash', async () => {
  const { host } = await probeHost();
  try {
    const s = host.newStream();
    s.requestHeaders([...REQ, ['x-probe', 'badptr']], true);
    assert.equal(header(s.requestHeaderList(), 'x-badptr'), '6,6,6');
    assert.equal(host.traps, 0);
    s.complete();
  } finally {
    await host.close();
  }
});

test('a trap is reported with the wasm stack, counted, the VM replaced; the stream fails closed (503)', async () => {
  const traps: Array<{ worker: number; stack: string; function: string }> = [];
  const { host, logs } = await probeHost({ workers: 1, onTrap: (e) => traps.push(e) });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'trap']], true), 'local');
    assert.equal(s.localResponse!.status, 503);
    assert.equal(s.localResponse!.details, 'wasm_fail_stream');
    assert.equal(host.traps, 1);
    assert.equal(traps[0].function, 'proxy_on_request_headers');
    assert.match(traps[0].stack, /unreachable/);
    assert.match(traps[0].stack, /wasm-function\[\d+\]:0x[0-9a-f]+/);
    assert.match(traps[0].stack, /proxy_on_request_headers/);
    // Later callbacks of that stream do not reach the failed VM; completion skips on_done etc.
    assert.equal(s.responseHeaders([[':status', '200']], true), 'local');
    s.complete();
    // A fresh VM took over: new root context, configured again, serving new streams.
    const configures = logs.filter((l) => l.worker === 0 && l.message.startsWith('configure'));
    assert.equal(configures.length, 2);
    const s2 = host.newStream();
    assert.equal(s2.requestHeaders(REQ, true), 'continue');
    s2.complete();
    assert.equal(host.traps, 1);
  } finally {
    await host.close();
  }
});

test('fail open: a trapping filter lets the stream through unfiltered; proc_exit counts as a trap', async () => {
  const { host } = await probeHost({ workers: 1, failOpen: true });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'exit'], ['content-length', '3']], false), 'continue');
    assert.equal(s.localResponse, null);
    s.requestBody(new Uint8Array([1, 2, 3]), true);
    assert.deepEqual([...s.drainRequestData()], [1, 2, 3]);
    assert.equal(host.traps, 1);
    s.complete();
  } finally {
    await host.close();
  }
});

test('a trap inside a body callback after StopIteration fails closed with 503', async () => {
  const { host } = await probeHost({ workers: 1 });
  try {
    const s = host.newStream();
    assert.equal(s.requestHeaders([...REQ, ['x-probe', 'body=trap'], ['content-length', '2']], false), 'continue');
    assert.equal(s.requestBody(new Uint8Array([1, 2]), true), 'local');
    assert.equal(s.localResponse!.status, 503);
    s.complete();
  } finally {
    await host.close();
  }
});

test('@solo-io/proxy-runtime 0.1.8 onConfigure passes the size where a pointer is due: a faithful host writes there (corruption is visible)', async () => {
  // on_configure(root, size) calls proxy_get_buffer_bytes(7, 0, size, size, 512): the returned pointer is
  // written at address `size`, as cpp-host would, over whatever the module kept there (a canary here).
  const wasm = minimalModule(
    `(func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
       (i32.store (local.get $size) (i32.const 0x0C0FFEE0))
       (drop (call $gbb (i32.const 7) (i32.const 0) (local.get $size) (local.get $size) (i32.const 512)))
       (i32.const 1))`,
    '(import "env" "proxy_get_buffer_bytes" (func $gbb (param i32 i32 i32 i32 i32) (result i32)))',
  );
  const config = 'x'.repeat(300);
  const host = await ProxyWasmHost.create({ wasm, workers: 1, pluginConfig: config, sharedData: new SharedDataStore() });
  try {
    const mem = new DataView(host.vm(0)!.memory.buffer);
    const written = mem.getUint32(300, true);
    assert.notEqual(written, 0x0c0ffee0, 'the canary at address 300 was overwritten');
    assert.equal(written, 1024, 'with the pointer the allocator returned for the configuration copy');
    assert.equal(mem.getUint32(512, true), 300);
  } finally {
    await host.close();
  }
});
