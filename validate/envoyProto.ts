// Strict checks of Envoy configuration (YAML/JSON) against Envoy's own API
// protos, without Envoy: the .proto files @grpc/grpc-js-xds ships (envoy-api,
// xds, googleapis, protoc-gen-validate) loaded with protobufjs.
//
// protobufjs' fromObject ignores unknown fields, so the walk below is the
// strict part: every key must be a field (proto or JSON name) of the message at
// that point, `@type` of google.protobuf.Any is resolved and walked into,
// oneofs hold one member, maps, enums (by name or number), scalars and the
// well-known types (Duration "5s", wrappers as bare values, Struct, ...) must
// have their ProtoJSON shape. protoc-gen-validate rules are not enforced.
// After a clean walk protobufjs' ProtoJSON parser reads the value as a second
// opinion.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';
import protojson from 'protobufjs/ext/protojson.js';
import type { Finding } from './finding.js';

const require = createRequire(import.meta.url);
const XDS_DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const PROTO_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(XDS_DEPS, d));
// protobufjs ships descriptor.proto (validate.proto and the annotations import it).
PROTO_DIRS.push(path.dirname(require.resolve('protobufjs/package.json')));
/** Folders of envoy-api whose v3 protos are loaded: every config and extension message a bootstrap can name. */
const ENVOY_TREES = ['envoy/config', 'envoy/extensions'];

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double', '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64', '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32', '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool', '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};
const DURATION = /^-?\d{1,12}(\.\d{1,9})?s$/;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
/** Deeper than any real Envoy config; stops runaway recursion on hostile input. */
const MAX_DEPTH = 200;

function findProto(target: string): string | null {
  for (const dir of PROTO_DIRS) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function listV3Protos(dir: string, base: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listV3Protos(p, base));
    else if (e.name.endsWith('.proto') && /\/v3[^/]*\//.test(p)) out.push(path.relative(base, p));
  }
  return out;
}

/** True when the file and everything it imports exists (a few import opencensus/opentelemetry protos that are not shipped). */
function loadable(file: string, known: Map<string, boolean>, visiting: Set<string>): boolean {
  const cached = known.get(file);
  if (cached !== undefined) return cached;
  if (visiting.has(file)) return true;
  const p = findProto(file);
  if (p === null) {
    const builtin = (protobuf.common as unknown as Record<string, unknown>)[file] !== undefined;
    known.set(file, builtin);
    return builtin;
  }
  visiting.add(file);
  let ok = true;
  for (const m of fs.readFileSync(p, 'utf8').matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)) {
    if (!loadable(m[1], known, visiting)) { ok = false; break; }
  }
  visiting.delete(file);
  known.set(file, ok);
  return ok;
}

let cachedRoot: protobuf.Root | null = null;

/** Envoy's v3 API as one protobufjs Root (field names as in the .proto files). */
export function envoyRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const base = path.join(XDS_DEPS, 'envoy-api');
  const known = new Map<string, boolean>();
  const files = ENVOY_TREES.flatMap((t) => listV3Protos(path.join(base, t), base)).filter((f) => loadable(f, known, new Set()));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => findProto(target) ?? target;
  root.loadSync(files, { keepCase: true });
  // Fields newer than the protos @grpc/grpc-js-xds ships. Envoy 1.35 added
  // PluginConfig.allow_on_headers_stop_iteration (after reload_config = 8),
  // which the filter needs to read a request body before the headers go on.
  const pluginConfig = root.lookupType('envoy.extensions.wasm.v3.PluginConfig');
  if (!pluginConfig.fields.allow_on_headers_stop_iteration) {
    pluginConfig.add(new protobuf.Field('allow_on_headers_stop_iteration', 9, 'bool'));
  }
  root.resolveAll();
  cachedRoot = root;
  return root;
}

export function lookupMessage(fullName: string): protobuf.Type | null {
  try {
    return envoyRoot().lookupType(fullName.replace(/^\./, ''));
  } catch {
    return null;
  }
}

/** The message named by an Any's `@type` (`type.googleapis.com/<name>`). */
export function typeFromUrl(url: string): protobuf.Type | null {
  const slash = url.lastIndexOf('/');
  if (slash < 0) return null;
  return lookupMessage(url.slice(slash + 1));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Walker {
  constructor(readonly file: string, readonly findings: Finding[]) {}

  private add(at: string, message: string): void {
    this.findings.push({ file: this.file, path: at || '(root)', message });
  }

  message(type: protobuf.Type, value: unknown, at: string, depth: number): void {
    if (depth > MAX_DEPTH) { this.add(at, 'nested too deep'); return; }
    const name = type.fullName;
    if (name === '.google.protobuf.Any') { this.any(value, at, depth); return; }
    if (name in WRAPPERS) { this.scalar(WRAPPERS[name], value, at); return; }
    if (name === '.google.protobuf.Duration') {
      if (typeof value !== 'string' || !DURATION.test(value)) this.add(at, `expected a duration string like "5s" or "0.25s" (google.protobuf.Duration), got ${describe(value)}`);
      return;
    }
    if (name === '.google.protobuf.Timestamp') {
      if (typeof value !== 'string' || !TIMESTAMP.test(value)) this.add(at, `expected an RFC 3339 timestamp, got ${describe(value)}`);
      return;
    }
    if (name === '.google.protobuf.FieldMask') {
      if (typeof value !== 'string') this.add(at, `expected a field mask string, got ${describe(value)}`);
      return;
    }
    if (name === '.google.protobuf.Struct') {
      if (!isPlainObject(value)) this.add(at, `expected an object (google.protobuf.Struct), got ${describe(value)}`);
      return;
    }
    if (name === '.google.protobuf.ListValue') {
      if (!Array.isArray(value)) this.add(at, `expected a list (google.protobuf.ListValue), got ${describe(value)}`);
      return;
    }
    if (name === '.google.protobuf.Value') return; // any JSON value
    if (!isPlainObject(value)) { this.add(at, `expected an object (${name.slice(1)}), got ${describe(value)}`); return; }
    this.fields(type, value, at, depth, new Set());
  }

  private fields(type: protobuf.Type, obj: Record<string, unknown>, at: string, depth: number, skip: Set<string>): void {
    const byName = new Map<string, protobuf.Field>();
    for (const f of type.fieldsArray) {
      byName.set(f.name, f);
      byName.set(protobuf.util.camelCase(f.name), f);
      if (f.options?.json_name) byName.set(String(f.options.json_name), f);
    }
    const seenFields = new Map<protobuf.Field, string>();
    const seenOneofs = new Map<string, string>();
    for (const [key, v] of Object.entries(obj)) {
      if (skip.has(key)) continue;
      const here = at ? `${at}.${key}` : key;
      const field = byName.get(key);
      if (!field) {
        this.add(here, key === '@type'
          ? `'@type' is only allowed where the field is a google.protobuf.Any (${type.fullName.slice(1)} is not)`
          : `unknown field '${key}' in ${type.fullName.slice(1)}`);
        continue;
      }
      const earlier = seenFields.get(field);
      if (earlier !== undefined) { this.add(here, `field '${field.name}' given twice (also as '${earlier}')`); continue; }
      seenFields.set(field, key);
      if (v === null) continue; // ProtoJSON: null leaves a field unset
      const oneof = field.partOf;
      if (oneof && !oneof.name.startsWith('_')) {
        const other = seenOneofs.get(oneof.name);
        if (other !== undefined) this.add(here, `'${key}' and '${other}' are both set but belong to one oneof '${oneof.name}' of ${type.fullName.slice(1)}`);
        seenOneofs.set(oneof.name, key);
      }
      this.fieldValue(field, v, here, depth);
    }
  }

  private fieldValue(field: protobuf.Field, v: unknown, at: string, depth: number): void {
    field.resolve();
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(v)) { this.add(at, `expected an object (map<${field.keyType}, ${field.type}>), got ${describe(v)}`); return; }
      for (const [k, item] of Object.entries(v)) {
        if (field.keyType !== 'string') this.scalar(field.keyType, field.keyType === 'bool' ? (k === 'true' ? true : k === 'false' ? false : k) : k, `${at}[${JSON.stringify(k)}]`);
        this.single(field, item, `${at}[${JSON.stringify(k)}]`, depth);
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) { this.add(at, `expected a list, got ${describe(v)}`); return; }
      v.forEach((item, i) => this.single(field, item, `${at}[${i}]`, depth));
      return;
    }
    this.single(field, v, at, depth);
  }

  private single(field: protobuf.Field, v: unknown, at: string, depth: number): void {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) this.message(rt, v, at, depth + 1);
    else if (rt instanceof protobuf.Enum) this.enumValue(rt, v, at);
    else this.scalar(field.type, v, at);
  }

  private enumValue(e: protobuf.Enum, v: unknown, at: string): void {
    if (typeof v === 'string') {
      if (!(v in e.values)) this.add(at, `'${v}' is not a value of enum ${e.fullName.slice(1)} (${Object.keys(e.values).join(', ')})`);
    } else if (typeof v === 'number') {
      if (!Object.values(e.values).includes(v)) this.add(at, `${v} is not a number of enum ${e.fullName.slice(1)}`);
    } else this.add(at, `expected an enum name of ${e.fullName.slice(1)}, got ${describe(v)}`);
  }

  private scalar(type: string, v: unknown, at: string): void {
    const range = INT_RANGES[type];
    if (range) {
      let n: bigint | null = null;
      if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) n = BigInt(v);
      if (n === null) { this.add(at, `expected an integer (${type}), got ${describe(v)}`); return; }
      if (n < range[0] || n > range[1]) this.add(at, `${n} is out of range for ${type}`);
      return;
    }
    switch (type) {
      case 'double': case 'float':
        if (!(typeof v === 'number' || (typeof v === 'string' && (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v) || ['NaN', 'Infinity', '-Infinity'].includes(v))))) this.add(at, `expected a number (${type}), got ${describe(v)}`);
        return;
      case 'bool':
        if (typeof v !== 'boolean') this.add(at, `expected true or false, got ${describe(v)}`);
        return;
      case 'string':
        if (typeof v !== 'string') this.add(at, `expected a string, got ${describe(v)}`);
        return;
      case 'bytes':
        if (typeof v !== 'string' || !BASE64.test(v)) this.add(at, `expected base64 bytes, got ${describe(v)}`);
        return;
      default:
        this.add(at, `unsupported scalar type ${type}`);
    }
  }

  private any(value: unknown, at: string, depth: number): void {
    if (!isPlainObject(value)) { this.add(at, `expected an object with '@type' (google.protobuf.Any), got ${describe(value)}`); return; }
    const url = value['@type'];
    if (typeof url !== 'string') { this.add(at, "google.protobuf.Any needs '@type'"); return; }
    const inner = typeFromUrl(url);
    if (!inner) { this.add(`${at}.@type`, `unknown type '${url}' (not in Envoy's v3 API protos)`); return; }
    const special = inner.fullName in WRAPPERS || ['.google.protobuf.Duration', '.google.protobuf.Timestamp', '.google.protobuf.FieldMask',
      '.google.protobuf.Struct', '.google.protobuf.Value', '.google.protobuf.ListValue', '.google.protobuf.Any'].includes(inner.fullName);
    if (special) {
      // ProtoJSON writes a well-known type inside Any as {"@type": ..., "value": <its JSON>}.
      for (const k of Object.keys(value)) if (k !== '@type' && k !== 'value') this.add(`${at}.${k}`, `unknown field '${k}' (an Any holding ${inner.fullName.slice(1)} has only 'value')`);
      if (value.value !== undefined) this.message(inner, value.value, `${at}.value`, depth + 1);
      return;
    }
    this.fields(inner, value, at, depth + 1, new Set(['@type']));
  }
}

/** Checks `value` as a `typeName` message; findings carry `file` and the path from `basePath`. */
export function checkEnvoyMessage(typeName: string, value: unknown, file: string, basePath = ''): Finding[] {
  const findings: Finding[] = [];
  const type = lookupMessage(typeName);
  if (!type) return [{ file, path: basePath || '(root)', message: `unknown Envoy type ${typeName}` }];
  new Walker(file, findings).message(type, value, basePath, 0);
  if (findings.length === 0) {
    try {
      protojson.fromJson(type, value);
    } catch (err) {
      findings.push({ file, path: basePath || '(root)', message: `protobufjs ProtoJSON parser: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return findings;
}

/** Resolves a JSON-pointer prefix (`/a/0/b`) to the message it lands on. */
function messageAtParts(root: protobuf.Type, parts: string[]): { type: protobuf.Type | null; error?: string } {
  let type = root;
  let inRepeated: protobuf.Field | null = null;
  for (const part of parts) {
    if (inRepeated) {
      if (part !== '-' && !/^\d+$/.test(part)) return { type: null, error: `'${part}' is not a list index` };
      const rt: unknown = inRepeated.resolvedType;
      if (!(rt instanceof protobuf.Type)) return { type: null, error: `list '${inRepeated.name}' does not hold messages` };
      type = rt;
      inRepeated = null;
      continue;
    }
    const field = findField(type, part);
    if (!field) return { type: null, error: `unknown field '${part}' in ${type.fullName.slice(1)}` };
    if (field instanceof protobuf.MapField) return { type: null, error: `map field '${part}' is not followed` };
    if (field.repeated) { inRepeated = field; continue; }
    const rt: unknown = field.resolvedType;
    if (!(rt instanceof protobuf.Type)) return { type: null, error: `'${part}' is not a message field` };
    type = rt;
  }
  if (inRepeated) return { type: null, error: `'${inRepeated.name}' is a list; index it` };
  return { type };
}

function findField(type: protobuf.Type, name: string): protobuf.Field | null {
  const f = type.fieldsArray.find((x) => x.name === name || protobuf.util.camelCase(x.name) === name) ?? null;
  f?.resolve();
  return f;
}

/**
 * Where a JSON patch (`add`/`replace` at a JSON pointer, as Envoy Gateway's
 * EnvoyPatchPolicy applies them) lands inside a `typeName` resource: the
 * message holding the target field, and `wrap` turning the patch value into
 * that message's JSON so the strict walk can check it (`-` or an index
 * appends one list item).
 */
export function typeAtPointer(typeName: string, pointer: string): { type: protobuf.Type | null; wrap?: (v: unknown) => unknown; error?: string } {
  const root = lookupMessage(typeName);
  if (!root) return { type: null, error: `unknown Envoy type ${typeName}` };
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (parts.length === 0) return { type: root };
  let fieldIndex = parts.length - 1;
  const asElement = parts[fieldIndex] === '-' || /^\d+$/.test(parts[fieldIndex]);
  if (asElement) fieldIndex--;
  if (fieldIndex < 0) return { type: null, error: 'a list index needs a field before it' };
  const parent = messageAtParts(root, parts.slice(0, fieldIndex));
  if (!parent.type) return parent;
  const field = findField(parent.type, parts[fieldIndex]);
  if (!field) return { type: null, error: `unknown field '${parts[fieldIndex]}' in ${parent.type.fullName.slice(1)}` };
  if (asElement && !field.repeated) return { type: null, error: `'${field.name}' is not a list` };
  return { type: parent.type, wrap: (v) => ({ [field.name]: asElement ? [v] : v }) };
}
