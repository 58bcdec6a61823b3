// `prefix-router weights get|set|profiles`: a small client of the weights API.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WEIGHT_MAX } from './stateWire.js';

const USAGE = `usage: prefix-router weights get [--url URL]
       prefix-router weights set (--profile NAME | [--prefix N] [--queue N] [--kv N] [--inflight N]) [--url URL] [--token-file FILE]
       prefix-router weights profiles [--url URL]

  --url URL          control plane (default http://127.0.0.1:9090, or env PREFIX_ROUTER_CONTROL_PLANE)
  --profile NAME     default (3/1/1/1), latency (5/1/1), throughput (1/3/2), capacity (1/1/5)
  --prefix/--queue/--kv/--inflight N
                     scorer weights (0 to 1e6, not all 0); the ones left out keep their value
  --token-file FILE  file holding the API token (else env PREFIX_ROUTER_API_TOKEN)`;

const DEFAULT_URL = 'http://127.0.0.1:9090';
/** A control plane that does not answer within this long is reported as unreachable. */
const REQUEST_TIMEOUT_MS = 10_000;

const NUMBER_FLAGS = new Set(['--prefix', '--queue', '--kv', '--inflight']);

/**
 * `--prefix -1` as `--prefix=-1`: parseArgs takes a value that starts with '-' for an option
 * ("argument is ambiguous"), and the range check below should be the one to answer.
 */
function joinNegativeNumbers(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (NUMBER_FLAGS.has(args[i]) && i + 1 < args.length && /^-[\d.]/.test(args[i + 1])) out.push(`${args[i]}=${args[++i]}`);
    else out.push(args[i]);
  }
  return out;
}

function fail(msg: string): number {
  console.error(`prefix-router weights: ${msg}`);
  return 2;
}

export async function runWeightsCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeNumbers(args), allowPositionals: true, strict: true,
      options: {
        url: { type: 'string' }, profile: { type: 'string' }, prefix: { type: 'string' }, queue: { type: 'string' },
        kv: { type: 'string' }, inflight: { type: 'string' }, 'token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message}\n${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) { console.log(USAGE); return 0; }
  const [action, ...extra] = positionals;
  if (!action) return fail(`missing action (get, set or profiles)\n${USAGE}`);
  if (extra.length) return fail(`unexpected argument '${extra[0]}'`);
  const base = (v.url ?? env.PREFIX_ROUTER_CONTROL_PLANE ?? DEFAULT_URL).replace(/\/+$/, '');
  try { new URL(base); } catch { return fail(`--url ${JSON.stringify(base)} is not a URL`); }

  const call = async (method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: unknown }> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    let json: unknown = text;
    try { json = JSON.parse(text); } catch { /* not JSON: shown as text */ }
    return { status: res.status, json };
  };
  const show = (r: { status: number; json: unknown }): number => {
    if (r.status >= 200 && r.status < 300) { console.log(JSON.stringify(r.json, null, 2)); return 0; }
    const err = (r.json as { error?: string; field?: string })?.error ?? JSON.stringify(r.json);
    console.error(`prefix-router weights: control plane answered ${r.status}: ${err}`);
    return 1;
  };

  try {
    if (action === 'get') return show(await call('GET', '/v1/weights'));
    if (action === 'profiles') return show(await call('GET', '/v1/weights/profiles'));
    if (action !== 'set') return fail(`unknown action '${action}' (get, set or profiles)`);
    const body: Record<string, unknown> = {};
    const numbers: Array<[string, string | undefined]> = [['prefix', v.prefix], ['queue', v.queue], ['kvCache', v.kv], ['inflight', v.inflight]];
    for (const [k, raw] of numbers) {
      if (raw === undefined) continue;
      const n = Number(raw);
      const flag = `--${k === 'kvCache' ? 'kv' : k}`;
      if (raw.trim() === '' || !Number.isFinite(n)) return fail(`${flag} must be a finite number (got ${JSON.stringify(raw)})`);
      if (n < 0) return fail(`${flag} must be >= 0 (got ${raw})`);
      if (n > WEIGHT_MAX) return fail(`${flag} must be <= ${WEIGHT_MAX} (got ${raw})`);
      body[k] = n;
    }
    if (v.profile !== undefined) {
      if (Object.keys(body).length) return fail('give --profile or weights (--prefix/--queue/--kv/--inflight), not both');
      body.profile = v.profile;
    }
    if (Object.keys(body).length === 0) return fail(`nothing to set\n${USAGE}`);
    let token: string | undefined;
    if (v['token-file']) {
      try { token = readFileSync(v['token-file'], 'utf8').trim(); } catch (e) { return fail(`cannot read --token-file ${v['token-file']}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    } else token = env.PREFIX_ROUTER_API_TOKEN?.trim() || undefined;
    return show(await call('PUT', '/v1/weights', body, token));
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
    const why = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (e as Error).message;
    console.error(`prefix-router weights: cannot reach the control plane at ${base}: ${why}`);
    return 1;
  }
}
