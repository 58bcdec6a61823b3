// Where the embedded gateway sends a request: the one seam where it chooses the upstream.
// The default is Envoy's ORIGINAL_DST cluster on the header the filter sets
// (original_dst_lb_config.http_header_name), with a connect retry on the filter's runner-up.
import net from 'node:net';
import type { ReadonlyHeaderPairs } from './abi.js';
import { firstValue } from './headerMap.js';

/** The header ORIGINAL_DST reads (cluster original_dst_lb_config.http_header_name). */
export const DESTINATION_HEADER = 'x-gateway-destination-endpoint';
/**
 * The filter's runner-up for this request (prefix-router's x-prefix-router-fallback-endpoint):
 * a connection that fails is retried once there, as an Envoy retry policy would retry on the
 * next host (ORIGINAL_DST itself only dials the first destination).
 */
export const FALLBACK_HEADER = 'x-prefix-router-fallback-endpoint';

export interface Destination {
  host: string;
  port: number;
}

/** Chooses the upstream of each attempt of a request. */
export interface UpstreamSelector {
  /**
   * The destination of attempt `attempt` (0, then each connect retry), given the request
   * headers as the filter released them; null: no healthy upstream (the gateway answers 503).
   * A selector that asks elsewhere (an endpoint picker) answers with a promise; a rejected one
   * is answered like null. The headers are the stream's own: read them during the call.
   */
  select(requestHeaders: ReadonlyHeaderPairs, attempt: number): Destination | null | Promise<Destination | null>;
}

/** Parses an ORIGINAL_DST destination: a literal IPv4 "a.b.c.d:port" or IPv6 "[addr]:port"; hostnames are not resolved. */
export function parseDestination(value: string | undefined): Destination | null {
  if (value === undefined) return null;
  const v = value.trim();
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]]+):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535 || net.isIP(m[1]) === 0) return null;
  return { host: m[1], port };
}

/**
 * parseDestination of the header values seen so far: a filter names the same few endpoints on
 * every request. Bounded: emptied when full.
 */
const parsedDestinations = new Map<string, Readonly<Destination> | null>();
const PARSED_DESTINATIONS_MAX = 1024;

function cachedDestination(value: string | null): Destination | null {
  if (value === null) return null;
  let d = parsedDestinations.get(value);
  if (d === undefined) {
    if (parsedDestinations.size >= PARSED_DESTINATIONS_MAX) parsedDestinations.clear();
    d = parseDestination(value);
    parsedDestinations.set(value, d === null ? null : Object.freeze(d));
  }
  return d === null ? null : { host: d.host, port: d.port };
}

/** ORIGINAL_DST on DESTINATION_HEADER; a retry goes to FALLBACK_HEADER's endpoint when the filter named one, else to the same. */
export const originalDestination: UpstreamSelector = {
  select(requestHeaders, attempt) {
    const fallback = attempt > 0 ? cachedDestination(firstValue(requestHeaders, FALLBACK_HEADER)) : null;
    return fallback ?? cachedDestination(firstValue(requestHeaders, DESTINATION_HEADER));
  },
};
