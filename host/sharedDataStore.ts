// Process-wide shared data and shared queues, as proxy-wasm-cpp-host keeps them
// (src/shared_data.cc, src/shared_queue.cc): keyed by vm_id, one CAS counter for
// every write that skips 0, data dropped when the last VM with that vm_id goes.
import { WasmResult } from './abi.js';
import { copyBytes, copyInto } from './bytes.js';

export interface QueueTarget {
  /** Delivers proxy_on_queue_ready(root, token) on the VM that registered the queue. */
  queueReady(contextId: number, token: number): void;
}

interface Queue {
  items: Uint8Array[];
  target: QueueTarget;
  contextId: number;
}

/**
 * One stored value. `room` is the store's own copy that `value` starts, reused by the next
 * write of the same key when it fits (as cpp-host's std::string assignment reuses its buffer);
 * null when nobody may write into it: the bytes came from a caller of set(), or the entry
 * was handed out by get() (whoever holds it keeps seeing what it read).
 */
interface Entry {
  value: Uint8Array;
  cas: number;
  room: Uint8Array | null;
}

export class SharedDataStore {
  private data = new Map<string, Map<string, Entry>>();
  /** The last vm_id's map, so a VM's calls skip the lookup by vm_id. */
  private lastVmId: string | null = null;
  private lastSpace: Map<string, Entry> | null = null;
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

  private space(vmId: string): Map<string, Entry> {
    if (vmId === this.lastVmId) return this.lastSpace!;
    let map = this.data.get(vmId);
    if (!map) this.data.set(vmId, (map = new Map()));
    this.lastVmId = vmId;
    this.lastSpace = map;
    return map;
  }

  /** The value and CAS of a key; the value stays as it is now (later writes make a new one). */
  get(vmId: string, key: string): { value: Uint8Array; cas: number } | null {
    const e = this.data.get(vmId)?.get(key);
    if (e === undefined) return null;
    e.room = null;
    return e;
  }

  /**
   * A VM's read: the entry as stored, to be copied out before anything else can write the store
   * (proxy_get_shared_data copies it into the module at once; the module's malloc in between
   * runs restricted and cannot write shared data).
   */
  peek(vmId: string, key: string): { readonly value: Uint8Array; readonly cas: number } | null {
    return this.space(vmId).get(key) ?? null;
  }

  /** Writes `value` (callers hand over a copy they no longer touch); CAS rules as cpp-host. */
  set(vmId: string, key: string, value: Uint8Array, cas: number): number {
    const map = this.space(vmId);
    const cur = map.get(key);
    if (cur && cas !== 0 && cas !== cur.cas) return WasmResult.CasMismatch;
    map.set(key, { value, cas: this.nextCas(), room: null });
    return WasmResult.Ok;
  }

  /**
   * A VM's write: stores a copy of src[ptr, ptr+len) (in bounds), CAS rules as set(). The
   * copy goes into the key's previous value in place when the store owns it and it is long
   * enough, so a module rewriting a value of the same size allocates nothing.
   */
  setFrom(vmId: string, key: string, src: Uint8Array, ptr: number, len: number, cas: number): number {
    const map = this.space(vmId);
    const cur = map.get(key);
    if (cur !== undefined) {
      if (cas !== 0 && cas !== cur.cas) return WasmResult.CasMismatch;
      const room = cur.room;
      if (room !== null && len <= room.length) {
        copyInto(room, src, ptr, len);
        if (cur.value.length !== len) cur.value = room.subarray(0, len);
        cur.cas = this.nextCas();
        return WasmResult.Ok;
      }
    }
    const copy = copyBytes(src, ptr, len);
    map.set(key, { value: copy, cas: this.nextCas(), room: copy });
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
    if (this.lastVmId === vmId) {
      this.lastVmId = null;
      this.lastSpace = null;
    }
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
