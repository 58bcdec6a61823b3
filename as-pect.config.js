// as-pect specs for the AssemblyScript units live in tests/assembly/.
export default {
  entries: ['tests/assembly/**/*.spec.ts'],
  include: ['tests/assembly/**/*.include.ts'],
  disclude: [/node_modules/],
  async instantiate(memory, createImports, instantiate, binary) {
    // Units under spec never reach the proxy: a proxy-wasm import the module
    // links (through code a spec does not run) fails the spec if it is called.
    const env = { memory };
    for (const i of WebAssembly.Module.imports(new WebAssembly.Module(binary))) {
      if (i.module === 'env' && i.name.startsWith('proxy_')) {
        env[i.name] = () => { throw new Error(`${i.name} called from a spec`); };
      }
    }
    return instantiate(binary, createImports({ env }));
  },
  outputBinary: false,
};
