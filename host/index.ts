// Public surface of the proxy-wasm host (host/README.md).
export { ProxyWasmHost, CANARY_WORKER, DEFAULT_BUFFER_LIMIT_BYTES, DEFAULT_WORKERS } from './proxyWasmHost.js';
export type { HostOptions, HttpCallHandler, LogEvent, TrapEvent, MetricValue } from './proxyWasmHost.js';
export type { HttpCallRequest, HttpCallResponse } from './httpCaller.js';
export { Stream, encodeProperty } from './stream.js';
export type { FilterResult, LocalResponse, StreamListener, StreamOptions, PropertyValue } from './stream.js';
export { RealClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
export { SharedDataStore, globalSharedData } from './sharedDataStore.js';
export { WasmResult, MapType, BufferType, serializePairs, parsePairs } from './abi.js';
export type { HeaderPairs, LogLevelName } from './abi.js';
export { runRequest } from './runRequest.js';
export type { RunRequestInput, RunRequestOutcome } from './runRequest.js';
