// The host's per-request fast paths keep the exact results of the plain ones: cached key
// decoding, memory views across growth, pooled copies, number timing, clock writes without BigInt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock, ProxyWasmHost, RealClock, SharedDataStore, WasmResult, serializePairs } from '../../host/index.js';
import { minimalModule } from './fixtures/build.js';
import { REQ } from './support.js';

const HEADER_IMPORTS = `
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))`;

/** A module whose on_request_headers is `body` (locals $i, $r; returns 0 = Continue). */
function onHeaders(body: string, data = '', imports = HEADER_IMPORTS): Uint8Array {
  return minimalModule(
    `${data}
     (func (export "proxy_on_context_create") (param i32 i32))
     (func (export "proxy_on_request_headers") (param $id i32) (param $n i32) (param $eos i32) (result i32) (local $i i32) (local $r i32)
       ${body}
       (i32.const 0))`,
    imports,
  );
}

async function withHost(wasm: Uint8Array, fn: (host: ProxyWasmHost) => void | Promise<void>, opts: Partial<Parameters<typeof ProxyWasmHost.create>[0]> = {}): Promise<void> {
  const host = await ProxyWasmHost.create({ wasm, workers: 1, sharedData: new SharedDataStore(), ...opts });
  try {
    await fn(host);
  } finally {
    await host.close();
  }
}

function requestHeadersAfter(host: ProxyWasmHost, extra: Array<[string, string]> = []): Array<[string, string]> {
  const s = host.newStream({ worker: 0 });
  s.requestHeaders([...REQ, ...extra], true);
  const list = s.requestHeaderList();
  s.complete();
  assert.equal(host.traps, 0);
  return list;
}


/** WAT: $fill stores byte $v at 4096..end-1 (the value a shared-data set then copies). */
const fillFunc = (end: number) => `(func $fill (param $v i32) (local $p i32)
       (local.set $p (i32.const 4096))
       (loop $l
         (i32.store8 (local.get $p) (local.get $v))
         (local.set $p (i32.add (local.get $p) (i32.const 1)))
         (br_if $l (i32.lt_u (local.get $p) (i32.const ${end})))))`;

test("header names from the module are lower-cased ASCII-only, as Envoy's LowerCaseString (a latin1 letter like 0xC0 stays)", async () => {
  const wasm = onHeaders(
    `(drop (call $add (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 2)))
     ;; read it back under a differently cased name: found (the value goes to 64/68)
     (local.set $r (call $get (i32.const 0) (i32.const 48) (i32.const 7) (i32.const 64) (i32.const 68)))
     (drop (call $add (i32.const 0) (i32.const 96) (i32.const 5) (i32.load (i32.const 64)) (i32.load (i32.const 68))))
     (i32.store8 (i32.const 128) (i32.add (i32.const 48) (local.get $r)))
     (drop (call $add (i32.const 0) (i32.const 112) (i32.const 8) (i32.const 128) (i32.const 1)))`,
    `(data (i32.const 16) "X-\\c0Up-Z") (data (i32.const 32) "v1") (data (i32.const 48) "x-\\c0uP-z")
     (data (i32.const 96) "x-got") (data (i32.const 112) "x-status")`,
  );
  await withHost(wasm, (host) => {
    const list = requestHeadersAfter(host);
    const added = list.filter(([k]) => k.startsWith('x-'));
    assert.deepEqual(added, [['x-\u00c0up-z', 'v1'], ['x-got', 'v1'], ['x-status', String(WasmResult.Ok)]]);
  });
});

test('a string read twice from the same address after the module changed the bytes is decoded afresh; 300 distinct values all come through', async () => {
  // Value at 32: "one" (written each time), added as x-a; then the module rewrites it to "two" and adds x-b from the same bytes.
  // Then 300 values "v" + 3 letters (more than the host's string cache holds) under x-k, in order.
  const wasm = onHeaders(
    `(i32.store8 (i32.const 32) (i32.const 111)) (i32.store8 (i32.const 33) (i32.const 110)) (i32.store8 (i32.const 34) (i32.const 101))
     (drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 32) (i32.const 3)))
     (i32.store8 (i32.const 32) (i32.const 116)) (i32.store8 (i32.const 33) (i32.const 119)) (i32.store8 (i32.const 34) (i32.const 111))
     (drop (call $add (i32.const 0) (i32.const 20) (i32.const 3) (i32.const 32) (i32.const 3)))
     (loop $l
       (i32.store8 (i32.const 41) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
       (i32.store8 (i32.const 42) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 26)) (i32.const 26))))
       (i32.store8 (i32.const 43) (i32.add (i32.const 97) (i32.div_u (local.get $i) (i32.const 676))))
       (drop (call $add (i32.const 0) (i32.const 24) (i32.const 3) (i32.const 40) (i32.const 4)))
       (local.set $i (i32.add (local.get $i) (i32.const 1)))
       (br_if $l (i32.lt_u (local.get $i) (i32.const 300))))`,
    `(data (i32.const 16) "x-a") (data (i32.const 20) "x-b") (data (i32.const 24) "x-k") (data (i32.const 32) "one") (data (i32.const 40) "v")`,
  );
  await withHost(wasm, (host) => {
    for (let round = 0; round < 2; round++) {
      const list = requestHeadersAfter(host);
      assert.deepEqual(list.filter(([k]) => k === 'x-a' || k === 'x-b'), [['x-a', 'one'], ['x-b', 'two']]);
      const expected = Array.from({ length: 300 }, (_, i) => 'v' + String.fromCharCode(97 + (i % 26), 97 + (Math.floor(i / 26) % 26), 97 + Math.floor(i / 676)));
      assert.deepEqual(list.filter(([k]) => k === 'x-k').map(([, v]) => v), expected);
    }
  });
});

test('after the module grows its memory, host functions read and write the new pages', async () => {
  const wasm = onHeaders(
    `(drop (call $add (i32.const 0) (i32.const 16) (i32.const 5) (i32.const 32) (i32.const 6)))
     (drop (memory.grow (i32.const 1)))
     ;; key and value in the new page (70000, 70016); the found value's pointer/size written at 70100/70104
     (i64.store (i32.const 70000) (i64.const 0x6e776f72672d78)) ;; "x-grown"
     (i32.store (i32.const 70016) (i32.const 0x67676962)) ;; "bigg"
     (drop (call $add (i32.const 0) (i32.const 70000) (i32.const 7) (i32.const 70016) (i32.const 4)))
     (local.set $r (call $get (i32.const 0) (i32.const 70000) (i32.const 7) (i32.const 70100) (i32.const 70104)))
     (drop (call $add (i32.const 0) (i32.const 48) (i32.const 5) (i32.load (i32.const 70100)) (i32.load (i32.const 70104))))`,
    `(data (i32.const 16) "x-old") (data (i32.const 32) "before") (data (i32.const 48) "x-got")`,
  );
  await withHost(wasm, (host) => {
    const list = requestHeadersAfter(host);
    assert.deepEqual(list.filter(([k]) => k.startsWith('x-')), [['x-old', 'before'], ['x-grown', 'bigg'], ['x-got', 'bigg']]);
    assert.equal(host.vm(0)!.memoryBytes(), 2 * 65536);
  });
});

test('shared-data values are copies: rewriting the module memory or writing other keys leaves them as written (small, pooled and large values)', async () => {
  const imports = '(import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))';
  const wasm = onHeaders(
    `(call $fill (i32.const 65))
     (drop (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 10) (i32.const 0)))
     (drop (call $set (i32.const 18) (i32.const 2) (i32.const 4096) (i32.const 100) (i32.const 0)))
     (drop (call $set (i32.const 20) (i32.const 2) (i32.const 4096) (i32.const 2000) (i32.const 0)))
     (call $fill (i32.const 66))
     (drop (call $set (i32.const 22) (i32.const 2) (i32.const 4096) (i32.const 10) (i32.const 0)))
     (drop (call $set (i32.const 24) (i32.const 2) (i32.const 4096) (i32.const 100) (i32.const 0)))
     (drop (call $set (i32.const 26) (i32.const 2) (i32.const 4096) (i32.const 2000) (i32.const 0)))
     (call $fill (i32.const 67))`,
    `(data (i32.const 16) "a1a2a3b1b2b3")
     ${fillFunc(7096)}`,
    imports,
  );
  const store = new SharedDataStore();
  await withHost(wasm, (host) => {
    requestHeadersAfter(host);
    const value = (k: string) => Buffer.from(store.get('prefix_router', k)!.value).toString('latin1');
    assert.deepEqual(['a1', 'a2', 'a3'].map(value), ['A'.repeat(10), 'A'.repeat(100), 'A'.repeat(2000)]);
    assert.deepEqual(['b1', 'b2', 'b3'].map(value), ['B'.repeat(10), 'B'.repeat(100), 'B'.repeat(2000)]);
    assert.deepEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3'].map((k) => store.get('prefix_router', k)!.cas), [1, 2, 3, 4, 5, 6]);
  }, { sharedData: store });
});

test('the restricted-mode check holds for host functions of every arity (5 and 10 arguments too)', async () => {
  const five = minimalModule(
    '(func $s (drop (call $g (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))) (export "_initialize" (func $s))',
    '(import "env" "proxy_get_shared_data" (func $g (param i32 i32 i32 i32 i32) (result i32)))',
  );
  await assert.rejects(ProxyWasmHost.create({ wasm: five, sharedData: new SharedDataStore(), onLog: () => {} }), /restricted_callback: env\.proxy_get_shared_data/);
  const ten = minimalModule(
    '(func $s (drop (call $h (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))) (export "_initialize" (func $s))',
    '(import "env" "proxy_http_call" (func $h (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))',
  );
  await assert.rejects(ProxyWasmHost.create({ wasm: ten, sharedData: new SharedDataStore(), onLog: () => {} }), /restricted_callback: env\.proxy_http_call/);
});

test('proxy_get_current_time_nanoseconds: a manual clock is written exactly (all 64 bits), the real clock as its own nowNs()', async () => {
  const imports = '(import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))';
  const wasm = onHeaders('(drop (call $now (i32.const 512)))', '', imports);
  const clock = new ManualClock(0xfedcba9876543210n);
  await withHost(wasm, (host) => {
    requestHeadersAfter(host);
    assert.equal(new DataView(host.vm(0)!.memory.buffer).getBigUint64(512, true), 0xfedcba9876543210n);
  }, { clock });
  const real = new RealClock();
  assert.equal(BigInt(real.nowNsNumber()) <= real.nowNs(), true);
  await withHost(wasm, (host) => {
    const before = real.nowNs();
    requestHeadersAfter(host);
    const after = real.nowNs();
    const written = new DataView(host.vm(0)!.memory.buffer).getBigUint64(512, true);
    assert.ok(written >= before && written <= after, `${written} within [${before}, ${after}]`);
  });
});

test('wasmNs is a bigint of the summed call times; hostNs counts host-function time only with timeHostCalls', async () => {
  const wasm = onHeaders(
    `(loop $l
       (drop (call $get (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 64) (i32.const 68)))
       (local.set $i (i32.add (local.get $i) (i32.const 1)))
       (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))`,
    '(data (i32.const 16) ":method")',
  );
  for (const timeHostCalls of [false, true]) {
    await withHost(wasm, (host) => {
      const s = host.newStream({ worker: 0 });
      s.requestHeaders(REQ, true);
      s.complete();
      assert.equal(typeof s.wasmNs, 'bigint');
      assert.ok(s.wasmNs > 0n);
      assert.equal(s.wasmNs, BigInt(Math.round(s.wasmNumberNs)));
      if (timeHostCalls) {
        assert.ok(s.hostNs > 0, 'host time counted');
        assert.ok(s.hostNs <= s.wasmNumberNs, 'host time is part of the time inside the module');
      } else {
        assert.equal(s.hostNs, 0);
      }
    }, { timeHostCalls });
  }
});

test('a body buffered from many chunks reaches the filter and the upstream whole and in order (held data grows in place)', async () => {
  const { probeHost } = await import('./support.js');
  const { host } = await probeHost({ workers: 1 });
  try {
    for (const [chunks, size] of [[100, 1000], [3, 70000]] as const) {
      const all = new Uint8Array(chunks * size);
      for (let i = 0; i < all.length; i++) all[i] = 97 + ((i * 7 + (i >> 10)) % 26);
      const s = host.newStream({ worker: 0 });
      assert.equal(s.requestHeaders([...REQ, ['x-probe', 'body=buffer']], false), 'stop');
      for (let c = 0; c < chunks; c++) s.requestBody(all.subarray(c * size, (c + 1) * size), c === chunks - 1);
      const list = s.requestHeaderList();
      assert.equal(list.find(([k]) => k === 'x-body-size')?.[1], String(all.length));
      assert.equal(list.find(([k]) => k === 'x-body')?.[1], Buffer.from(all.subarray(0, 40)).toString('latin1'));
      assert.deepEqual(Buffer.from(s.drainRequestData()), Buffer.from(all));
      s.complete();
    }
  } finally {
    await host.close();
  }
});

test('proxy_get_header_map_pairs writes the serialized map byte for byte as serializePairs builds it (short, long and latin1 values)', async () => {
  const imports = `(import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
    (import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))`;
  const wasm = onHeaders(
    `(local.set $r (call $pairs (i32.const 0) (i32.const 8) (i32.const 12)))
     (drop (call $set (i32.const 16) (i32.const 5) (i32.load (i32.const 8)) (i32.load (i32.const 12)) (i32.const 0)))`,
    '(data (i32.const 16) "pairs")',
    imports,
  );
  const store = new SharedDataStore();
  const extra: Array<[string, string]> = [['x-long', 'v'.repeat(300)], ['x-latin1', 'caf\u00e9'], ['x-empty', '']];
  await withHost(wasm, (host) => {
    const s = host.newStream({ worker: 0 });
    s.requestHeaders([...REQ, ...extra], true);
    const sent = s.requestHeaderList();
    s.complete();
    assert.equal(host.traps, 0);
    assert.deepEqual(Buffer.from(store.get('prefix_router', 'pairs')!.value), Buffer.from(serializePairs(sent)));
  }, { sharedData: store });
});

test('shared data written in place keeps the plain semantics: shorter/longer rewrites, CAS, values handed out by get() or in by set() stay as they were', async () => {
  const imports = `(import "env" "proxy_set_shared_data" (func $set (param i32 i32 i32 i32 i32) (result i32)))
    (import "env" "proxy_get_shared_data" (func $get (param i32 i32 i32 i32 i32) (result i32)))`;
  // The mode is the number of request headers beyond REQ's four.
  const wasm = onHeaders(
    `(local.set $i (i32.sub (local.get $n) (i32.const 4)))
     (if (i32.eqz (local.get $i)) (then
       (call $fill (i32.const 65))
       (drop (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 100) (i32.const 0)))
       (call $fill (i32.const 66))
       (drop (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 50) (i32.const 0)))
       ;; read k1 back (50 bytes of B) and store it as r1
       (drop (call $get (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 8)))
       (drop (call $set (i32.const 18) (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 0)))
       (call $fill (i32.const 67))
       (drop (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 200) (i32.const 0)))
       ;; a stale CAS (1) is refused and leaves C; the current CAS writes D in place
       (i32.store8 (i32.const 40) (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 10) (i32.const 1)))
       (drop (call $get (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 8)))
       (call $fill (i32.const 68))
       (i32.store8 (i32.const 41) (call $set (i32.const 16) (i32.const 2) (i32.const 4096) (i32.const 200) (i32.load (i32.const 8))))
       (drop (call $set (i32.const 20) (i32.const 2) (i32.const 40) (i32.const 2) (i32.const 0)))))
     (if (i32.eq (local.get $i) (i32.const 1)) (then
       (call $fill (i32.const 69))
       (drop (call $set (i32.const 22) (i32.const 2) (i32.const 4096) (i32.const 20) (i32.const 0)))))
     (if (i32.eq (local.get $i) (i32.const 2)) (then
       (call $fill (i32.const 70))
       (drop (call $set (i32.const 22) (i32.const 2) (i32.const 4096) (i32.const 20) (i32.const 0)))))
     (if (i32.eq (local.get $i) (i32.const 3)) (then
       (call $fill (i32.const 71))
       (drop (call $set (i32.const 24) (i32.const 2) (i32.const 4096) (i32.const 20) (i32.const 0)))))`,
    `(data (i32.const 16) "k1r1stk2k3")
     ${fillFunc(4296)}`,
    imports,
  );
  const store = new SharedDataStore();
  const text = (v: Uint8Array) => Buffer.from(v).toString('latin1');
  const pad = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) => [`x-pad-${i}`, '1']);
  await withHost(wasm, (host) => {
    requestHeadersAfter(host, pad(0));
    assert.equal(text(store.get('prefix_router', 'r1')!.value), 'B'.repeat(50));
    assert.equal(text(store.get('prefix_router', 'k1')!.value), 'D'.repeat(200));
    assert.deepEqual([...store.get('prefix_router', 'st')!.value], [WasmResult.CasMismatch, WasmResult.Ok]);
    assert.deepEqual(['k1', 'r1', 'st'].map((k) => store.get('prefix_router', k)!.cas), [5, 3, 6]);

    requestHeadersAfter(host, pad(1));
    const held = store.get('prefix_router', 'k2')!;
    assert.equal(text(held.value), 'E'.repeat(20));
    requestHeadersAfter(host, pad(2));
    assert.equal(text(held.value), 'E'.repeat(20), 'a value get() handed out is not written over');
    assert.equal(held.cas, 7);
    assert.equal(text(store.get('prefix_router', 'k2')!.value), 'F'.repeat(20));
    assert.equal(store.get('prefix_router', 'k2')!.cas, 8);

    const mine = new Uint8Array(20).fill(120);
    store.set('prefix_router', 'k3', mine, 0);
    requestHeadersAfter(host, pad(3));
    assert.deepEqual(mine, new Uint8Array(20).fill(120), 'a value given to set() is not written over');
    assert.equal(text(store.get('prefix_router', 'k3')!.value), 'G'.repeat(20));
  }, { sharedData: store });
});

test('cached strings: a long value changed in one middle byte or in its last byte at the same address reads as changed (30, 64 and 65 bytes)', async () => {
  const base = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+/_';
  const steps = [30, 64, 65].map((len) => `
     (drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 256) (i32.const ${len})))
     (i32.store8 (i32.const ${256 + 13}) (i32.const 90))
     (drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 256) (i32.const ${len})))
     (i32.store8 (i32.const ${256 + len - 1}) (i32.const 89))
     (drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 256) (i32.const ${len})))
     (call $restore)`).join('');
  const wasm = onHeaders(steps, `(data (i32.const 16) "x-v") (data (i32.const 256) "${base}") (data (i32.const 512) "${base}")
     (func $restore (local $i i32)
       (loop $l
         (i32.store8 (i32.add (i32.const 256) (local.get $i)) (i32.load8_u (i32.add (i32.const 512) (local.get $i))))
         (local.set $i (i32.add (local.get $i) (i32.const 1)))
         (br_if $l (i32.lt_u (local.get $i) (i32.const 65)))))`);
  await withHost(wasm, (host) => {
    for (let round = 0; round < 2; round++) {
      const got = requestHeadersAfter(host).filter(([k]) => k === 'x-v').map(([, v]) => v);
      const expected = [30, 64, 65].flatMap((len) => {
        const v = base.slice(0, len);
        const mid = v.slice(0, 13) + 'Z' + v.slice(14);
        return [v, mid, mid.slice(0, len - 1) + 'Y'];
      });
      assert.deepEqual(got, expected);
    }
  });
});

test('cached strings: 676 values of 30 bytes that differ only in their last two bytes all come through (slots shared, tails compared)', async () => {
  const head = 'x-gateway-destination-endpoi'; // 28 bytes, then two letters
  const wasm = onHeaders(
    `(loop $l
       (i32.store8 (i32.const 284) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
       (i32.store8 (i32.const 285) (i32.add (i32.const 97) (i32.div_u (local.get $i) (i32.const 26))))
       (drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 256) (i32.const 30)))
       (local.set $i (i32.add (local.get $i) (i32.const 1)))
       (br_if $l (i32.lt_u (local.get $i) (i32.const 676))))`,
    `(data (i32.const 16) "x-t") (data (i32.const 256) "${head}")`,
  );
  await withHost(wasm, (host) => {
    const expected = Array.from({ length: 676 }, (_, i) => head + String.fromCharCode(97 + (i % 26), 97 + Math.floor(i / 26)));
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(requestHeadersAfter(host).filter(([k]) => k === 'x-t').map(([, v]) => v), expected);
    }
  });
});

test('timeCalls: false leaves wasmNs and hostNs at 0 and changes nothing else; timeHostCalls without timeCalls is refused', async () => {
  const wasm = onHeaders(
    `(drop (call $add (i32.const 0) (i32.const 16) (i32.const 3) (i32.const 32) (i32.const 2)))`,
    '(data (i32.const 16) "x-a") (data (i32.const 32) "v1")',
  );
  const lists: Array<Array<[string, string]>> = [];
  for (const timeCalls of [true, false]) {
    await withHost(wasm, (host) => {
      const s = host.newStream({ worker: 0 });
      assert.equal(s.requestHeaders(REQ, true), 'continue');
      lists.push(s.requestHeaderList());
      s.complete();
      assert.equal(host.traps, 0);
      if (timeCalls) assert.ok(s.wasmNumberNs > 0);
      else assert.deepEqual([s.wasmNumberNs, s.wasmNs, s.hostNs], [0, 0n, 0]);
    }, { timeCalls });
  }
  assert.deepEqual(lists[1], lists[0]);
  assert.ok(lists[0].some(([k, v]) => k === 'x-a' && v === 'v1'));
  await assert.rejects(ProxyWasmHost.create({ wasm, sharedData: new SharedDataStore(), timeCalls: false, timeHostCalls: true }), /timeHostCalls needs timeCalls/);
});
