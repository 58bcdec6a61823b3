// A picker on loopback with the real filter, and an ext_proc client that talks to it as Envoy's
// ext_proc filter does: one Process stream per request, messages in the proxy's order, each
// answer awaited with a message timeout (Envoy's message_timeout), the stream cancelled as a
// reset would.
import * as grpc from '@grpc/grpc-js';
import { ProxyWasmHost, type HostOptions } from '../../host/index.js';
import {
  BodySendMode, ExtProcClientConstructor, headerValueOf, toHeaderMap,
  type ExtProcClient, type HeaderMutation, type ProcessingRequest, type ProcessingResponse,
} from '../../host/endpointPicker/protocol.js';
import { metadataEndpoints } from '../../host/endpointPicker/pickerGateway.js';
import { startPicker, type PickerOptions, type RunningPicker } from '../../picker/server.js';
import { withPickerDefaults } from '../../picker/main.js';
import { wasm } from '../filter/support.js';

export { BodySendMode, metadataEndpoints };

export interface PickerUnderTest {
  host: ProxyWasmHost;
  picker: RunningPicker;
  client: ExtProcClient;
  close(): Promise<void>;
}

export async function startTestPicker(config: object, opts: Partial<PickerOptions> = {}, hostOpts: Partial<HostOptions> = {}): Promise<PickerUnderTest> {
  const host = await ProxyWasmHost.create({ wasm, workers: 2, pluginConfig: withPickerDefaults(JSON.stringify(config)), logLevel: 'warn', ...hostOpts });
  const picker = await startPicker({ host, port: 0, healthPort: 0, metricsPort: 0, ...opts });
  const client = new ExtProcClientConstructor(picker.address, grpc.credentials.createInsecure());
  return {
    host, picker, client,
    close: async () => {
      client.close();
      await picker.close(100);
      await host.close();
    },
  };
}

/** One request's ext_proc stream, driven as Envoy drives it. */
export class ProxyStream {
  readonly call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
  private readonly queue: ProcessingResponse[] = [];
  private waiting: ((m: ProcessingResponse | Error) => void) | null = null;
  error: grpc.ServiceError | null = null;
  ended = false;

  constructor(client: ExtProcClient) {
    this.call = client.Process();
    this.call.on('data', (m: ProcessingResponse) => {
      if (this.waiting) { const w = this.waiting; this.waiting = null; w(m); } else this.queue.push(m);
    });
    this.call.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      if (this.waiting) { const w = this.waiting; this.waiting = null; w(e); }
    });
    this.call.on('end', () => { this.ended = true; });
  }

  send(m: ProcessingRequest): void {
    this.call.write(m);
  }

  headers(pairs: [string, string][], endOfStream: boolean, mode?: { request?: number; response?: number }, metadata?: ProcessingRequest['metadata_context']): void {
    this.send({
      request_headers: { headers: toHeaderMap(pairs), end_of_stream: endOfStream },
      ...(mode ? { protocol_config: { request_body_mode: mode.request ?? BodySendMode.FULL_DUPLEX_STREAMED, response_body_mode: mode.response ?? BodySendMode.NONE } } : {}),
      ...(metadata ? { metadata_context: metadata } : {}),
    });
  }

  body(chunk: string | Buffer, endOfStream: boolean): void {
    this.send({ request_body: { body: Buffer.from(chunk), end_of_stream: endOfStream } });
  }

  /** The next answer, or an Error when none came within `timeoutMs` (Envoy's message_timeout) or the stream failed. */
  next(timeoutMs = 2000): Promise<ProcessingResponse> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting = null; reject(new Error(`no ext_proc answer within ${timeoutMs} ms`)); }, timeoutMs);
      this.waiting = (m) => { clearTimeout(t); if (m instanceof Error) reject(m); else resolve(m); };
    });
  }

  /** No answer arrives within `ms`. */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch (e) {
      return (e as Error).message.startsWith('no ext_proc answer');
    }
  }

  finish(): void {
    this.call.end();
  }
  reset(): void {
    this.call.cancel();
  }
}

/** The value a HeaderMutation sets for `key`, if it sets one. */
export function setValue(m: HeaderMutation | undefined, key: string): string | undefined {
  const h = m?.set_headers?.find((o) => o.header?.key === key)?.header;
  return h ? headerValueOf(h) : undefined;
}

export function completionBody(prompt: string): string {
  return JSON.stringify({ model: 'qwen', prompt, max_tokens: 8 });
}

export const POST_HEADERS: [string, string][] = [[':method', 'POST'], [':path', '/v1/completions'], [':authority', 'gw'], [':scheme', 'http'], ['content-type', 'application/json']];

/** Waits until `cond` holds (polling), or throws after `ms`. */
export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}
