// Process-wide shared data and shared queues, as proxy-wasm-cpp-host keeps them
// (src/shared_data.cc, src/shared_queue.cc): keyed by vm_id, one CAS counter for
// every write that skips 0, data dropped when the last VM with that vm_id goes.
import { WasmResult } from './abi.js';

export interface QueueTarget {
  /** Delivers proxy_on_queue_ready(root, token) on the VM that registered the queue. */
  queueReady(contextId: number, token: number): void;
}

interface Queue {
  items: Uint8Array[];
  target: QueueTarget;
  contextId: number;
}

export class SharedDataStore {
  private data = new Map<string, Map<string, { value: Uint8Array; cas: number }>>();
  private cas = 1;
  private queueTokens = new Map<string, number>();
  private queueKeysByVm = new Map<string, Set<string>>();
  private queues = new Map<number, Queue>();
  private nextQueue = 1;
  private vmRefs = new Map<string, number>();

  private nextCas(): number {
    const r = this.cas;
    this.cas = (this.cas + 1) >>> 0;
    if (this.cas === 0) this.cas = 1; // 0 means "no CAS" to set(), so it is never handed out.
    return r;
  }

  get(vmId: string, key: string): { value: Uint8Array; cas: number } | null {
    return this.data.get(vmId)?.get(key) ?? null;
  }

  set(vmId: string, key: string, value: Uint8Array, cas: number): number {
    let map = this.data.get(vmId);
    if (!map) this.data.set(vmId, (map = new Map()));
    const cur = map.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return WasmResult.CasMismatch;
    map.set(key, { value, cas: this.nextCas() }); // callers hand over a copy they no longer touch
    return WasmResult.Ok;
  }

  keys(vmId: string): string[] {
    return [...(this.data.get(vmId)?.keys() ?? [])];
  }

  registerQueue(vmId: string, name: string, contextId: number, target: QueueTarget): number {
    const key = `${vmId}\0${name}`;
    let token = this.queueTokens.get(key);
    if (token === undefined) {
      do {
        token = this.nextQueue;
        this.nextQueue = (this.nextQueue + 1) >>> 0;
      } while (token === 0 || this.queues.has(token));
      this.queueTokens.set(key, token);
      let keys = this.queueKeysByVm.get(vmId);
      if (!keys) this.queueKeysByVm.set(vmId, (keys = new Set()));
      keys.add(key);
    }
    const q = this.queues.get(token);
    // Re-registering moves delivery to the new registrant and keeps queued items (as cpp-host).
    this.queues.set(token, { items: q?.items ?? [], target, contextId });
    return token;
  }

  resolveQueue(vmId: string, name: string): number {
    return this.queueTokens.get(`${vmId}\0${name}`) ?? 0;
  }

  enqueue(token: number, value: Uint8Array): number {
    const q = this.queues.get(token);
    if (!q) return WasmResult.NotFound;
    q.items.push(Uint8Array.from(value));
    q.target.queueReady(q.contextId, token);
    return WasmResult.Ok;
  }

  dequeue(token: number): { status: number; value?: Uint8Array } {
    const q = this.queues.get(token);
    if (!q) return { status: WasmResult.NotFound };
    const v = q.items.shift();
    if (!v) return { status: WasmResult.Empty };
    return { status: WasmResult.Ok, value: v };
  }

  /** A VM with this vm_id starts using the store. */
  retain(vmId: string): void {
    this.vmRefs.set(vmId, (this.vmRefs.get(vmId) ?? 0) + 1);
  }

  /** A VM with this vm_id is gone; the last one takes the vm_id's data and queues with it (cpp-host's VmIdHandle). */
  release(vmId: string): void {
    const n = (this.vmRefs.get(vmId) ?? 0) - 1;
    if (n > 0) {
      this.vmRefs.set(vmId, n);
      return;
    }
    this.vmRefs.delete(vmId);
    this.data.delete(vmId);
    for (const key of this.queueKeysByVm.get(vmId) ?? []) {
      const t = this.queueTokens.get(key);
      if (t !== undefined) this.queues.delete(t);
      this.queueTokens.delete(key);
    }
    this.queueKeysByVm.delete(vmId);
  }
}

let globalStore: SharedDataStore | null = null;
/** The one store every host in this process shares by default (Envoy's process-wide store). */
export function globalSharedData(): SharedDataStore {
  return (globalStore ??= new SharedDataStore());
}
