// Bundles the TypeScript side into dist/ with esbuild, runnable with plain node and, as package.json's
// bin, as a program: the entry keeps cli/prefix-router.ts's #! line and is made executable.
import { chmodSync } from 'node:fs';
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
chmodSync('dist/prefix-router.js', 0o755);
