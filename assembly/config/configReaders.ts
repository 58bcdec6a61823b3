// The field readers of the configuration's parsers: each checks one field and
// returns its value, setting configError on a bad one.
import { JsonKind, JsonValue } from "./jsonDocument";
import { decimal3 } from "../decimalText";

export let configError: string = "";

export function setConfigError(msg: string): void {
  configError = msg;
}

/** A reader or check has set configError: the configuration is rejected with it. */
export function configFailed(): bool {
  return configError.length > 0;
}

// Readers that check one field each and return its value, or `current` when the field is
// absent. The field is `key` of object `o`, at `section` + `key` in the configuration (section
// "" for the top level, else the section's path and a dot), as errors name it. On a bad value
// a reader sets configError and returns `current`; once configError is set, readers leave it
// and return `current`, so the first bad field is the one named. A parser checks configFailed()
// before its own checks and at the end of each section.
export function readInt(o: JsonValue, section: string, key: string, lo: f64, hi: f64, current: f64): f64 {
  const v = o.get(key);
  if (v === null || configFailed()) return current;
  if (v.kind != JsonKind.Number || v.num != Math.floor(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + section + key + "' must be a whole number from " + (<i64>lo).toString() + " to " + (<i64>hi).toString();
    return current;
  }
  return v.num;
}

export function readNum(o: JsonValue, section: string, key: string, lo: f64, hi: f64, current: f64): f64 {
  const v = o.get(key);
  if (v === null || configFailed()) return current;
  if (v.kind != JsonKind.Number || !isFinite(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + section + key + "' must be a number from " + decimal3(lo) + " to " + decimal3(hi);
    return current;
  }
  return v.num;
}

export function readStr(o: JsonValue, section: string, key: string, current: string): string {
  const v = o.get(key);
  if (v === null || configFailed()) return current;
  if (v.kind != JsonKind.String || v.str.length == 0 || v.str.length > 256) {
    configError = "'" + section + key + "' must be a non-empty string";
    return current;
  }
  return v.str;
}

export function readBool(o: JsonValue, section: string, key: string, current: bool): bool {
  const v = o.get(key);
  if (v === null || configFailed()) return current;
  if (v.kind != JsonKind.Bool) {
    configError = "'" + section + key + "' must be true or false";
    return current;
  }
  return v.bool;
}

/**
 * Member `key` of `root`, an object of `known` members only; null when it is absent, or
 * (setting configError) when it is not such an object.
 */
export function readObject(root: JsonValue, key: string, known: string[]): JsonValue | null {
  const o = root.get(key);
  if (o === null) return null;
  if (o.kind != JsonKind.Object) {
    configError = "'" + key + "' must be an object";
    return null;
  }
  return unknownKey(o, known, key + ".") ? null : o;
}

export function unknownKey(o: JsonValue, known: string[], prefix: string): bool {
  for (let i = 0; i < o.keys.length; i++) {
    if (!known.includes(o.keys[i])) {
      configError = "unknown field '" + prefix + o.keys[i] + "'";
      return true;
    }
  }
  return false;
}

