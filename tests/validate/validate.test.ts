// `npm run validate` on the real files (must be clean) and on broken copies
// written to a temp dir (each must be caught, naming the file and the path).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateRepo } from '../../validate/repo.js';
import { formatFinding, type Finding } from '../../validate/finding.js';
import { checkEnvoyMessage } from '../../validate/envoyProto.js';
import { exportedMetrics, metricsInQuery } from '../../validate/dashboard.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** What the validator reads; the copies hold only these. */
const INPUTS = ['envoy', 'manifests', 'dashboards', 'plugin/METRICS.md', 'plugin/config.schema.json', 'plugin/CONFIG.md', 'plugin/Dockerfile', 'Dockerfile', 'assembly', 'control-plane/rbac.yaml'];
const tmpRoots: string[] = [];
after(() => { for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true }); });

function copyOfRepo(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prefix-router-validate-'));
  tmpRoots.push(dir);
  for (const p of INPUTS) {
    const src = path.join(REPO, p);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(dir, p), { recursive: true });
  }
  return dir;
}

/** Replaces one exact occurrence of `from` in a copied file (fails the test if it is not there once). */
function edit(root: string, file: string, from: string, to: string): void {
  const p = path.join(root, file);
  const text = fs.readFileSync(p, 'utf8');
  assert.equal(text.split(from).length - 1, 1, `expected exactly one '${from}' in ${file}`);
  fs.writeFileSync(p, text.replace(from, to));
}

function show(findings: Finding[]): string {
  return findings.map(formatFinding).join('\n') || '(no findings)';
}

async function findingsAfter(file: string, from: string, to: string): Promise<Finding[]> {
  const root = copyOfRepo();
  edit(root, file, from, to);
  return (await validateRepo(root)).findings;
}

function assertFinding(findings: Finding[], file: string, pathPart: string, messagePart: string): void {
  const hit = findings.find((f) => f.file === file && f.path.includes(pathPart) && f.message.includes(messagePart));
  assert.ok(hit, `expected a finding in ${file} at ...${pathPart} saying ...${messagePart}; got:\n${show(findings)}`);
}

test('the real envoy/, manifests/ and plugin/ files validate cleanly', async () => {
  const { findings, checked } = await validateRepo(REPO);
  assert.deepEqual(findings.map(formatFinding), []);
  // The run really covered each surface.
  for (const part of ['envoy/envoy.yaml: Envoy bootstrap', 'EnvoyFilter/prefix-router-wasm configPatches[0] (HTTP_FILTER)', 'EnvoyPatchPolicy/prefix-router jsonPatches[0]',
    'WasmPlugin/prefix-router pluginConfig', 'consistency of manifests/overlays/istio/', 'consistency of envoy/', 'apps/v1 Deployment (published schema)',
    'picker wiring of manifests/overlays/inference-pool/gke-internal/', 'inference.networking.k8s.io/v1 InferencePool (published CRD schema)']) {
    assert.ok(checked.some((c) => c.includes(part)), `no check covering '${part}'`);
  }
});

test('an unknown field in envoy.yaml is caught with its path', async () => {
  const findings = await findingsAfter('envoy/envoy.yaml', '    cleanup_interval: 60s\n', '    cleanup_interval: 60s\n    cleanup_intervall: 60s\n');
  assertFinding(findings, 'envoy/envoy.yaml', 'static_resources.clusters[0].cleanup_intervall', "unknown field 'cleanup_intervall' in envoy.config.cluster.v3.Cluster");
});

test('an unknown field inside a typed_config Any is caught', async () => {
  const findings = await findingsAfter('envoy/envoy.yaml', '                  vm_id: prefix_router\n', '                  vm_id: prefix_router\n                  vm_name: x\n');
  assertFinding(findings, 'envoy/envoy.yaml', 'http_filters[0].typed_config.config.vm_config.vm_name', 'envoy.extensions.wasm.v3.VmConfig');
});

test('a wrong type in envoy.yaml is caught (Duration as a number, enum misspelt)', async () => {
  let findings = await findingsAfter('envoy/envoy.yaml', '    connect_timeout: 5s\n', '    connect_timeout: 5\n');
  assertFinding(findings, 'envoy/envoy.yaml', 'static_resources.clusters[0].connect_timeout', 'expected a duration string');
  findings = await findingsAfter('envoy/envoy.yaml', '    lb_policy: CLUSTER_PROVIDED\n', '    lb_policy: CLUSTER_PROVIDE\n');
  assertFinding(findings, 'envoy/envoy.yaml', 'static_resources.clusters[0].lb_policy', 'not a value of enum');
});

test('a bad plugin configuration is caught wherever it is embedded', async () => {
  let findings = await findingsAfter('manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'maxBodyBytes: 1048576', 'maxBodyBytes: 12');
  assertFinding(findings, 'manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'WasmPlugin/prefix-router.spec.pluginConfig.maxBodyBytes', 'plugin config: must be >= 1024');
  findings = await findingsAfter('envoy/envoy.yaml', '"debugHeaders": false', '"debugHeader": false');
  assertFinding(findings, 'envoy/envoy.yaml', 'typed_config.config.configuration.value', "unknown field 'debugHeader'");
  findings = await findingsAfter('manifests/overlays/envoy-gateway/extensionpolicy.yaml', 'path: /v1/state', 'path: v1/state');
  assertFinding(findings, 'manifests/overlays/envoy-gateway/extensionpolicy.yaml', 'spec.wasm[0].config.controlPlane.path', 'must match pattern');
  findings = await findingsAfter('manifests/picker/deployment.yaml', '"debugHeaders":false', '"debugHeaders":false,"maxBodyBytes":12');
  assertFinding(findings, 'manifests/picker/deployment.yaml', 'Deployment/prefix-router-picker.spec.template.spec.containers[0].args --config.maxBodyBytes', 'plugin config: must be >= 1024');
});

test('debug headers turned on in any deployment are caught; left out, they are off', async () => {
  let findings = await findingsAfter('manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'debugHeaders: false', 'debugHeaders: true');
  assertFinding(findings, 'manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'WasmPlugin/prefix-router.spec.pluginConfig.debugHeaders', 'must be false in a deployment');
  findings = await findingsAfter('manifests/overlays/istio/envoyfilter-wasm.yaml', '"debugHeaders": false', '"debugHeaders": true');
  assertFinding(findings, 'manifests/overlays/istio/envoyfilter-wasm.yaml', 'EnvoyFilter/prefix-router-wasm.spec.configPatches[0].patch.value.typed_config.config.configuration.value.debugHeaders', 'must be false in a deployment');
  findings = await findingsAfter('envoy/envoy.yaml', ',\n                      "debugHeaders": false', '');
  assert.deepEqual(findings.filter((f) => f.path.endsWith('debugHeaders')), [], show(findings));
});

test('a control-plane cluster name the deployment does not define is caught', async () => {
  const findings = await findingsAfter('manifests/overlays/istio/envoyfilter-wasm.yaml', '"cluster": "prefix_router_control_plane"', '"cluster": "prefix_router_cp"');
  assertFinding(findings, 'manifests/overlays/istio/envoyfilter-wasm.yaml', 'EnvoyFilter/prefix-router-wasm', "polls cluster 'prefix_router_cp', which manifests/overlays/istio/ does not define");
});

test('a route to a cluster that is not defined, and a header the module does not set, are caught', async () => {
  let findings = await findingsAfter('manifests/overlays/envoy-gateway/patchpolicy.yaml', 'value: vllm_original_dst', 'value: vllm_original');
  assertFinding(findings, 'manifests/overlays/envoy-gateway/patchpolicy.yaml', 'jsonPatches[2].operation.value', "routes to cluster 'vllm_original'");
  findings = await findingsAfter('envoy/envoy.yaml', '      http_header_name: x-gateway-destination-endpoint\n', '      http_header_name: x-destination\n');
  assertFinding(findings, 'envoy/envoy.yaml', 'static_resources.clusters[0].original_dst_lb_config.http_header_name', "the module sets 'x-gateway-destination-endpoint'");
});

test('Envoy fragments inside manifests are checked against the protos', async () => {
  let findings = await findingsAfter('manifests/overlays/istio/routing/envoyfilter-clusters.yaml', '          cleanup_interval: 60s\n', '          cleanup_interval: 60s\n          max_requests_per_conection: 1\n');
  assertFinding(findings, 'manifests/overlays/istio/routing/envoyfilter-clusters.yaml', 'EnvoyFilter/prefix-router-routing.spec.configPatches[0].patch.value.max_requests_per_conection', 'unknown field');
  findings = await findingsAfter('manifests/overlays/envoy-gateway/patchpolicy.yaml', 'path: /virtual_hosts/0/routes/0/route/timeout', 'path: /virtual_hosts/0/routes/0/route/timeoutt');
  assertFinding(findings, 'manifests/overlays/envoy-gateway/patchpolicy.yaml', 'jsonPatches[3].operation.path', "unknown field 'timeoutt'");
  findings = await findingsAfter('manifests/overlays/envoy-gateway/patchpolicy.yaml', '        value: 4194304', '        value: lots');
  assertFinding(findings, 'manifests/overlays/envoy-gateway/patchpolicy.yaml', 'jsonPatches[5].operation.value', 'expected an integer');
});

test('Kubernetes objects: unknown fields and wrong types are caught with the object and path', async () => {
  let findings = await findingsAfter('manifests/base/deployment.yaml', '  replicas: 1\n', '  replica: 1\n');
  assertFinding(findings, 'manifests/base/deployment.yaml', 'Deployment/prefix-router-control-plane.spec.replica', "unknown field 'replica'");
  findings = await findingsAfter('manifests/vllm/deployment.yaml', '              containerPort: 8000\n', '              containerPort: "8000"\n');
  assertFinding(findings, 'manifests/vllm/deployment.yaml', 'Deployment/vllm-qwen2-5-3b.spec.template.spec.containers[0].ports[0].containerPort', 'must be integer');
  findings = await findingsAfter('manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'failStrategy: FAIL_CLOSE', 'failStrategy: CLOSE');
  assertFinding(findings, 'manifests/overlays/istio/wasmplugin/wasmplugin.yaml', 'WasmPlugin/prefix-router.spec.failStrategy', 'allowed values');
  findings = await findingsAfter('manifests/overlays/envoy-gateway/extensionpolicy.yaml', '      rootID: prefix_router', '      rootId: prefix_router');
  assertFinding(findings, 'manifests/overlays/envoy-gateway/extensionpolicy.yaml', 'EnvoyExtensionPolicy/prefix-router.spec.wasm[0]', "unknown field 'rootId'");
});

test('the InferencePool against the inference extension\'s CRD: the pre-GA portNumber and a Service ref without a port are caught', async () => {
  const findings = await findingsAfter('manifests/vllm/inferencepool.yaml', '    port:\n      number: 9002\n', '    portNumber: 9002\n');
  assertFinding(findings, 'manifests/vllm/inferencepool.yaml', 'InferencePool/vllm-qwen2-5-3b.spec.endpointPickerRef', "unknown field 'portNumber'");
  assertFinding(findings, 'manifests/vllm/inferencepool.yaml', 'InferencePool/vllm-qwen2-5-3b.spec.endpointPickerRef', "must have required property 'port'");
});

test('the endpoint-picker path is wired end to end: pool -> picker Service port -> container running picker on it -> control-plane Service', async () => {
  let findings = await findingsAfter('manifests/vllm/inferencepool.yaml', 'name: prefix-router-picker', 'name: prefix-router-epp');
  assertFinding(findings, 'manifests/vllm/inferencepool.yaml', 'InferencePool/vllm-qwen2-5-3b.spec.endpointPickerRef', "names Service 'prefix-router-epp', which manifests/overlays/inference-pool/");
  findings = await findingsAfter('manifests/picker/deployment.yaml', '- --port=9002', '- --port=9102');
  assertFinding(findings, 'manifests/picker/deployment.yaml', 'Deployment/prefix-router-picker.spec.template.spec.containers[0].args', 'picker listens on 9102, the Service sends to container port 9002');
  findings = await findingsAfter('manifests/picker/deployment.yaml', 'svc.cluster.local:9090', 'svc.cluster.local:9091');
  assertFinding(findings, 'manifests/picker/deployment.yaml', 'args --cluster', 'has no port 9091');
  findings = await findingsAfter('manifests/picker/deployment.yaml', '"debugHeaders":false', '"debugHeaders":true');
  assertFinding(findings, 'manifests/picker/deployment.yaml', 'args --config.debugHeaders', 'must be false in a deployment');
});

test('a kustomize patch that targets nothing is caught', async () => {
  const findings = await findingsAfter('manifests/overlays/istio/kustomization.yaml', 'kind: HTTPRoute, name: vllm-qwen2-5-3b }', 'kind: HTTPRoute, name: vllm }');
  assertFinding(findings, 'manifests/overlays/istio/kustomization.yaml', 'patches[0].target', 'matches no resource');
});

test('the strict Envoy walk: oneofs, wrappers, maps and Any well-known types', () => {
  const cluster = (extra: object): object => ({ name: 'c', type: 'STATIC', connect_timeout: '1s', ...extra });
  const t = 'envoy.config.cluster.v3.Cluster';
  assert.deepEqual(checkEnvoyMessage(t, cluster({ per_connection_buffer_limit_bytes: 1024 }), 'x'), []);
  // camelCase JSON names are accepted, as Envoy accepts them.
  assert.deepEqual(checkEnvoyMessage(t, cluster({ perConnectionBufferLimitBytes: 1024 }), 'x'), []);
  // Two members of the cluster_discovery_type oneof.
  assert.match(checkEnvoyMessage(t, cluster({ cluster_type: { name: 'x' } }), 'x').map((f) => f.message).join(), /oneof/);
  // A wrapper takes a bare value, within range.
  assert.match(checkEnvoyMessage(t, cluster({ per_connection_buffer_limit_bytes: -1 }), 'x').map((f) => f.message).join(), /out of range for uint32/);
  // Map values are walked.
  const md = { filter_metadata: { a: { k: 'v' } }, typed_filter_metadata: { b: { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 1 } } };
  const mdFindings = checkEnvoyMessage(t, cluster({ metadata: md }), 'x');
  assert.deepEqual(mdFindings.map((f) => f.path), ['metadata.typed_filter_metadata["b"].value']);
  // An Any naming a type Envoy does not have.
  assert.match(checkEnvoyMessage('envoy.config.listener.v3.Filter', { name: 'f', typed_config: { '@type': 'type.googleapis.com/envoy.nope.v3.Nope' } }, 'x')[0].message, /unknown type/);
});

test('the dashboard: every query names a metric the code exports; a Grafana model; METRICS.md lists every metric', async () => {
  let findings = await findingsAfter('dashboards/prefix-router.json', 'prefix_router_cp_replica_kv_usage"', 'prefix_router_cp_replica_kv_used"');
  assertFinding(findings, 'dashboards/prefix-router.json', 'targets[0].expr', 'prefix_router_cp_replica_kv_used is not a metric the project exports');
  findings = await findingsAfter('dashboards/prefix-router.json', 'prefix_router_replica_load_bound_passed_over_.+', 'prefix_router_replica_passed_over_.+');
  assertFinding(findings, 'dashboards/prefix-router.json', '.expr', 'must be "<family>_.+" for a per-replica family');
  findings = await findingsAfter('dashboards/prefix-router.json', '"uid": "prefix-router"', '"uid": 7');
  assertFinding(findings, 'dashboards/prefix-router.json', 'uid', 'must be a string');
  findings = await findingsAfter('dashboards/prefix-router.json', '"uid": "prefix-router"', '"uid": "prefix-router",');
  assertFinding(findings, 'dashboards/prefix-router.json', '(file)', 'not JSON');
  findings = await findingsAfter('plugin/METRICS.md', '`prefix_router_fallback_stale_state`', 'fallback_stale_state');
  assertFinding(findings, 'plugin/METRICS.md', 'prefix_router_fallback_stale_state', 'defined in the code but not documented');
});

test('metric names in PromQL: functions, labels, strings, durations and Grafana variables are not names', () => {
  const q = metricsInQuery('sum by (le, replica) (rate(foo_bucket{job="x", le!="1"}[$__rate_interval])) / ignoring(replica) group_left sum(bar_total offset 5m) * 1e3 > bool 0.5');
  assert.deepEqual(q.names, ['foo_bucket', 'bar_total']);
  const r = metricsInQuery('label_replace({__name__=~"fam_.+"}, "replica", "$1", "__name__", "fam_(.+)")');
  assert.deepEqual(r, { names: [], nameMatchers: [{ op: '=~', value: 'fam_.+' }] });
  // Derived from the code: the filter's stats as Envoy names them, the control plane's registry, histogram series.
  const m = exportedMetrics(REPO);
  for (const n of ['prefix_router_requests_routed', 'prefix_router_control_plane_age_ms', 'prefix_router_cp_scrape_duration_seconds_bucket', 'prefix_router_cp_replica_prefix_cache_hits']) assert.ok(m.names.has(n), n);
  assert.ok(m.replicaFamilies.includes('prefix_router_replica_requests'));
});
