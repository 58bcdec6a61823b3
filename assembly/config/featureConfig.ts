// The configuration of admission, session affinity and LoRA affinity
// (plugin/CONFIG.md): `saturation`, `admission`, `sessionAffinity`, `lora`.
import { JsonKind, JsonValue } from "./jsonDocument";
import { configFailed, readBool, readInt, readNum, readObject, readStr, setConfigError } from "./configReaders";
import { SaturationBound } from "../admission/saturation";
import { AdmissionConfig } from "../admission/admissionConfig";
import { SessionConfig } from "../scheduling/sessionAffinity";
import { LoraConfig } from "../scheduling/loraAffinity";

/** Objectives a configuration may name at most. */
const MAX_OBJECTIVES = 64;

@inline function has(o: JsonValue, key: string): bool {
  return o.get(key) !== null;
}

function bad(msg: string): bool {
  setConfigError(msg);
  return false;
}

/** A header name as the filter compares it: lower case, HTTP token characters. */
function headerName(v: string, path: string): string | null {
  // ASCII only: String#toLowerCase would link the Unicode case tables into the module.
  let s = "";
  for (let i = 0; i < v.length; i++) {
    let c = v.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e;
    if (!ok) {
      setConfigError("'" + path + "' must be a header name (letters, digits, '-', '_', '.')");
      return null;
    }
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Reads the four sections of `root` into the given objects; false (with
 * configError) when one is malformed.
 */
export function parseFeatures(root: JsonValue, sat: SaturationBound, adm: AdmissionConfig, sess: SessionConfig, lora: LoraConfig): bool {
  if (has(root, "saturation")) {
    const o = readObject(root, "saturation", ["waiting", "kvUsage"]);
    if (o === null) return false;
    sat.waiting = readInt(o, "saturation.", "waiting", 1, 65535, sat.waiting);
    sat.kvUsage = readNum(o, "saturation.", "kvUsage", 0.01, 1, sat.kvUsage);
    if (configFailed()) return false;
  }
  if (has(root, "admission")) {
    const o = readObject(root, "admission", ["enabled", "maxHeld", "waitMs", "highPriorityWaitMs", "retryAfterS", "objectiveHeader", "objectives"]);
    if (o === null) return false;
    adm.enabled = readBool(o, "admission.", "enabled", adm.enabled);
    adm.maxHeld = <i32>readInt(o, "admission.", "maxHeld", 0, 65536, adm.maxHeld);
    adm.waitMs = <u32>readInt(o, "admission.", "waitMs", 0, 600000, adm.waitMs);
    adm.highPriorityWaitMs = <u32>readInt(o, "admission.", "highPriorityWaitMs", 0, 600000, adm.highPriorityWaitMs);
    adm.retryAfterS = <u32>readInt(o, "admission.", "retryAfterS", 0, 3600, adm.retryAfterS);
    adm.objectiveHeader = readStr(o, "admission.", "objectiveHeader", adm.objectiveHeader);
    if (configFailed()) return false;
    const h = headerName(adm.objectiveHeader, "admission.objectiveHeader");
    if (h === null) return false;
    adm.objectiveHeader = h;
    const obj = o.get("objectives");
    if (obj !== null) {
      if (obj.kind != JsonKind.Object) return bad("'admission.objectives' must be an object of objective name to priority");
      if (obj.keys.length > MAX_OBJECTIVES) return bad("'admission.objectives' names at most " + MAX_OBJECTIVES.toString() + " objectives");
      for (let i = 0; i < obj.keys.length; i++) {
        const name = obj.keys[i];
        if (name.length == 0 || name.length > 256) return bad("'admission.objectives' keys must be 1 to 256 characters");
        const priority = <i32>readInt(obj, "admission.objectives.", name, -1000000, 1000000, 0);
        if (configFailed()) return false;
        adm.objectivePriorities.push(priority);
        adm.objectiveNames.push(String.UTF8.encode(name));
      }
    }
  }
  if (has(root, "sessionAffinity")) {
    const o = readObject(root, "sessionAffinity", ["enabled", "header", "bodyUser"]);
    if (o === null) return false;
    sess.enabled = readBool(o, "sessionAffinity.", "enabled", sess.enabled);
    sess.header = readStr(o, "sessionAffinity.", "header", sess.header);
    if (configFailed()) return false;
    const h = headerName(sess.header, "sessionAffinity.header");
    if (h === null) return false;
    sess.header = h;
    sess.bodyUser = readBool(o, "sessionAffinity.", "bodyUser", sess.bodyUser);
    if (configFailed()) return false;
  }
  if (has(root, "lora")) {
    const o = readObject(root, "lora", ["weight"]);
    if (o === null) return false;
    lora.weight = readNum(o, "lora.", "weight", 0, 1e6, lora.weight);
    if (configFailed()) return false;
  }
  return true;
}
