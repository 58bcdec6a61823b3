// Kubernetes objects checked against published schemas, strictly.
//
// Built-in kinds, Istio and Gateway API kinds use the validators the
// kubernetes-models packages ship (generated from the Kubernetes OpenAPI and
// the projects' CRDs). Those schemas do not forbid unknown fields (neither does
// the API server unless asked for strict field validation), so the object is
// handed to the validator behind a Proxy that records which keys the
// validator looks up: a schema with properties looks up every property it
// knows, present or not, so a key of that object it never looked up is not in
// the schema. Objects the validator reads no key of are free-form (maps read
// every key; a Struct-like field such as pluginConfig reads none).
//
// Kinds no registry package ships for Node 20 (Envoy Gateway, Istio's WasmPlugin)
// get small hand-written ajv schemas of the fields used
// here, with additionalProperties false; see HAND_WRITTEN_KINDS. The InferencePool
// is checked against the inference extension's own CRD schema, stored in
// validate/schemas/ (crdSchema.ts).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Finding } from './finding.js';
import { crdSpecSchema } from './crdSchema.js';

type ValidateFn = (data: unknown) => void;

/**
 * apiVersion/kind -> module and export of a kubernetes-models class, and the
 * apiVersion that class validates when it is another one with the same schema.
 */
const PUBLISHED_KINDS: Record<string, [string, string, string?]> = {
  'v1/Namespace': ['kubernetes-models/v1/Namespace', 'Namespace'],
  'v1/ServiceAccount': ['kubernetes-models/v1/ServiceAccount', 'ServiceAccount'],
  'v1/Service': ['kubernetes-models/v1/Service', 'Service'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'ConfigMap'],
  'v1/Secret': ['kubernetes-models/v1/Secret', 'Secret'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'Deployment'],
  'policy/v1/PodDisruptionBudget': ['kubernetes-models/policy/v1/PodDisruptionBudget', 'PodDisruptionBudget'],
  'autoscaling/v2/HorizontalPodAutoscaler': ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'HorizontalPodAutoscaler'],
  'rbac.authorization.k8s.io/v1/Role': ['kubernetes-models/rbac.authorization.k8s.io/v1/Role', 'Role'],
  'rbac.authorization.k8s.io/v1/RoleBinding': ['kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding', 'RoleBinding'],
  'networking.istio.io/v1alpha3/EnvoyFilter': ['@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter', 'EnvoyFilter'],
  // Istio's v1 is v1beta1 promoted with the same schema; @kubernetes-models/istio 2.x, the last
  // release for Node 20, ships v1beta1 only.
  'networking.istio.io/v1/Gateway': ['@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway', 'Gateway', 'networking.istio.io/v1beta1'],
  'networking.istio.io/v1/VirtualService': ['@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService', 'VirtualService', 'networking.istio.io/v1beta1'],
  'gateway.networking.k8s.io/v1/Gateway': ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway', 'Gateway'],
  'gateway.networking.k8s.io/v1/HTTPRoute': ['@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute', 'HTTPRoute'],
};

// ---- hand-written schemas (no registry package ships these CRDs) ----
const str = { type: 'string', minLength: 1 };
const meta = {
  type: 'object', additionalProperties: false, required: ['name'],
  properties: {
    name: str, namespace: str,
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
};
const targetRef = {
  type: 'object', additionalProperties: false, required: ['group', 'kind', 'name'],
  properties: { group: { type: 'string' }, kind: str, name: str, sectionName: str },
};
function kind(apiVersion: string, k: string, spec: object): object {
  return {
    type: 'object', additionalProperties: false, required: ['apiVersion', 'kind', 'metadata', 'spec'],
    properties: { apiVersion: { const: apiVersion }, kind: { const: k }, metadata: meta, spec },
  };
}
/** From envoyproxy/gateway api/v1alpha1 (EnvoyExtensionPolicy, Wasm, EnvoyPatchPolicy). */
const envoyExtensionPolicy = kind('gateway.envoyproxy.io/v1alpha1', 'EnvoyExtensionPolicy', {
  type: 'object', additionalProperties: false,
  properties: {
    targetRef, targetRefs: { type: 'array', minItems: 1, items: targetRef },
    wasm: {
      type: 'array', minItems: 1,
      items: {
        type: 'object', additionalProperties: false, required: ['code'],
        properties: {
          name: str, rootID: str, failOpen: { type: 'boolean' }, config: {},
          code: {
            type: 'object', additionalProperties: false, required: ['type'],
            properties: {
              type: { enum: ['HTTP', 'Image', 'ConfigMap'] },
              http: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: str } },
              image: {
                type: 'object', additionalProperties: false, required: ['url'],
                properties: { url: str, pullSecretRef: { type: 'object', additionalProperties: false, required: ['name'], properties: { group: { type: 'string' }, kind: str, name: str, namespace: str } } },
              },
              sha256: { type: 'string', pattern: '^[a-f0-9]{64}$' },
              pullPolicy: { enum: ['IfNotPresent', 'Always'] },
            },
          },
        },
      },
    },
  },
});
const envoyPatchPolicy = kind('gateway.envoyproxy.io/v1alpha1', 'EnvoyPatchPolicy', {
  type: 'object', additionalProperties: false, required: ['type', 'targetRef'],
  properties: {
    type: { const: 'JSONPatch' },
    targetRef,
    priority: { type: 'integer' },
    jsonPatches: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['type', 'name', 'operation'],
        properties: {
          type: { enum: ['type.googleapis.com/envoy.config.listener.v3.Listener', 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
            'type.googleapis.com/envoy.config.cluster.v3.Cluster', 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
            'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret'] },
          name: str,
          operation: {
            type: 'object', additionalProperties: false, required: ['op'],
            properties: { op: { enum: ['add', 'remove', 'replace', 'move', 'copy', 'test'] }, path: { type: 'string' }, jsonPath: { type: 'string' }, from: { type: 'string' }, value: {} },
          },
        },
      },
    },
  },
});
/** The inference extension's published CRD (validate/schemas/README.md). */
const inferencePool = kind('inference.networking.k8s.io/v1', 'InferencePool', crdSpecSchema('inferencepool.v1.json'));
/**
 * From istio/api extensions/v1alpha1 (WasmPlugin). @kubernetes-models/istio 2.x, the last release
 * for Node 20, predates its type and failStrategy fields.
 */
const wasmPlugin = kind('extensions.istio.io/v1alpha1', 'WasmPlugin', {
  type: 'object', additionalProperties: false,
  properties: {
    selector: {
      type: 'object', additionalProperties: false,
      properties: { matchLabels: { type: 'object', additionalProperties: { type: 'string' } } },
    },
    targetRef, targetRefs: { type: 'array', items: targetRef },
    url: str, sha256: { type: 'string', pattern: '^(([0-9a-f]){64})?$' },
    imagePullPolicy: { enum: ['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'] },
    imagePullSecret: str, verificationKey: { type: 'string' },
    pluginConfig: { type: 'object' }, pluginName: str,
    phase: { enum: ['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'] },
    priority: { type: ['integer', 'null'] },
    failStrategy: { enum: ['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'] },
    type: { enum: ['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'] },
    vmConfig: {
      type: 'object', additionalProperties: false,
      properties: {
        env: {
          type: 'array',
          items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: str, value: { type: 'string' }, valueFrom: { enum: ['INLINE', 'HOST'] } } },
        },
      },
    },
    match: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false,
        properties: {
          mode: { enum: ['UNDEFINED', 'CLIENT', 'SERVER', 'CLIENT_AND_SERVER'] },
          ports: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['number'], properties: { number: { type: 'integer', minimum: 1, maximum: 65535 } } } },
        },
      },
    },
  },
});
/** Kinds validated with the hand-written schemas above (their CRDs are in no registry package). */
export const HAND_WRITTEN_KINDS: Record<string, object> = {
  'extensions.istio.io/v1alpha1/WasmPlugin': wasmPlugin,
  'gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy': envoyExtensionPolicy,
  'gateway.envoyproxy.io/v1alpha1/EnvoyPatchPolicy': envoyPatchPolicy,
};

/** Kinds validated with their project's own published CRD schema (validate/schemas/). */
export const CRD_KINDS: Record<string, object> = {
  'inference.networking.k8s.io/v1/InferencePool': inferencePool,
};

const ajv = new Ajv({ allErrors: true, strict: true });
const handValidators = new Map<string, ValidateFunction>();
const publishedValidators = new Map<string, ValidateFn>();

async function publishedValidator(key: string): Promise<ValidateFn | null> {
  const cached = publishedValidators.get(key);
  if (cached) return cached;
  const entry = PUBLISHED_KINDS[key];
  if (!entry) return null;
  const mod = (await import(entry[0])) as Record<string, { prototype: { validate(this: unknown): void } }>;
  const model = mod[entry[1]];
  const schemaVersion = entry[2];
  // The model's validate() runs the generated validator on `this`, seen as an instance: some
  // releases keep the schema id on the prototype under a symbol, and without it validate nothing.
  const fn: ValidateFn = (data) => model.prototype.validate.call(new Proxy(data as object, {
    get: (t, key, receiver) => {
      if (typeof key === 'symbol') return Reflect.get(model.prototype, key);
      const v = Reflect.get(t, key, receiver);
      return key === 'apiVersion' && schemaVersion !== undefined ? schemaVersion : v;
    },
  }));
  publishedValidators.set(key, fn);
  return fn;
}

function jsonPointerToPath(pointer: string): string {
  return pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function ajvMessage(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `unknown field '${String(e.params.additionalProperty)}'`;
  if (e.keyword === 'enum') return `${e.message}: ${JSON.stringify(e.params.allowedValues)}`;
  return e.message ?? e.keyword;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Wraps `value` so every key looked up on any nested object is recorded. */
function tracked(value: unknown, reads: Map<object, Set<string>>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const proxies = new WeakMap<object, object>();
  const wrap = (target: object): object => {
    const existing = proxies.get(target);
    if (existing) return existing;
    const p = new Proxy(target, {
      get(t, key, receiver) {
        if (typeof key === 'string') {
          let set = reads.get(t);
          if (!set) reads.set(t, (set = new Set()));
          set.add(key);
        }
        const v = Reflect.get(t, key, receiver);
        return typeof v === 'object' && v !== null ? wrap(v) : v;
      },
    });
    proxies.set(target, p);
    return p;
  };
  return wrap(value);
}

/** Keys of schema-typed objects the validator never looked up. */
function unknownKeys(value: unknown, reads: Map<object, Set<string>>, at: string, out: Array<[string, string]>): void {
  if (Array.isArray(value)) { value.forEach((v, i) => unknownKeys(v, reads, `${at}[${i}]`, out)); return; }
  if (!isPlainObject(value)) return;
  const seen = reads.get(value);
  for (const [k, v] of Object.entries(value)) {
    const here = at ? `${at}.${k}` : k;
    if (seen && seen.size > 0 && !seen.has(k)) { out.push([here, `unknown field '${k}' (not in the schema)`]); continue; }
    unknownKeys(v, reads, here, out);
  }
}

export interface KubeCheck {
  findings: Finding[];
  /** How the kind was checked, for the report. */
  schema: 'published' | 'published CRD' | 'hand-written' | 'none';
}

/** Checks one Kubernetes object; `where` prefixes every path (e.g. "Deployment/x"). */
export async function checkKubeObject(obj: unknown, file: string, where: string): Promise<KubeCheck> {
  const findings: Finding[] = [];
  const add = (p: string, message: string): void => { findings.push({ file, path: p ? `${where}.${p}` : where, message }); };
  if (!isPlainObject(obj) || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') {
    add('', 'not a Kubernetes object (needs apiVersion and kind)');
    return { findings, schema: 'none' };
  }
  const key = `${obj.apiVersion}/${obj.kind}`;
  const hand = HAND_WRITTEN_KINDS[key] ?? CRD_KINDS[key];
  if (hand) {
    let v = handValidators.get(key);
    if (!v) { v = ajv.compile(hand); handValidators.set(key, v); }
    if (!v(obj)) for (const e of v.errors ?? []) add(jsonPointerToPath(e.instancePath), ajvMessage(e));
    return { findings, schema: CRD_KINDS[key] ? 'published CRD' : 'hand-written' };
  }
  const validate = await publishedValidator(key);
  if (!validate) {
    add('', `no schema for ${key}: add it to validate/kube.ts`);
    return { findings, schema: 'none' };
  }
  const reads = new Map<object, Set<string>>();
  try {
    validate(tracked(obj, reads));
  } catch (err) {
    const errors = (err as { errors?: ErrorObject[] }).errors;
    if (errors?.length) for (const e of errors) add(jsonPointerToPath(e.instancePath), ajvMessage(e));
    else add('', err instanceof Error ? err.message : String(err));
  }
  const unknown: Array<[string, string]> = [];
  unknownKeys(obj, reads, '', unknown);
  for (const [p, m] of unknown) add(p, m);
  return { findings, schema: 'published' };
}
