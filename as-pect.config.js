// as-pect specs for the AssemblyScript units live in tests/assembly/.
export default {
  entries: ['tests/assembly/**/*.spec.ts'],
  include: ['tests/assembly/**/*.include.ts'],
  disclude: [/node_modules/],
  async instantiate(memory, createImports, instantiate, binary) {
    // Units under spec never reach the proxy: a proxy-wasm import the module
    // links (through code a spec does not run) fails the spec if it is called.
    // A spec that exports `specHostAlloc` (the module's hostAlloc) gets shared
    // data instead: an in-memory key-value store with CAS, as cpp-host's
    // (get: value and cas, NOT_FOUND when absent; set: CAS_MISMATCH unless the
    // cas is 0 or current).
    const env = { memory };
    const mod = new WebAssembly.Module(binary);
    const sharesData = WebAssembly.Module.exports(mod).some((e) => e.name === 'specHostAlloc');
    let exports = null;
    const store = new Map();
    let nextCas = 1;
    const buf = () => (exports.memory ?? memory).buffer;
    const mem = () => new Uint8Array(buf());
    const key = (p, n) => Buffer.from(mem().subarray(p, p + n)).toString('latin1');
    const shared = {
      proxy_get_shared_data(kp, kl, outPtr, outSize, casPtr) {
        const e = store.get(key(kp, kl));
        if (!e) return 1;
        const at = exports.specHostAlloc(e.value.length);
        mem().set(e.value, at);
        const dv = new DataView(buf());
        dv.setUint32(outPtr, at, true);
        dv.setUint32(outSize, e.value.length, true);
        dv.setUint32(casPtr, e.cas, true);
        return 0;
      },
      proxy_set_shared_data(kp, kl, vp, vl, cas) {
        const k = key(kp, kl);
        const e = store.get(k);
        if (cas !== 0 && (!e || e.cas !== cas)) return 8;
        store.set(k, { value: mem().slice(vp, vp + vl), cas: nextCas++ });
        return 0;
      },
    };
    for (const i of WebAssembly.Module.imports(mod)) {
      if (i.module === 'env' && i.name.startsWith('proxy_')) {
        env[i.name] = sharesData && shared[i.name] ? shared[i.name] : () => { throw new Error(`${i.name} called from a spec`); };
      }
    }
    const instance = await instantiate(binary, createImports({ env }));
    exports = instance.exports;
    return instance;
  },
  outputBinary: false,
};
