// The field readers of the configuration's parsers: each checks one field,
// sets configError and returns false on a bad value.
import { JsonKind, JsonValue } from "./jsonDocument";
import { decimal3 } from "../decimalText";

export let configError: string = "";

export function setConfigError(msg: string): void {
  configError = msg;
}

// Readers that check one field each; they set configError and return false on a bad value.
// The field is `key` of object `o`, at `section` + `key` in the configuration (section ""
// for the top level, else the section's path and a dot), as errors name it.
export function readInt(o: JsonValue, section: string, key: string, lo: f64, hi: f64, set: (v: f64) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Number || v.num != Math.floor(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + section + key + "' must be a whole number from " + (<i64>lo).toString() + " to " + (<i64>hi).toString();
    return false;
  }
  set(v.num);
  return true;
}

export function readNum(o: JsonValue, section: string, key: string, lo: f64, hi: f64, set: (v: f64) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Number || !isFinite(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + section + key + "' must be a number from " + decimal3(lo) + " to " + decimal3(hi);
    return false;
  }
  set(v.num);
  return true;
}

export function readStr(o: JsonValue, section: string, key: string, set: (v: string) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.String || v.str.length == 0 || v.str.length > 256) {
    configError = "'" + section + key + "' must be a non-empty string";
    return false;
  }
  set(v.str);
  return true;
}

export function readBool(o: JsonValue, section: string, key: string, set: (v: bool) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Bool) {
    configError = "'" + section + key + "' must be true or false";
    return false;
  }
  set(v.bool);
  return true;
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

