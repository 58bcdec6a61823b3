// What Envoy's HeaderMap does for the header-map host functions (Envoy's Context in
// source/extensions/common/wasm/context.cc): a map is an ordered list of [lower-case name,
// value] pairs, one byte per latin1 character.
import type { HeaderPairs, ReadonlyHeaderPairs } from './abi.js';

/** Envoy's LowerCaseString (absl::AsciiStrToLower): only A-Z change; other latin1 bytes stay as they are. */
export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.replace(/[A-Z]+/g, (u) => u.toLowerCase());
  }
  return s;
}

/** The first value of `key` (Envoy's `entry[0]`; a TODO there notes the missing concatenation), or null. */
export function firstValue(map: ReadonlyHeaderPairs, key: string): string | null {
  for (let i = 0; i < map.length; i++) if (map[i][0] === key) return map[i][1];
  return null;
}

/** Envoy setCopy: the first entry of `key` takes the value and later duplicates go; appended when absent. */
export function replaceValue(map: HeaderPairs, key: string, value: string): void {
  let i = 0;
  while (i < map.length && map[i][0] !== key) i++;
  if (i === map.length) {
    map.push([key, value]);
    return;
  }
  map[i][1] = value; // the stream's own tuple (Stream copies what it takes in and hands out)
  for (let j = map.length - 1; j > i; j--) if (map[j][0] === key) map.splice(j, 1);
}

export function removeValues(map: HeaderPairs, key: string): void {
  for (let j = map.length - 1; j >= 0; j--) if (map[j][0] === key) map.splice(j, 1);
}

/** The map becomes `pairs`, names lower-cased. */
export function replaceAll(map: HeaderPairs, pairs: HeaderPairs): void {
  map.length = 0;
  for (const [k, v] of pairs) map.push([asciiLower(k), v]);
}

/** HeaderMap::byteSize(): the bytes of all names and values, not the count. */
export function byteSize(map: HeaderPairs): number {
  let bytes = 0;
  for (let i = 0; i < map.length; i++) bytes += map[i][0].length + map[i][1].length;
  return bytes;
}

/**
 * Raw headers (name, value, name, value... as bytes, or as latin1 strings) appended to `into` as pairs, names
 * lower-cased, those in `skip` left out; header bytes are latin1, as node:http reads them.
 */
export function appendRawHeaders(into: HeaderPairs, raw: Buffer[] | string[] | null | undefined, skip: ReadonlySet<string> | null = null): HeaderPairs {
  if (!raw) return into;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toString('latin1').toLowerCase();
    if (skip === null || !skip.has(k)) into.push([k, raw[i + 1].toString('latin1')]);
  }
  return into;
}
