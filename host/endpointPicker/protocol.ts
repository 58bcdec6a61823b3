// Envoy's ext_proc service (envoy.service.ext_proc.v3.ExternalProcessor) as the Endpoint Picker
// Protocol uses it: the message types, loaded with protobufjs from the Envoy API protos that
// @grpc/grpc-js-xds ships, and a grpc-js client for the bidirectional Process stream.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';
import * as grpc from '@grpc/grpc-js';

const require = createRequire(import.meta.url);
const XDS_DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const PROTO_DIRS = [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(XDS_DEPS, d)), path.dirname(require.resolve('protobufjs/package.json'))];
const SERVICE_FILE = 'envoy/service/ext_proc/v3/external_processor.proto';
export const PROCESS_METHOD = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';

/** ProcessingMode.BodySendMode values. */
export const BodySendMode = { NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3, FULL_DUPLEX_STREAMED: 4 } as const;

export interface HeaderValue { key: string; value?: string; raw_value?: Uint8Array }
export interface HeaderMap { headers?: HeaderValue[] }
export interface HeaderValueOption { header?: HeaderValue; append?: { value?: boolean }; append_action?: number }
export interface HeaderMutation { set_headers?: HeaderValueOption[]; remove_headers?: string[] }
export interface StreamedBodyResponse { body?: Uint8Array; end_of_stream?: boolean }
export interface BodyMutation { body?: Uint8Array; clear_body?: boolean; streamed_response?: StreamedBodyResponse }
export interface CommonResponse { status?: number; header_mutation?: HeaderMutation; body_mutation?: BodyMutation; clear_route_cache?: boolean }
export interface ImmediateResponse { status?: { code?: number }; headers?: HeaderMutation; body?: Uint8Array; details?: string }
export interface ListValue { values?: ProtoValue[] }
export interface ProtoValue { stringValue?: string; string_value?: string; structValue?: StructValue; struct_value?: StructValue; listValue?: ListValue; list_value?: ListValue }
export interface StructValue { fields?: Record<string, ProtoValue> }
/** envoy.config.core.v3.Metadata: namespace -> Struct. */
export interface Metadata { filter_metadata?: Record<string, StructValue> }

export interface ProcessingRequest {
  request_headers?: { headers: HeaderMap; end_of_stream: boolean };
  response_headers?: { headers: HeaderMap; end_of_stream: boolean };
  request_body?: { body: Uint8Array; end_of_stream: boolean };
  response_body?: { body: Uint8Array; end_of_stream: boolean };
  request_trailers?: { trailers: HeaderMap };
  response_trailers?: { trailers: HeaderMap };
  protocol_config?: { request_body_mode: number; response_body_mode: number; send_body_without_waiting_for_header_response?: boolean };
  /** The proxy's metadata for the processor: the protocol's subset hint and served endpoint live here. */
  metadata_context?: Metadata;
}

export interface ProcessingResponse {
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: { header_mutation?: HeaderMutation };
  response_trailers?: { header_mutation?: HeaderMutation };
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: StructValue;
}

function findProto(target: string): string | null {
  for (const dir of PROTO_DIRS) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

let cached: { request: protobuf.Type; response: protobuf.Type } | null = null;

/** The ProcessingRequest and ProcessingResponse types (field names as in the .proto files). */
export function extProcTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (cached) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => findProto(target) ?? target;
  root.loadSync(SERVICE_FILE, { keepCase: true });
  // The shipped protos predate what the picker protocol uses; these fields carry Envoy's own
  // numbers: HeaderValue.raw_value (3), BodySendMode FULL_DUPLEX_STREAMED (4),
  // BodyMutation.streamed_response (3, a StreamedBodyResponse {body = 1, end_of_stream = 2}) and
  // ProcessingRequest.protocol_config (11, a ProtocolConfiguration {request_body_mode = 1,
  // response_body_mode = 2, send_body_without_waiting_for_header_response = 3}).
  const headerValue = root.lookupType('envoy.config.core.v3.HeaderValue');
  if (!headerValue.fields.raw_value) headerValue.add(new protobuf.Field('raw_value', 3, 'bytes'));
  const sendMode = root.lookupEnum('envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode');
  if (sendMode.values.FULL_DUPLEX_STREAMED === undefined) sendMode.add('FULL_DUPLEX_STREAMED', BodySendMode.FULL_DUPLEX_STREAMED);
  const pkg = root.lookup('envoy.service.ext_proc.v3') as protobuf.Namespace;
  if (!pkg.get('StreamedBodyResponse')) {
    pkg.add(new protobuf.Type('StreamedBodyResponse').add(new protobuf.Field('body', 1, 'bytes')).add(new protobuf.Field('end_of_stream', 2, 'bool')));
  }
  const bodyMutation = root.lookupType('envoy.service.ext_proc.v3.BodyMutation');
  if (!bodyMutation.fields.streamed_response) {
    bodyMutation.add(new protobuf.Field('streamed_response', 3, 'StreamedBodyResponse'));
    bodyMutation.oneofs.mutation!.add(bodyMutation.fields.streamed_response!);
  }
  const request = root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest');
  if (!request.fields.protocol_config) {
    pkg.add(new protobuf.Type('ProtocolConfiguration')
      .add(new protobuf.Field('request_body_mode', 1, 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode'))
      .add(new protobuf.Field('response_body_mode', 2, 'envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode'))
      .add(new protobuf.Field('send_body_without_waiting_for_header_response', 3, 'bool')));
    request.add(new protobuf.Field('protocol_config', 11, 'ProtocolConfiguration'));
  }
  root.resolveAll();
  cached = { request, response: root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse') };
  return cached;
}

const DECODE_OPTIONS: protobuf.IConversionOptions = { bytes: Buffer as unknown as typeof String, defaults: false, longs: Number, enums: Number, oneofs: false };

export function encodeRequest(m: ProcessingRequest): Buffer {
  const { request } = extProcTypes();
  return Buffer.from(request.encode(request.fromObject(m)).finish());
}
export function decodeRequest(b: Buffer): ProcessingRequest {
  const { request } = extProcTypes();
  return request.toObject(request.decode(b), DECODE_OPTIONS) as ProcessingRequest;
}
export function encodeResponse(m: ProcessingResponse): Buffer {
  const { response } = extProcTypes();
  return Buffer.from(response.encode(response.fromObject(m)).finish());
}
export function decodeResponse(b: Buffer): ProcessingResponse {
  const { response } = extProcTypes();
  return response.toObject(response.decode(b), DECODE_OPTIONS) as ProcessingResponse;
}

/** The service definition, for a grpc-js client or a grpc-js server (tests' stand-in pickers). */
export const EXT_PROC_SERVICE: grpc.ServiceDefinition = {
  Process: {
    path: PROCESS_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: encodeRequest,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: decodeResponse,
  },
};

export type ExtProcClient = grpc.Client & { Process(options?: grpc.CallOptions): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse> };
export const ExtProcClientConstructor = grpc.makeGenericClientConstructor(EXT_PROC_SERVICE, 'ExternalProcessor') as unknown as new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ExtProcClient;

/** A header's value as Envoy sends it (raw_value) or as older servers set it (value). */
export function headerValueOf(h: HeaderValue): string {
  if (h.raw_value && h.raw_value.length) return Buffer.from(h.raw_value).toString('latin1');
  return h.value ?? '';
}

/** Headers in Envoy's ext_proc encoding: lower-case keys, values in raw_value. */
export function toHeaderMap(pairs: [string, string][]): HeaderMap {
  return { headers: pairs.map(([key, value]) => ({ key: key.toLowerCase(), raw_value: Buffer.from(value, 'latin1') })) };
}

/** A Struct's string field, or the strings of a list field (either name casing protobufjs may give). */
export function structStrings(s: StructValue | undefined, key: string): string[] | null {
  const v = s?.fields?.[key];
  if (!v) return null;
  const str = v.string_value ?? v.stringValue;
  if (str !== undefined) return str.split(',').map((x) => x.trim()).filter(Boolean);
  const list = v.list_value ?? v.listValue;
  if (list) return (list.values ?? []).map((x) => x.string_value ?? x.stringValue ?? '').filter(Boolean);
  return null;
}

/** A Struct value for dynamic metadata: {namespace: {key: value}} (google.protobuf.Struct keeps protobufjs's camelCase names). */
export function namespacedString(namespace: string, key: string, value: string): StructValue {
  return { fields: { [namespace]: { structValue: { fields: { [key]: { stringValue: value } } } } } };
}
