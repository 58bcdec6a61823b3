// Bundles the TypeScript side into dist/ with esbuild, runnable with plain node.
import { build } from 'esbuild';

await build({
  entryPoints: { 'prefix-router': 'cli/prefix-router.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  splitting: true,
  logLevel: 'warning',
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
