// The contexts of one VM, as cpp-host's ContextBase keeps them (src/context.cc): the root
// context and the stream contexts by id, the one a host call acts on (current, or the one
// the module made effective), and what the root context offers the host functions itself:
// the HTTP call response being delivered, the status of the last call, the configurations,
// the plugin's own properties. A stream's own maps, bodies and properties are the Stream's.
import { BufferType, HeaderPairs, MapType } from './abi.js';
import type { HttpCallResponse } from './httpCaller.js';

/** What a stream context offers the host functions (implemented by Stream). */
export interface StreamSide {
  /** The header map, or null when Envoy has none at this point (BAD_ARGUMENT). `write` asks for the mutable map. */
  headerMap(type: number, write: boolean): HeaderPairs | null;
  /** The request (0) or response (1) body as the filter sees it now. */
  bufferBytes(type: number): Uint8Array;
  /** Envoy's Buffer::copyFrom on that body: start 0 replaces the first `length` bytes, start >= size appends, anything else BAD_ARGUMENT. */
  setBufferBytes(type: number, start: number, length: number, data: Uint8Array): number;
  continueStream(type: number): number;
  closeStream(type: number): number;
  sendLocalResponse(status: number, details: string, body: Uint8Array, headers: HeaderPairs, grpcStatus: number): void;
  property(path: string[]): Uint8Array | null;
  setProperty(path: string, value: Uint8Array): number;
  /** Time of one call into the module (host functions included), and of the host functions alone when they are timed (else 0). */
  addWasmNs(ns: number, hostNs: number): void;
}

export interface ContextRecord {
  id: number;
  rootId: number;
  stream: StreamSide | null;
}

/** What the root context knows of the plugin (Envoy's PluginBase). */
export interface PluginInfo {
  readonly rootIdName: string;
  readonly pluginName: string;
  readonly vmId: string;
  readonly nodeId: string;
  readonly pluginConfig: Uint8Array;
  readonly vmConfig: Uint8Array;
}

const EMPTY = new Uint8Array(0);
const enc = new TextEncoder();
/** cpp-host's VM context (id 0): what host calls act on when no other context is current. */
const VM_CONTEXT: ContextRecord = { id: 0, rootId: 0, stream: null };

export class Contexts {
  private readonly records = new Map<number, ContextRecord>();
  private nextId = 1; // 0 is the VM context (cpp-host).
  rootId = 0;
  /** The context of the call into the module now running (set by the VM around each call). */
  current: ContextRecord | null = null;
  /** The context proxy_set_effective_context chose during this call, if any. */
  effective: ContextRecord | null = null;
  /** The response proxy_on_http_call_response is reading. */
  httpResponse: HttpCallResponse | null = null;
  /** What proxy_get_status answers (Envoy's status of the last call's outcome). */
  status: { code: number; message: string } = { code: 0, message: '' };
  /** True while proxy_on_configure / root creation may read the plugin configuration (Envoy's temp_plugin_). */
  pluginConfigVisible = false;

  constructor(private readonly plugin: PluginInfo) {}

  get size(): number {
    return this.records.size;
  }

  get(id: number): ContextRecord | undefined {
    return this.records.get(id);
  }

  add(c: ContextRecord): void {
    this.records.set(c.id, c);
  }

  delete(id: number): void {
    this.records.delete(id);
  }

  /** A fresh id: one counter per VM, skipping 0 and ids in use. */
  allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) >>> 0;
      if (id !== 0 && !this.records.has(id)) return id;
    }
  }

  /** The root context record, while the VM has one. */
  root(): ContextRecord | undefined {
    return this.records.get(this.rootId);
  }

  /** The context host functions act on: the effective one if set, else the caller's (cpp-host contextOrEffectiveContext). */
  active(): ContextRecord {
    return this.effective ?? this.current ?? this.records.get(this.rootId) ?? VM_CONTEXT;
  }

  /** proxy_set_effective_context: false when no such context lives. */
  setEffective(id: number): boolean {
    const c = this.records.get(id);
    if (!c) return false;
    this.effective = c;
    return true;
  }

  /** A header map for the active context; null when there is none (BAD_ARGUMENT). HTTP call response maps are read-only. */
  headerMap(type: number, write: boolean): HeaderPairs | null {
    if (type === MapType.HttpCallResponseHeaders) return write ? null : this.httpResponse?.headers ?? null;
    if (type === MapType.HttpCallResponseTrailers) return write ? null : this.httpResponse?.trailers ?? null;
    const s = this.active().stream;
    return s ? s.headerMap(type, write) : null;
  }

  /** The bytes of a buffer the module may read (null: no such buffer here, NOT_FOUND). */
  buffer(type: number): Uint8Array | null {
    switch (type) {
      case BufferType.VmConfiguration:
        return this.plugin.vmConfig;
      case BufferType.PluginConfiguration:
        return this.pluginConfigVisible ? this.plugin.pluginConfig : null;
      case BufferType.HttpCallResponseBody: {
        const r = this.httpResponse;
        return r ? r.body : null;
      }
      case BufferType.HttpRequestBody:
      case BufferType.HttpResponseBody: {
        const s = this.active().stream;
        return s ? s.bufferBytes(type) : EMPTY;
      }
      case BufferType.NetworkDownstreamData:
      case BufferType.NetworkUpstreamData:
      case BufferType.GrpcReceiveBuffer:
      case BufferType.CallData:
        return EMPTY;
      default:
        return null;
    }
  }

  /** A property: the plugin's own, else the active stream's (a root context has no stream info). */
  property(parts: string[]): Uint8Array | null {
    switch (parts.join('.')) {
      case 'plugin_root_id':
        return enc.encode(this.plugin.rootIdName);
      case 'plugin_name':
        return enc.encode(this.plugin.pluginName);
      case 'plugin_vm_id':
        return enc.encode(this.plugin.vmId);
      case 'node.id':
        return enc.encode(this.plugin.nodeId);
    }
    const s = this.active().stream;
    return s ? s.property(parts) : null;
  }
}
