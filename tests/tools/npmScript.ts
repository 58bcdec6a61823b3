// Runs an npm script's command as `npm run NAME -- ARGS` would, without npm and its
// pre-script (the build `npm test` has already made): the command line is read from
// package.json, so a test exercises the entry point users run, whatever it is.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The node arguments of script `name` ("node --import tsx bench/x.ts" -> ["--import", "tsx", "bench/x.ts"]). */
export function scriptArgs(name: string): string[] {
  const scripts = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
  const line = scripts[name];
  if (line === undefined) throw new Error(`package.json has no script '${name}'`);
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (cmd !== 'node' || args.some((a) => /[&|;<>$"'`]/.test(a))) throw new Error(`script '${name}' is not a plain node command: ${line}`);
  return args;
}

export interface ScriptRun { code: number | null; stdout: string; stderr: string }

/** Runs script `name` with `args` from the repository root (environment `env`); resolves when it exits (killed after `timeoutMs`). */
export function runScript(name: string, args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = process.env): Promise<ScriptRun> {
  const child = spawn(process.execPath, [...scriptArgs(name), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}
