// `npm run validate`: checks envoy/, manifests/ and plugin/ with no cluster and
// no Envoy (see tests/validate/repo.ts). Prints every finding as
// `file: path: message` and exits 1 if there is any.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFinding } from './finding.js';
import { validateRepo } from './repo.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function main(): Promise<number> {
  const dirArg = process.argv.slice(2).find((a) => !a.startsWith('--'));
  const root = dirArg ? path.resolve(dirArg) : REPO_ROOT;
  const verbose = process.argv.includes('--verbose');
  const { findings, checked } = await validateRepo(root);
  if (verbose) for (const line of checked) console.log(`checked ${line}`);
  for (const f of findings) console.error(formatFinding(f));
  console.log(`validate: ${checked.length} checks, ${findings.length} finding${findings.length === 1 ? '' : 's'}`);
  return findings.length === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  console.error(`validate: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 2;
});
