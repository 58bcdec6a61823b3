// `prefix-router gateway --picker HOST:PORT` (or --endpoint-picker): the gateway in Endpoint Picker
// Protocol mode, in front of an ext_proc endpoint picker (`prefix-router picker`, the inference
// extension's, llm-d's) instead of the filter.
import { parseArgs } from 'node:util';
import { parseDestination } from '../gateway.js';
import { startPickerGateway, type FailureMode } from './pickerGateway.js';

const USAGE = `usage: prefix-router gateway --picker HOST:PORT [options]

Sends each request through an Endpoint Picker (an Envoy ext_proc gRPC server) as Envoy's ext_proc
filter does (FULL_DUPLEX_STREAMED), then to the endpoint it picks.

  --picker HOST:PORT            the picker's gRPC address (also --endpoint-picker); replicas of one
                                picker as IP:PORT,IP:PORT or dns:///NAME:PORT, round robin per request
  --failure-mode MODE           FailClose (default) or FailOpen
  --pool-endpoint IP:PORT       an endpoint of the pool, for FailOpen (repeatable)
  --message-timeout-ms N        how long one picker answer may take (default 10000)
  --no-response-processing      do not send responses through the picker
  --host ADDR                   listen address (default 127.0.0.1)
  --port N                      listen port (default 8080; 0 = any free port)
  --upstream-timeout-ms N       route timeout (default 15000)
  --access-log                  print one line per request
`;

export async function runPickerGatewayCli(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        'endpoint-picker': { type: 'string' }, picker: { type: 'string' }, 'failure-mode': { type: 'string' }, 'pool-endpoint': { type: 'string', multiple: true },
        'message-timeout-ms': { type: 'string' }, 'no-response-processing': { type: 'boolean' }, host: { type: 'string' },
        port: { type: 'string' }, 'upstream-timeout-ms': { type: 'string' }, 'access-log': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`prefix-router gateway: ${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
    return 2;
  }
  if (v.help) { process.stdout.write(USAGE); return 0; }
  const fail = (msg: string) => { process.stderr.write(`prefix-router gateway: ${msg}\n\n${USAGE}`); return 2; };
  if (v.picker !== undefined && v['endpoint-picker'] !== undefined) return fail('give --picker or --endpoint-picker, not both');
  const picker = v.picker ?? v['endpoint-picker'] ?? '';
  const one = /^[^\s:,]+:\d{1,5}$/.test(picker);
  const ipList = picker.split(',').every((x) => /^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(x.trim()));
  if (!(one || ipList || /^dns:\/\/\/[^\s,]+:\d{1,5}$/.test(picker))) {
    return fail(`--picker must be HOST:PORT, IP:PORT,IP:PORT,... or dns:///NAME:PORT; got '${picker}'`);
  }
  const failureMode = (v['failure-mode'] ?? 'FailClose') as FailureMode;
  if (failureMode !== 'FailClose' && failureMode !== 'FailOpen') return fail(`--failure-mode must be FailClose or FailOpen; got '${failureMode}'`);
  const pool = v['pool-endpoint'] ?? [];
  for (const p of pool) if (!parseDestination(p)) return fail(`--pool-endpoint must be IP:PORT; got '${p}'`);
  const int = (name: string, s: string | undefined, dflt: number, min: number) => {
    if (s === undefined) return dflt;
    if (!/^\d+$/.test(s) || Number(s) < min) throw new Error(`--${name} must be a whole number >= ${min}; got '${s}'`);
    return Number(s);
  };
  let port: number, messageTimeoutMs: number, upstreamTimeoutMs: number;
  try {
    port = int('port', v.port, 8080, 0);
    if (port > 65535) throw new Error(`--port must be 0..65535; got '${v.port}'`);
    messageTimeoutMs = int('message-timeout-ms', v['message-timeout-ms'], 10_000, 1);
    upstreamTimeoutMs = int('upstream-timeout-ms', v['upstream-timeout-ms'], 15_000, 1);
  } catch (e) {
    return fail((e as Error).message);
  }
  const host = v.host ?? '127.0.0.1';
  let gw;
  try {
    gw = await startPickerGateway({
      picker, failureMode, poolEndpoints: pool, messageTimeoutMs, upstreamTimeoutMs, processResponse: !v['no-response-processing'],
      listen: { host, port },
      onAccessLog: v['access-log'] ? (e) => process.stdout.write(`${e.method} ${e.path} ${e.status} ${e.endpoint ?? '-'} ${e.details} pick=${e.pickMs === null ? '-' : e.pickMs.toFixed(2) + 'ms'} ${e.durationMs.toFixed(1)}ms\n`) : undefined,
    });
  } catch (e) {
    process.stderr.write(`prefix-router gateway: cannot listen on ${host}:${port}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  process.stdout.write(`prefix-router gateway listening on ${gw.url} (endpoint picker ${picker}, ${failureMode})\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await gw.close();
  return 0;
}
