// What Envoy's router answers itself when it gets no answer from an upstream: the status, the
// plain-text body and the response code details its access log names. The embedded gateway
// (gatewayExchange.ts), the gateway in front of an endpoint picker (endpointPicker/pickerGateway.ts)
// and the filter's outbound calls (httpCaller.ts) answer with these, as Envoy does in each place.

export interface RouterReply {
  status: number;
  text: string;
  /** %RESPONSE_CODE_DETAILS% */
  details: string;
}

export const NO_HEALTHY_UPSTREAM: RouterReply = { status: 503, text: 'no healthy upstream', details: 'no_healthy_upstream' };

export const UPSTREAM_TIMEOUT: RouterReply = { status: 504, text: 'upstream request timeout', details: 'upstream_response_timeout' };

/** The connection failed, or was reset before the response head. */
export function connectFailure(e: NodeJS.ErrnoException): RouterReply {
  return {
    status: 503,
    text: `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: ${e.code ?? e.message}`,
    details: 'upstream_reset_before_response_started{connection_failure}',
  };
}
