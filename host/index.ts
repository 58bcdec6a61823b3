// Public surface of the proxy-wasm host.
export { ProxyWasmHost, CANARY_WORKER, DEFAULT_BUFFER_LIMIT_BYTES, DEFAULT_WORKERS } from './host.js';
export type { HostOptions, LogEvent, TrapEvent, MetricValue } from './host.js';
export { Stream, encodeProperty } from './stream.js';
export type { FilterResult, LocalResponse, StreamListener, StreamOptions, PropertyValue } from './stream.js';
export { RealClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
export { SharedDataStore, globalSharedData } from './sharedData.js';
export { WasmResult, MapType, BufferType, serializePairs, parsePairs } from './abi.js';
export type { HeaderPairs, LogLevelName } from './abi.js';
export { runRequest } from './runRequest.js';
export type { RunRequestInput, RunRequestOutcome } from './runRequest.js';
