// Each replica's context length, for state section 17 (contextSection.ts):
// vLLM and SGLang list their models at /v1/models, each with max_model_len,
// and refuse a request whose prompt and max_tokens pass it (HTTP 400). Read
// when a replica is first scraped, again every refreshMs, and as soon as its
// scrapes recover from failing (a restarted engine may run another length).
// A replica that lists none is unknown, and the filter routes as before; one
// whose read fails keeps what was read last and is tried again at the next
// refresh.
import { MAX_CONTEXT_TOKENS } from './contextSection.js';

export const MODEL_INFO_PATH = '/v1/models';
export const MODEL_INFO_REFRESH_MS = 60_000;
/** Largest /v1/models body read; a replica's lists a base model and its LoRA adapters. */
const MAX_BODY_BYTES = 1 << 20;

/** The largest max_model_len of the models a /v1/models body lists (LoRA adapters share their base's), or null for none. */
export function parseMaxModelLen(body: unknown): number | null {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined;
  if (!Array.isArray(data)) return null;
  let longest = 0;
  for (const m of data) {
    const v = typeof m === 'object' && m !== null ? (m as { max_model_len?: unknown }).max_model_len : undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v > longest && v <= MAX_CONTEXT_TOKENS) longest = v;
  }
  return longest > 0 ? longest : null;
}

/** Reads `address`'s /v1/models; throws with the reason when it does not answer 200 with JSON in time. */
export async function fetchMaxModelLen(address: string, timeoutMs: number): Promise<number | null> {
  const res = await fetch(`http://${address}${MODEL_INFO_PATH}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  // Read up to the bound, not the whole body and then the bound.
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body ?? []) {
    bytes += chunk.byteLength;
    // Leaving the loop cancels the body.
    if (bytes > MAX_BODY_BYTES) throw new Error(`body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return parseMaxModelLen(JSON.parse(Buffer.concat(chunks).toString('utf8')));
}

export interface ModelInfoPollerOptions {
  timeoutMs: number;
  refreshMs?: number;
  now?: () => number;
  read?: (address: string, timeoutMs: number) => Promise<number | null>;
  onResult(address: string, maxModelLen: number | null): void;
  onError?(address: string, error: string): void;
}

/** Reads each replica's context length when it is due (see the header); one read at a time per replica. */
export class ModelInfoPoller {
  /** When each replica's next read is due (0: at its next good scrape). */
  private readonly due = new Map<string, number>();
  private readonly reading = new Set<string>();
  private stopped = false;

  constructor(private readonly o: ModelInfoPollerOptions) {}

  private now(): number {
    return this.o.now ? this.o.now() : Date.now();
  }

  /** A good scrape of `address`: reads its models if due. */
  scraped(address: string): void {
    if (this.stopped || this.reading.has(address) || (this.due.get(address) ?? 0) > this.now()) return;
    this.due.set(address, this.now() + (this.o.refreshMs ?? MODEL_INFO_REFRESH_MS));
    this.reading.add(address);
    (this.o.read ?? fetchMaxModelLen)(address, this.o.timeoutMs).then(
      (len) => { if (!this.stopped && this.due.has(address)) this.o.onResult(address, len); },
      (e: unknown) => { if (!this.stopped) this.o.onError?.(address, e instanceof Error ? e.message : String(e)); },
    ).finally(() => this.reading.delete(address));
  }

  /** A failed scrape: the replica is read again when its scrapes recover. */
  failed(address: string): void {
    if (this.due.has(address)) this.due.set(address, 0);
  }

  /** Forgets replicas no longer in `addresses`. */
  retain(addresses: ReadonlySet<string>): void {
    for (const a of [...this.due.keys()]) if (!addresses.has(a)) this.due.delete(a);
  }

  stop(): void {
    this.stopped = true;
  }
}
