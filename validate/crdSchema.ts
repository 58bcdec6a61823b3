// A CRD's published openAPIV3Schema (validate/schemas/) as a strict ajv schema: every object
// closed (unknown fields rejected, as elsewhere in validate/), Kubernetes-only keywords dropped,
// and each x-kubernetes-validations CEL rule turned into the JSON-Schema condition it states.
// A rule not in CEL_RULES throws: a newer CRD copy is never checked with a rule skipped.
import { readFileSync } from 'node:fs';

type Schema = Record<string, unknown>;

/** CEL rules of the stored CRDs, each as the JSON-Schema condition it states. */
const CEL_RULES: Record<string, Schema> = {
  // endpointPickerRef: a Service (the default kind) needs a port.
  "self.kind != 'Service' || has(self.port)": {
    if: { properties: { kind: { not: { const: 'Service' } } }, required: ['kind'] },
    else: { properties: { port: {} }, required: ['port'] },
  },
  // targetPorts: numbers unique.
  'self.all(p1, self.exists_one(p2, p1.number==p2.number))': { uniqueItems: true },
};

const DROPPED = new Set(['$comment', 'default', 'format', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-map-type']);

function convert(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convert);
  if (typeof node !== 'object' || node === null) return node;
  const out: Schema = {};
  const rules: Schema[] = [];
  for (const [k, v] of Object.entries(node as Schema)) {
    if (DROPPED.has(k)) continue;
    if (k === 'x-kubernetes-validations') {
      for (const r of v as { rule: string; message: string }[]) {
        const cond = CEL_RULES[r.rule];
        if (!cond) throw new Error(`validate/crdSchema.ts: no JSON-Schema form for the CEL rule '${r.rule}' (${r.message})`);
        rules.push(cond);
      }
      continue;
    }
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, convert(s)])) : convert(v);
  }
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if (rules.length) out.allOf = rules;
  return out;
}

/** The stored spec schema at `file` (relative to validate/schemas/), ready for ajv. */
export function crdSpecSchema(file: string): Schema {
  const raw = JSON.parse(readFileSync(new URL(`./schemas/${file}`, import.meta.url), 'utf8')) as Schema;
  return convert(raw) as Schema;
}
