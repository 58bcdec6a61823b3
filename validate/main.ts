// `npm run validate`: checks envoy/, manifests/ and plugin/ with no cluster and
// no Envoy (see validate/repo.ts). Prints every finding as
// `file: path: message` and exits 1 if there is any.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFinding } from './finding.js';
import { validateRepo } from './repo.js';
import { toolArgs } from '../cli/toolArgs.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run validate -- [options] [DIR]
  DIR          the checkout to check (default: this one)
  --verbose    also list every check made
  --json       one JSON line: {"checks": [...], "findings": [{"file", "path", "message"}]}
  --help
Exits 0 when there is no finding, 1 when there is one, 2 on a bad command line.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals, fail } = toolArgs('validate', USAGE, { verbose: { type: 'boolean' }, json: { type: 'boolean' } }, true, argv);
  if (positionals.length > 1) fail(`one directory at most, got ${positionals.length}`);
  const root = positionals.length ? path.resolve(positionals[0]) : REPO_ROOT;
  if (!existsSync(path.join(root, 'plugin/config.schema.json'))) {
    console.error(`validate: ${root} is not a prefix-router checkout (no plugin/config.schema.json)`);
    return 2;
  }
  const { findings, checked } = await validateRepo(root);
  if (values.json) {
    console.log(JSON.stringify({ checks: checked, findings }));
  } else {
    if (values.verbose) for (const line of checked) console.log(`checked ${line}`);
    for (const f of findings) console.error(formatFinding(f));
    console.log(`validate: ${checked.length} checks, ${findings.length} finding${findings.length === 1 ? '' : 's'}`);
  }
  return findings.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
  console.error(`validate: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 2;
});
