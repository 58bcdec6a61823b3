// The field readers of the configuration's parsers: each checks one field,
// sets configError and returns false on a bad value.
import { JsonKind, JsonValue } from "./jsonDocument";

export let configError: string = "";

export function setConfigError(msg: string): void {
  configError = msg;
}

// Readers that check one field each; they set configError and return false on a bad value.
export function readInt(o: JsonValue, key: string, path: string, lo: f64, hi: f64, set: (v: f64) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Number || v.num != Math.floor(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + path + "' must be a whole number from " + (<i64>lo).toString() + " to " + (<i64>hi).toString();
    return false;
  }
  set(v.num);
  return true;
}

export function readNum(o: JsonValue, key: string, path: string, lo: f64, hi: f64, set: (v: f64) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Number || !isFinite(v.num) || v.num < lo || v.num > hi) {
    configError = "'" + path + "' must be a number from " + lo.toString() + " to " + hi.toString();
    return false;
  }
  set(v.num);
  return true;
}

export function readStr(o: JsonValue, key: string, path: string, set: (v: string) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.String || v.str.length == 0 || v.str.length > 256) {
    configError = "'" + path + "' must be a non-empty string";
    return false;
  }
  set(v.str);
  return true;
}

export function readBool(o: JsonValue, key: string, path: string, set: (v: bool) => void): bool {
  const v = o.get(key);
  if (v === null) return true;
  if (v.kind != JsonKind.Bool) {
    configError = "'" + path + "' must be true or false";
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

