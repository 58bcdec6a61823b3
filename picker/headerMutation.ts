// What the filter did to a header map, as the ext_proc HeaderMutation that makes the proxy do the
// same: the filter edits its own copy of the headers (proxy_replace/add/remove_header_map_value),
// the proxy holds the original, so the picker sends the difference.
import type { HeaderPairs } from '../host/index.js';
import type { HeaderMap, HeaderMutation, HeaderValueOption } from '../host/endpointPicker/protocol.js';
import { headerValueOf } from '../host/endpointPicker/protocol.js';

/** HeaderValueOption.append_action values. */
const APPEND_IF_EXISTS_OR_ADD = 0;
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

/** Pairs from Envoy's ext_proc header map (lower-case keys, values in raw_value). */
export function pairsOf(map: HeaderMap | undefined): HeaderPairs {
  return (map?.headers ?? []).map((h) => [h.key.toLowerCase(), headerValueOf(h)]);
}

function valuesByKey(pairs: HeaderPairs): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of pairs) {
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  }
  return out;
}

/**
 * The mutation that turns `before` into `after`, leaving out pseudo-headers and host (the proxy
 * does not let a processor change them) and the keys in `omit` (the picker's own, not for upstream).
 */
export function headerMutationOf(before: HeaderPairs, after: HeaderPairs, omit: ReadonlySet<string> = new Set()): HeaderMutation {
  const was = valuesByKey(before);
  const now = valuesByKey(after);
  const skip = (k: string) => k.startsWith(':') || k === 'host' || omit.has(k);
  const set_headers: HeaderValueOption[] = [];
  const remove_headers: string[] = [];
  for (const [k, values] of now) {
    if (skip(k)) continue;
    const old = was.get(k);
    if (old && old.length === values.length && old.every((v, i) => v === values[i])) continue;
    values.forEach((v, i) => set_headers.push({
      header: { key: k, raw_value: Buffer.from(v, 'latin1') },
      append_action: i === 0 ? OVERWRITE_IF_EXISTS_OR_ADD : APPEND_IF_EXISTS_OR_ADD,
    }));
  }
  for (const k of was.keys()) if (!skip(k) && !now.has(k)) remove_headers.push(k);
  // A client-sent copy of a key the picker keeps out of the mutation goes all the same.
  for (const k of omit) if (was.has(k)) remove_headers.push(k);
  return { set_headers, remove_headers };
}
