// Shared helpers for the host tests: the probe fixture and a host around it.
import { ProxyWasmHost, type HostOptions, type LogEvent, SharedDataStore } from '../../host/index.js';
import { buildAs } from './fixtures/build.js';

let probe: Promise<Uint8Array> | null = null;
export function probeWasm(): Promise<Uint8Array> {
  return (probe ??= buildAs('probe'));
}

export async function probeHost(opts: Partial<HostOptions> = {}): Promise<{ host: ProxyWasmHost; logs: LogEvent[] }> {
  const logs: LogEvent[] = [];
  const host = await ProxyWasmHost.create({
    wasm: await probeWasm(),
    workers: 2,
    logLevel: 'debug',
    sharedData: new SharedDataStore(),
    onLog: (e) => logs.push(e),
    ...opts,
  });
  return { host, logs };
}

export const REQ: Array<[string, string]> = [[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], [':scheme', 'http']];

export function header(list: Array<[string, string]>, k: string): string | undefined {
  return list.find(([hk]) => hk === k)?.[1];
}

export function headersAll(list: Array<[string, string]>, k: string): string[] {
  return list.filter(([hk]) => hk === k).map(([, v]) => v);
}

export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
