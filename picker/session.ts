// One ext_proc stream, that is one request at the proxy, driving one HTTP context of the filter:
// request headers, body chunks and end of stream go in as the proxy sends them; when the filter
// releases the headers, its changes go back as a header mutation with the chosen endpoint in
// x-gateway-destination-endpoint and, with the runner-up as fallback, in envoy.lb dynamic
// metadata; the body the filter released streams back (FULL_DUPLEX_STREAMED) or is confirmed
// (BUFFERED). The filter's local replies (503 no replica, 413, 429 from the picker's own shedding)
// become ImmediateResponses. Response headers and body pass the filter's response hooks too, and
// the stream's end is the filter's end of stream (on_done, on_log, on_delete), so the in-flight
// count the filter keeps per replica is the proxy's open requests.
import * as grpc from '@grpc/grpc-js';
import type { HeaderPairs, LocalResponse, ProxyWasmHost, Stream } from '../host/index.js';
import { DESTINATION_HEADER, FALLBACK_HEADER } from '../host/upstreamSelector.js';
import { LB_METADATA_NAMESPACE, SERVED_KEY } from '../host/endpointPicker/pickerGateway.js';
import {
  BodySendMode, namespacedString, structStrings, toHeaderMap,
  type CommonResponse, type ProcessingRequest, type ProcessingResponse,
} from '../host/endpointPicker/protocol.js';
import { headerMutationOf, pairsOf } from './headerMutation.js';
import type { PickerMetrics } from './metrics.js';

/** The protocol's subset hint: the proxy may restrict the endpoints the picker picks from. */
export const SUBSET_NAMESPACE = 'envoy.lb.subset_hint';
export const SUBSET_KEY = 'x-gateway-destination-endpoint-subset';
/** How the subset reaches the filter (its `subsetHeader`); only the picker sets it, never the client. */
export const SUBSET_HEADER = 'x-prefix-router-endpoint-subset';

/** The filter's runner-up header is the picker's input, never the upstream's. */
const PICKER_ONLY = new Set([FALLBACK_HEADER]);

export interface SessionSettings {
  host: ProxyWasmHost;
  metrics: PickerMetrics;
  /** The request body mode when the proxy does not say (ProcessingRequest.protocol_config, Envoy >= 1.35). */
  defaultRequestBodyMode: number;
  /** The response body mode when the proxy does not say. */
  defaultResponseBodyMode: number;
}

type Call = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

class ProtocolError extends Error {
  constructor(readonly code: grpc.status, message: string) { super(message); }
}

export class PickerSession {
  private stream: Stream | null = null;
  private requestMode = BodySendMode.FULL_DUPLEX_STREAMED as number;
  private responseMode = BodySendMode.NONE as number;
  private requestBefore: HeaderPairs = [];
  private responseBefore: HeaderPairs = [];
  private subset: string[] | null = null;
  private targets: string[] = [];
  /** The request's end (end_of_stream or trailers) reached the filter. */
  private requestEnd = false;
  private requestTrailers = false;
  private requestHasBody = false;
  private decisionSent = false;
  private requestBodyDone = false;
  private requestTrailersAnswered = false;
  private responseHeadersSeen = false;
  private responseHeadersSent = false;
  private responseEnd = false;
  private responseTrailers = false;
  private responseBodyDone = false;
  private responseTrailersAnswered = false;
  private responseHasBody = false;
  private immediateSent = false;
  private closed = false;
  private pumpQueued = false;
  /** The body as a BUFFERED proxy holds it, to tell whether the filter changed it. */
  private bufferedRequestBody: Uint8Array | null = null;
  private bufferedResponseBody: Uint8Array | null = null;
  /** When the message that may complete the decision arrived. */
  private lastMessageAt = 0n;

  constructor(private readonly s: SessionSettings, private readonly call: Call, private readonly shed: boolean) {}

  start(): void {
    const { call, s } = this;
    s.metrics.streams.inc();
    s.metrics.openStreams.inc();
    call.on('data', (m: ProcessingRequest) => this.onMessage(m));
    call.on('end', () => { this.close(); call.end(); });
    call.on('error', () => this.close());
    call.on('cancelled', () => this.close());
    call.on('close', () => this.close());
  }

  /** The proxy's stream is over: the filter's too. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.s.metrics.openStreams.dec();
    this.stream?.complete();
  }

  private fail(code: grpc.status, message: string, reason: string): void {
    if (this.closed) return;
    this.s.metrics.streamErrors.inc({ reason });
    this.call.emit('error', { code, details: message });
    this.close();
  }

  private write(m: ProcessingResponse): void {
    if (!this.closed) this.call.write(m);
  }

  private onMessage(m: ProcessingRequest): void {
    if (this.closed || this.immediateSent) return;
    this.lastMessageAt = process.hrtime.bigint();
    try {
      this.dispatch(m);
      this.pump();
    } catch (e) {
      if (e instanceof ProtocolError) this.fail(e.code, e.message, 'protocol');
      else this.fail(grpc.status.INTERNAL, `picker: ${e instanceof Error ? e.message : String(e)}`, 'internal');
    }
  }

  private dispatch(m: ProcessingRequest): void {
    if (m.request_headers) return this.onRequestHeaders(m);
    const st = this.stream;
    if (!st) throw new ProtocolError(grpc.status.FAILED_PRECONDITION, 'the first ext_proc message must carry request_headers');
    if (m.request_body) {
      const b = m.request_body;
      const chunk = b.body ?? new Uint8Array(0);
      const whole = this.requestMode !== BodySendMode.FULL_DUPLEX_STREAMED;
      if (whole || b.end_of_stream) this.requestEnd = true;
      if (whole) this.bufferedRequestBody = chunk;
      st.requestBody(chunk, whole || b.end_of_stream === true);
    } else if (m.request_trailers) {
      this.requestEnd = true;
      this.requestTrailers = true;
      st.requestTrailers(pairsOf(m.request_trailers.trailers));
    } else if (m.response_headers) {
      this.responseHeadersSeen = true;
      this.readServed(m);
      const pairs = pairsOf(m.response_headers.headers);
      this.responseBefore = pairs;
      const eos = m.response_headers.end_of_stream === true || this.responseMode === BodySendMode.NONE;
      this.responseHasBody = !eos;
      this.responseEnd = eos;
      st.responseHeaders(pairs, eos);
    } else if (m.response_body) {
      const b = m.response_body;
      const whole = this.responseMode !== BodySendMode.FULL_DUPLEX_STREAMED;
      if (whole || b.end_of_stream) this.responseEnd = true;
      if (whole) this.bufferedResponseBody = b.body ?? new Uint8Array(0);
      st.responseBody(b.body ?? new Uint8Array(0), whole || b.end_of_stream === true);
    } else if (m.response_trailers) {
      this.responseEnd = true;
      this.responseTrailers = true;
      st.responseTrailers(pairsOf(m.response_trailers.trailers));
    }
  }

  private onRequestHeaders(m: ProcessingRequest): void {
    if (this.stream) throw new ProtocolError(grpc.status.FAILED_PRECONDITION, 'request_headers came twice on one stream');
    const pc = m.protocol_config;
    this.requestMode = pc?.request_body_mode ?? this.s.defaultRequestBodyMode;
    this.responseMode = pc?.response_body_mode ?? this.s.defaultResponseBodyMode;
    if (this.requestMode === BodySendMode.STREAMED) {
      throw new ProtocolError(grpc.status.UNIMPLEMENTED, 'request_body_mode STREAMED is not supported: configure FULL_DUPLEX_STREAMED (the protocol\'s) or BUFFERED');
    }
    if (this.responseMode === BodySendMode.STREAMED) this.responseMode = BodySendMode.FULL_DUPLEX_STREAMED;
    this.subset = structStrings(m.metadata_context?.filter_metadata?.[SUBSET_NAMESPACE], SUBSET_KEY);
    if (this.shed) {
      this.sendImmediate({ status: 429, details: 'picker_overloaded', headers: [['content-type', 'application/json']], body: Buffer.from('{"error":{"message":"the endpoint picker is at its stream limit","type":"rate_limit_exceeded","code":429}}') });
      return;
    }
    if (this.subset && this.subset.length === 0) {
      this.sendImmediate({ status: 503, details: 'empty_subset_hint', headers: [['content-type', 'application/json']], body: Buffer.from('{"error":{"message":"no endpoint in the subset","type":"service_unavailable","code":503}}') });
      return;
    }
    this.stream = this.s.host.newStream({
      listener: {
        requestReleased: () => this.schedulePump(),
        requestData: () => this.schedulePump(),
        responseReleased: () => this.schedulePump(),
        responseData: () => this.schedulePump(),
        localResponse: () => this.schedulePump(),
        reset: () => this.schedulePump(),
      },
    });
    const headers = pairsOf(m.request_headers!.headers);
    this.requestBefore = headers;
    // The filter scores only the subset's replicas. A client-sent subset header never reaches it,
    // and its removal reaches the proxy as part of the header mutation.
    const toFilter: HeaderPairs = headers.filter(([k]) => k !== SUBSET_HEADER);
    if (this.subset) toFilter.push([SUBSET_HEADER, this.subset.join(',')]);
    const eos = m.request_headers!.end_of_stream === true || this.requestMode === BodySendMode.NONE;
    this.requestHasBody = !eos;
    this.requestEnd = eos;
    this.stream.requestHeaders(toFilter, eos);
    // Outside FULL_DUPLEX_STREAMED the proxy waits for this answer before it sends the body; the
    // decision then rides on the body's answer, which may still change the headers.
    if (!eos && this.requestMode !== BodySendMode.FULL_DUPLEX_STREAMED && !this.stream.localResponse) {
      this.write({ request_headers: { response: {} } });
    }
  }

  /** The proxy's report of the endpoint that served the request (protocol v1.0.0). */
  private readServed(m: ProcessingRequest): void {
    const served = structStrings(m.metadata_context?.filter_metadata?.[LB_METADATA_NAMESPACE], SERVED_KEY)?.[0];
    if (!served) return;
    const which = served === this.targets[0] ? 'picked' : served === this.targets[1] ? 'runner_up' : 'other';
    this.s.metrics.served.inc({ served: which });
  }

  private schedulePump(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      try {
        this.pump();
      } catch (e) {
        this.fail(grpc.status.INTERNAL, `picker: ${e instanceof Error ? e.message : String(e)}`, 'internal');
      }
    });
  }

  /** Writes every answer that is due, in the order the proxy expects them. */
  private pump(): void {
    const st = this.stream;
    if (!st || this.closed || this.immediateSent) return;
    if (st.localResponse) return this.sendImmediate(st.localResponse);
    if (st.resetRequested) return this.fail(grpc.status.ABORTED, 'the filter reset the stream', 'filter_reset');
    this.pumpRequest(st);
    this.pumpResponse(st);
  }

  private pumpRequest(st: Stream): void {
    const fullDuplex = this.requestMode === BodySendMode.FULL_DUPLEX_STREAMED;
    if (!this.decisionSent) {
      if (!st.continued) return;
      // BUFFERED: the decision answers the body message, so it waits for it.
      if (this.requestHasBody && !fullDuplex && !this.requestEnd) return;
      if (!this.sendDecision(st, fullDuplex || !this.requestHasBody ? 'request_headers' : 'request_body')) return;
      if (!fullDuplex) this.requestBodyDone = true;
    }
    if (this.requestHasBody && !this.requestBodyDone) {
      const allOut = this.requestEnd && st.requestBufferedBytes === 0;
      const answer = streamedAnswer(st.drainRequestData(), allOut, this.requestTrailers);
      if (answer) this.write({ request_body: { response: answer } });
      if (allOut) this.requestBodyDone = true;
    }
    if (this.requestTrailers && this.requestBodyDone && !this.requestTrailersAnswered) {
      this.requestTrailersAnswered = true;
      this.write({ request_trailers: {} });
    }
  }

  /** The filter's decision as the proxy takes it; false when it was an immediate response instead. */
  private sendDecision(st: Stream, answering: 'request_headers' | 'request_body'): boolean {
    this.decisionSent = true;
    // The subset header is the picker's own: it never goes upstream, whoever set it.
    const after = st.requestHeaderList().filter(([k]) => k !== SUBSET_HEADER);
    const named = (k: string) => after.find(([hk]) => hk === k)?.[1]?.trim();
    const chosen = named(DESTINATION_HEADER);
    const runnerUp = named(FALLBACK_HEADER);
    let targets = chosen ? (runnerUp && runnerUp !== chosen ? [chosen, runnerUp] : [chosen]) : [];
    if (this.subset && targets.length) {
      const inSubset = targets.filter((t) => this.subset!.includes(t));
      if (inSubset.length === 0) this.s.metrics.subsetOverrides.inc();
      targets = inSubset.length ? inSubset : this.subset;
    }
    this.targets = targets;
    if (targets.length === 0) {
      // Released without a destination (the filter's VM failed and the picker fails open): the
      // proxy's ORIGINAL_DST would have nowhere to go, so say so as the protocol asks.
      this.s.metrics.decisions.inc({ outcome: 'no_endpoint', status: '503' });
      this.sendImmediate({ status: 503, details: 'no_endpoint_picked', headers: [['content-type', 'application/json']], body: Buffer.from('{"error":{"message":"no endpoint could be picked","type":"service_unavailable","code":503}}') }, false);
      return false;
    }
    // The header names the one endpoint ORIGINAL_DST dials; the metadata the ordered fallback list.
    const withChoice: HeaderPairs = [...after.filter(([k]) => k !== DESTINATION_HEADER), [DESTINATION_HEADER, targets[0]!]];
    const response: CommonResponse = { header_mutation: headerMutationOf(this.requestBefore, withChoice, PICKER_ONLY), clear_route_cache: true };
    const dynamic_metadata = namespacedString(LB_METADATA_NAMESPACE, DESTINATION_HEADER, targets.join(','));
    if (answering === 'request_headers') this.write({ request_headers: { response }, dynamic_metadata });
    else {
      const released = st.drainRequestData();
      this.write({ request_body: { response: { ...response, ...bodyMutationOf(this.bufferedRequestBody, released) } }, dynamic_metadata });
    }
    this.s.metrics.decisions.inc({ outcome: 'picked', status: '' });
    this.s.metrics.decisionSeconds.observe(Number(process.hrtime.bigint() - this.lastMessageAt) / 1e9);
    return true;
  }

  private pumpResponse(st: Stream): void {
    if (!this.responseHeadersSeen) return;
    if (!this.responseHeadersSent) {
      if (!st.responseContinued) return;
      // Outside FULL_DUPLEX_STREAMED the body is answered once it has all arrived.
      this.responseHeadersSent = true;
      this.write({ response_headers: { response: { header_mutation: headerMutationOf(this.responseBefore, st.responseHeaderList()) } } });
    }
    if (this.responseMode !== BodySendMode.FULL_DUPLEX_STREAMED) return this.pumpBufferedResponse(st);
    if (this.responseHasBody && !this.responseBodyDone) {
      const allOut = this.responseEnd && st.responseBufferedBytes === 0;
      const answer = streamedAnswer(st.drainResponseData(), allOut, this.responseTrailers);
      if (answer) this.write({ response_body: { response: answer } });
      if (allOut) this.responseBodyDone = true;
    }
    this.answerResponseTrailers();
  }

  private pumpBufferedResponse(st: Stream): void {
    if (this.responseHasBody && !this.responseBodyDone && this.responseEnd && st.responseBufferedBytes === 0) {
      this.responseBodyDone = true;
      this.write({ response_body: { response: bodyMutationOf(this.bufferedResponseBody, st.drainResponseData()) } });
    }
    this.answerResponseTrailers();
  }

  private answerResponseTrailers(): void {
    if (this.responseTrailers && (this.responseBodyDone || !this.responseHasBody) && !this.responseTrailersAnswered) {
      this.responseTrailersAnswered = true;
      this.write({ response_trailers: {} });
    }
  }

  private sendImmediate(r: LocalResponse, count = true): void {
    this.immediateSent = true;
    if (count) this.s.metrics.decisions.inc({ outcome: 'immediate_response', status: String(r.status) });
    const headers = r.headers.filter(([k]) => !k.startsWith(':') && k !== 'content-length');
    this.write({
      immediate_response: {
        status: { code: r.status },
        headers: { set_headers: toHeaderMap(headers).headers!.map((header) => ({ header, append_action: 2 })) },
        body: Buffer.from(r.body),
        details: r.details,
      },
    });
  }
}

/** A buffered body goes on as the proxy holds it unless the filter released something else. */
function bodyMutationOf(held: Uint8Array | null, released: Uint8Array): Pick<CommonResponse, 'body_mutation'> {
  if (held && Buffer.from(held).equals(Buffer.from(released))) return {};
  return { body_mutation: { body: released } };
}

/** The next FULL_DUPLEX_STREAMED body answer: what the filter released, end_of_stream once all of it went and no trailers follow; null when there is nothing to send. */
function streamedAnswer(data: Uint8Array, allOut: boolean, trailersFollow: boolean): CommonResponse | null {
  if (!data.length && !allOut) return null;
  return { body_mutation: { streamed_response: { body: data, end_of_stream: allOut && !trailersFollow } } };
}
