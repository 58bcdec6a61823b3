// `npm run validate` over a checkout: every Envoy config and fragment against
// Envoy's protos, every Kubernetes object against its schema, every embedded
// plugin configuration against plugin/config.schema.json, and the names that
// must agree across envoy/, manifests/, plugin/ and the module.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { validateDashboards } from './dashboard.js';
import type { Finding } from './finding.js';
import { checkEnvoyMessage, lookupMessage, typeAtPointer } from './envoyProto.js';
import { checkPickerWiring } from './pickerWiring.js';
import { checkKubeObject } from './kube.js';

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const WASM_FILTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm';
const STRING_VALUE_TYPE = 'type.googleapis.com/google.protobuf.StringValue';
const WASM_FILTER_NAME = 'envoy.filters.http.wasm';
const ROUTER_FILTER_NAME = 'envoy.filters.http.router';
const V8 = 'envoy.wasm.runtime.v8';
/** Envoy message type of an Istio EnvoyFilter patch value, by applyTo. */
const ISTIO_PATCH_TYPES: Record<string, string> = {
  LISTENER: 'envoy.config.listener.v3.Listener',
  FILTER_CHAIN: 'envoy.config.listener.v3.FilterChain',
  NETWORK_FILTER: 'envoy.config.listener.v3.Filter',
  HTTP_FILTER: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter',
  ROUTE_CONFIGURATION: 'envoy.config.route.v3.RouteConfiguration',
  VIRTUAL_HOST: 'envoy.config.route.v3.VirtualHost',
  HTTP_ROUTE: 'envoy.config.route.v3.Route',
  CLUSTER: 'envoy.config.cluster.v3.Cluster',
  EXTENSION_CONFIG: 'envoy.config.core.v3.TypedExtensionConfig',
  BOOTSTRAP: 'envoy.config.bootstrap.v3.Bootstrap',
  LISTENER_FILTER: 'envoy.config.listener.v3.ListenerFilter',
};

/** The names every deployment must agree on, read from the module's contract. */
export interface Contract {
  rootId: string;
  vmId: string;
  moduleFile: string;
  header: string;
  defaultCluster: string;
  controlPlanePort: number;
}

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj { return typeof v === 'object' && v !== null && !Array.isArray(v); }
function get(v: unknown, ...keys: Array<string | number>): unknown {
  let cur = v;
  for (const k of keys) {
    if (typeof k === 'number') cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isObj(cur) ? (cur[k] ?? cur[k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())]) : undefined;
  }
  return cur;
}
function arr(v: unknown): unknown[] { return Array.isArray(v) ? v : []; }

/** A file's documents (multi-document YAML), with a readable label each. */
interface Doc { file: string; index: number; value: unknown; label: string }

/** An Envoy cluster definition found somewhere, and a route that targets a cluster. */
interface ClusterDef { file: string; path: string; value: Obj }
interface RouteRef { file: string; path: string; cluster: string }
interface PluginUse { file: string; path: string; config: unknown; rootId?: string; vmId?: string; moduleFile?: string; runtime?: string }

/** Everything one deployment (envoy/ or one kustomize root) defines. */
interface Unit {
  name: string;
  clusters: ClusterDef[];
  routes: RouteRef[];
  plugins: PluginUse[];
  services: Array<{ file: string; value: Obj }>;
  kinds: Set<string>;
  /** Every object the root renders (for the endpoint-picker wiring). */
  docs: Doc[];
}
function newUnit(name: string): Unit { return { name, clusters: [], routes: [], plugins: [], services: [], kinds: new Set(), docs: [] }; }

export interface ValidateResult {
  findings: Finding[];
  /** What was checked, one line each, for the summary. */
  checked: string[];
}

export class RepoValidator {
  readonly findings: Finding[] = [];
  readonly checked: string[] = [];
  private readonly pluginSchema: ValidateFunction;
  /** What the filter does when a configuration leaves debugHeaders out (the schema's default). */
  private readonly debugHeadersDefault: unknown;

  constructor(readonly root: string) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
    const schema = JSON.parse(fs.readFileSync(path.join(root, 'plugin/config.schema.json'), 'utf8')) as Obj;
    this.pluginSchema = ajv.compile(schema);
    this.debugHeadersDefault = get(schema, 'properties', 'debugHeaders', 'default');
  }

  private rel(p: string): string { return path.relative(this.root, p) || p; }
  private add(file: string, at: string, message: string): void { this.findings.push({ file, path: at || '(root)', message }); }

  /** The names the module uses: plugin/CONFIG.md, checked against assembly/ sources. */
  contract(): Contract {
    const c: Contract = { rootId: 'prefix_router', vmId: 'prefix_router', moduleFile: 'prefix-router.wasm', header: 'x-gateway-destination-endpoint', defaultCluster: 'prefix_router_control_plane', controlPlanePort: 9090 };
    const configMd = path.join(this.root, 'plugin/CONFIG.md');
    if (fs.existsSync(configMd)) {
      const md = fs.readFileSync(configMd, 'utf8');
      const ids = md.match(/root_id and vm_id `([^`]+)`/);
      if (ids) { c.rootId = ids[1]; c.vmId = ids[1]; } else this.add('plugin/CONFIG.md', 'names', 'does not state "root_id and vm_id `...`"');
      const header = md.match(/request header\s+`([^`]+)`/);
      if (header) c.header = header[1]; else this.add('plugin/CONFIG.md', 'names', 'does not name the request header');
      const cluster = md.match(/\| `controlPlane\.cluster` \| string \| `([^`]+)`/);
      if (cluster) c.defaultCluster = cluster[1]; else this.add('plugin/CONFIG.md', 'controlPlane.cluster', 'no default given');
    } else this.add('plugin/CONFIG.md', '(file)', 'missing');
    const schema = JSON.parse(fs.readFileSync(path.join(this.root, 'plugin/config.schema.json'), 'utf8')) as Obj;
    const schemaDefault = get(schema, 'properties', 'controlPlane', 'properties', 'cluster', 'default');
    if (schemaDefault !== c.defaultCluster) this.add('plugin/config.schema.json', 'properties.controlPlane.properties.cluster.default', `is ${JSON.stringify(schemaDefault)}, plugin/CONFIG.md says '${c.defaultCluster}'`);
    // The module's own sources must use the same names (the lead owns assembly/).
    const sources = listFiles(path.join(this.root, 'assembly'), '.ts').map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    if (sources) {
      if (!sources.includes(`"${c.header}"`)) this.add('assembly/', 'header', `no source in assembly/ uses the header '${c.header}'`);
      if (!sources.includes(`"${c.defaultCluster}"`)) this.add('assembly/', 'controlPlane.cluster', `the module's default cluster is not '${c.defaultCluster}'`);
      this.checked.push(`module names: header ${c.header}, default cluster ${c.defaultCluster} (assembly/ and plugin/CONFIG.md agree)`);
    } else this.checked.push('module names: assembly/ not present, names taken from plugin/CONFIG.md only');
    return c;
  }

  private readDocs(file: string): Doc[] {
    const text = fs.readFileSync(file, 'utf8');
    const docs: Doc[] = [];
    parseAllDocuments(text, { merge: true }).forEach((d, index) => {
      for (const e of d.errors) this.add(this.rel(file), `document ${index}`, `YAML: ${e.message}`);
      if (d.errors.length) return;
      const value: unknown = d.toJS({ maxAliasCount: 100 });
      if (value === null || value === undefined) return;
      const kind = get(value, 'kind'), name = get(value, 'metadata', 'name');
      const label = typeof kind === 'string' ? `${kind}/${typeof name === 'string' ? name : '?'}` : '';
      docs.push({ file: this.rel(file), index, value, label });
    });
    return docs;
  }

  // ---------------- plugin configuration ----------------

  private checkPluginConfig(file: string, at: string, config: unknown): void {
    if (!this.pluginSchema(config)) {
      for (const e of this.pluginSchema.errors ?? []) this.add(file, `${at}${pointerSuffix(e)}`, `plugin config: ${pluginMessage(e)}`);
      return;
    }
    // Everything validated here is a deployment; only `npm start` turns the debug headers on.
    const debugHeaders = get(config, 'debugHeaders') ?? this.debugHeadersDefault;
    if (debugHeaders !== false) this.add(file, `${at}.debugHeaders`, `must be false in a deployment${get(config, 'debugHeaders') === undefined ? ` (the filter's default is ${String(this.debugHeadersDefault)}: set it to false)` : ''}: the debug headers hand every client the chosen replica's ip:port`);
  }

  /** A plugin configuration held as JSON text (Envoy StringValue, GKE config). */
  private parsePluginJson(file: string, at: string, text: unknown): unknown {
    if (typeof text !== 'string') { this.add(file, at, 'plugin config must be JSON text'); return undefined; }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      this.add(file, at, `plugin config is not JSON: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  /** Reads an envoy.filters.http.wasm HttpFilter (already proto-checked) into a plugin use. */
  private wasmFilter(file: string, at: string, filter: unknown): PluginUse | null {
    const tc = get(filter, 'typed_config');
    if (get(tc, '@type') !== WASM_FILTER_TYPE) return null;
    const cfg = get(tc, 'config');
    const configuration = get(cfg, 'configuration');
    let config: unknown;
    if (get(configuration, '@type') !== STRING_VALUE_TYPE) this.add(file, `${at}.typed_config.config.configuration`, `must be a ${STRING_VALUE_TYPE} holding the JSON plugin configuration`);
    else {
      config = this.parsePluginJson(file, `${at}.typed_config.config.configuration.value`, get(configuration, 'value'));
      if (config !== undefined) this.checkPluginConfig(file, `${at}.typed_config.config.configuration.value`, config);
    }
    const filename = get(cfg, 'vm_config', 'code', 'local', 'filename');
    return {
      file, path: `${at}.typed_config.config`, config,
      rootId: get(cfg, 'root_id') as string | undefined,
      vmId: get(cfg, 'vm_config', 'vm_id') as string | undefined,
      runtime: get(cfg, 'vm_config', 'runtime') as string | undefined,
      moduleFile: typeof filename === 'string' ? path.posix.basename(filename) : undefined,
    };
  }

  // ---------------- envoy/ ----------------

  validateEnvoyDir(): Unit | null {
    const file = path.join(this.root, 'envoy/envoy.yaml');
    if (!fs.existsSync(file)) { this.add('envoy/envoy.yaml', '(file)', 'missing'); return null; }
    const unit = newUnit('envoy/');
    const docs = this.readDocs(file);
    if (docs.length !== 1) { this.add('envoy/envoy.yaml', '(file)', 'must hold exactly one YAML document (the bootstrap)'); return unit; }
    const rel = docs[0].file, boot = docs[0].value;
    this.findings.push(...checkEnvoyMessage(BOOTSTRAP, boot, rel));
    this.checked.push(`${rel}: Envoy bootstrap against ${BOOTSTRAP} (strict)`);
    arr(get(boot, 'static_resources', 'clusters')).forEach((c, i) => { if (isObj(c)) unit.clusters.push({ file: rel, path: `static_resources.clusters[${i}]`, value: c }); });
    arr(get(boot, 'static_resources', 'listeners')).forEach((l, li) => {
      arr(get(l, 'filter_chains')).forEach((fc, fci) => {
        arr(get(fc, 'filters')).forEach((f, fi) => {
          const base = `static_resources.listeners[${li}].filter_chains[${fci}].filters[${fi}].typed_config`;
          const hcm = get(f, 'typed_config');
          const filters = arr(get(hcm, 'http_filters'));
          const names = filters.map((h) => get(h, 'name'));
          filters.forEach((h, hi) => {
            const use = this.wasmFilter(rel, `${base}.http_filters[${hi}]`, h);
            if (!use) return;
            unit.plugins.push(use);
            const router = names.indexOf(ROUTER_FILTER_NAME);
            if (router < 0 || router < hi) this.add(rel, `${base}.http_filters[${hi}]`, `${WASM_FILTER_NAME} must come before ${ROUTER_FILTER_NAME}`);
          });
          arr(get(hcm, 'route_config', 'virtual_hosts')).forEach((vh, vi) => {
            arr(get(vh, 'routes')).forEach((r, ri) => {
              const cluster = get(r, 'route', 'cluster');
              if (typeof cluster === 'string') unit.routes.push({ file: rel, path: `${base}.route_config.virtual_hosts[${vi}].routes[${ri}].route.cluster`, cluster });
            });
          });
        });
      });
    });
    this.validateCompose(unit);
    return unit;
  }

  private validateCompose(unit: Unit): void {
    const file = path.join(this.root, 'envoy/docker-compose.yaml');
    if (!fs.existsSync(file)) { this.add('envoy/docker-compose.yaml', '(file)', 'missing'); return; }
    const [doc] = this.readDocs(file);
    if (!doc) return;
    const rel = doc.file, compose = doc.value;
    const services = get(compose, 'services');
    if (!isObj(services)) { this.add(rel, 'services', 'missing'); return; }
    const envoy = get(services, 'envoy');
    const image = get(envoy, 'image');
    if (typeof image !== 'string' || !/^envoyproxy\/envoy:v\d+\.\d+\.\d+$/.test(image)) this.add(rel, 'services.envoy.image', `must be envoyproxy/envoy pinned to a release (vX.Y.Z), got ${JSON.stringify(image)}`);
    const volumes = arr(get(envoy, 'volumes')).filter((v): v is string => typeof v === 'string');
    for (const target of unit.plugins.map((p) => p.moduleFile)) {
      const mount = volumes.find((v) => v.split(':')[1]?.endsWith(`/${target}`));
      if (!mount) { this.add(rel, 'services.envoy.volumes', `no volume mounts the module at .../${target} (the filename in envoy.yaml)`); continue; }
      if (!mount.startsWith('../plugin/prefix-router.wasm:')) this.add(rel, 'services.envoy.volumes', `the module mount must come from ../plugin/prefix-router.wasm (npm run build:wasm output), got '${mount}'`);
    }
    if (!volumes.some((v) => v.startsWith('./envoy.yaml:/etc/envoy/envoy.yaml'))) this.add(rel, 'services.envoy.volumes', 'must mount ./envoy.yaml at /etc/envoy/envoy.yaml');
    // Control plane: built from the repository's Dockerfile, listening on the cluster's port, told the replicas' static IPs.
    const cp = get(services, 'control-plane');
    const build = get(cp, 'build');
    if (get(build, 'context') !== '..' || get(build, 'dockerfile') !== 'Dockerfile') this.add(rel, 'services.control-plane.build', "must be {context: '..', dockerfile: Dockerfile}");
    const cmd = arr(get(cp, 'command')).map(String);
    const port = cmd[cmd.indexOf('--port') + 1];
    const cpCluster = unit.clusters.find((c) => get(c.value, 'name') === 'prefix_router_control_plane');
    const sock = get(cpCluster?.value, 'load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address', 'socket_address');
    if (cpCluster) {
      if (String(get(sock, 'port_value')) !== port) this.add(rel, 'services.control-plane.command', `--port ${port} but envoy.yaml's cluster prefix_router_control_plane dials port ${String(get(sock, 'port_value'))}`);
      if (!isObj(get(services, String(get(sock, 'address'))))) this.add('envoy/envoy.yaml', `${cpCluster.path}.load_assignment`, `dials '${String(get(sock, 'address'))}', which is no service in docker-compose.yaml`);
    }
    const replicasArg = cmd[cmd.indexOf('--replicas') + 1] ?? '';
    const replicaIps = replicasArg.split(',').map((u) => u.replace(/^https?:\/\//, '').split(':')[0]).filter(Boolean);
    const staticIps = new Map<string, string[]>();
    for (const [name, svc] of Object.entries(services)) {
      const ip = get(svc, 'networks', 'prefix-router', 'ipv4_address');
      if (typeof ip !== 'string') { this.add(rel, `services.${name}.networks`, 'needs a static ipv4_address on the prefix-router network (ORIGINAL_DST dials replica IPs)'); continue; }
      const profiles = arr(get(svc, 'profiles')).map(String).join(',') || 'default';
      staticIps.set(`${profiles}:${ip}`, [...(staticIps.get(`${profiles}:${ip}`) ?? []), name]);
    }
    for (const [key, names] of staticIps) if (names.length > 1) this.add(rel, 'services', `services ${names.join(', ')} share ${key.split(':')[1]} in one profile`);
    for (const profile of ['sim', 'gpu']) {
      const ips = [...staticIps.keys()].filter((k) => k.startsWith(`${profile}:`)).map((k) => k.split(':')[1]);
      for (const ip of replicaIps) if (!ips.includes(ip)) this.add(rel, 'services.control-plane.command', `--replicas names ${ip}, which no '${profile}' replica has`);
      if (ips.length !== replicaIps.length) this.add(rel, 'services', `profile '${profile}' has ${ips.length} replicas, --replicas lists ${replicaIps.length}`);
    }
    this.checked.push(`${rel}: image pin, module and config mounts, control-plane build/port, replica static IPs`);
  }

  // ---------------- manifests/ ----------------

  /** Every kustomization under manifests/, as units of the documents it renders (resources only; patches are checked for a target). */
  async validateManifests(): Promise<Unit[]> {
    const dir = path.join(this.root, 'manifests');
    if (!fs.existsSync(dir)) { this.add('manifests/', '(dir)', 'missing'); return []; }
    const kustomizations = listFiles(dir, 'kustomization.yaml');
    const perFile = new Map<string, Doc[]>();
    const units: Unit[] = [];
    const docsOf = (file: string): Doc[] => {
      let d = perFile.get(file);
      if (!d) { d = this.readDocs(file); perFile.set(file, d); }
      return d;
    };
    const collect = (kdir: string, seen: Set<string>): Doc[] => {
      const kfile = path.join(kdir, 'kustomization.yaml');
      if (seen.has(kfile)) return [];
      seen.add(kfile);
      const [k] = docsOf(kfile);
      if (!k) return [];
      this.checkKustomization(k);
      const out: Doc[] = [];
      for (const r of arr(get(k.value, 'resources')).map(String)) {
        const p = path.resolve(kdir, r);
        if (fs.existsSync(path.join(p, 'kustomization.yaml'))) out.push(...collect(p, seen));
        else if (fs.existsSync(p) && fs.statSync(p).isFile()) out.push(...docsOf(p));
        else this.add(k.file, `resources`, `'${r}' is neither a file nor a kustomization directory`);
      }
      return out;
    };
    for (const kfile of kustomizations) {
      const kdir = path.dirname(kfile);
      const docs = collect(kdir, new Set());
      const [k] = docsOf(kfile);
      // Patches must hit a resource this kustomization renders.
      arr(get(k?.value, 'patches')).forEach((p, i) => {
        const t = get(p, 'target');
        const hit = docs.some((d) => get(d.value, 'kind') === get(t, 'kind') && get(d.value, 'metadata', 'name') === get(t, 'name'));
        if (!hit) this.add(k!.file, `patches[${i}].target`, `matches no resource of this kustomization (${String(get(t, 'kind'))}/${String(get(t, 'name'))})`);
      });
      const unit = newUnit(path.relative(this.root, kdir) + '/');
      for (const d of docs) this.collectUnit(unit, d);
      units.push(unit);
    }
    // Each object file once: schema, Envoy fragments, plugin configs.
    const all = listFiles(dir, '.yaml').filter((f) => path.basename(f) !== 'kustomization.yaml');
    await this.checkObjects(all, docsOf);
    return units;
  }

  private checkKustomization(k: Doc): void {
    const allowed = new Set(['apiVersion', 'kind', 'namespace', 'labels', 'resources', 'patches', 'secretGenerator', 'configMapGenerator', 'images', 'components']);
    if (get(k.value, 'apiVersion') !== 'kustomize.config.k8s.io/v1beta1' || get(k.value, 'kind') !== 'Kustomization') this.add(k.file, '(root)', 'must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization');
    if (isObj(k.value)) for (const key of Object.keys(k.value)) if (!allowed.has(key)) this.add(k.file, key, `unknown or unused kustomization field '${key}'`);
  }

  private async checkObjects(files: string[], docsOf: (f: string) => Doc[]): Promise<void> {
    const kinds = new Map<string, number>();
    for (const f of files) {
      for (const d of docsOf(f)) {
        const r = await checkKubeObject(d.value, d.file, d.label || `document ${d.index}`);
        this.findings.push(...r.findings);
        const key = `${String(get(d.value, 'apiVersion'))} ${String(get(d.value, 'kind'))} (${r.schema} schema)`;
        kinds.set(key, (kinds.get(key) ?? 0) + 1);
        this.checkEnvoyFragments(d);
        this.checkEmbeddedPluginConfigs(d);
      }
    }
    for (const [k, n] of [...kinds].sort()) this.checked.push(`manifests: ${n} x ${k}`);
  }

  /** EnvoyFilter patch values and EnvoyPatchPolicy values against Envoy's protos. */
  private checkEnvoyFragments(d: Doc): void {
    const kind = get(d.value, 'kind');
    if (kind === 'EnvoyFilter') {
      arr(get(d.value, 'spec', 'configPatches')).forEach((cp, i) => {
        const at = `${d.label}.spec.configPatches[${i}].patch.value`;
        const applyTo = String(get(cp, 'applyTo'));
        const type = ISTIO_PATCH_TYPES[applyTo];
        const value = get(cp, 'patch', 'value');
        if (value === undefined) return;
        if (!type) { this.add(d.file, `${d.label}.spec.configPatches[${i}].applyTo`, `no Envoy type known for applyTo ${applyTo}`); return; }
        this.findings.push(...checkEnvoyMessage(type, value, d.file, at));
        this.checked.push(`${d.file}: ${d.label} configPatches[${i}] (${applyTo}) against ${type}`);
        // The Wasm filter's plugin configuration, here as in envoy.yaml (wasmFilter checks it).
        if (applyTo === 'HTTP_FILTER' && this.wasmFilter(d.file, at, value)) this.checked.push(`${d.file}: ${d.label} configPatches[${i}] plugin configuration against plugin/config.schema.json`);
      });
    }
    if (kind === 'EnvoyPatchPolicy') {
      arr(get(d.value, 'spec', 'jsonPatches')).forEach((p, i) => {
        const at = `${d.label}.spec.jsonPatches[${i}].operation.value`;
        const url = String(get(p, 'type'));
        const typeName = url.slice(url.lastIndexOf('/') + 1);
        if (!lookupMessage(typeName)) { this.add(d.file, `${d.label}.spec.jsonPatches[${i}].type`, `unknown Envoy type ${url}`); return; }
        const op = get(p, 'operation', 'op'), pointer = String(get(p, 'operation', 'path') ?? '');
        const value = get(p, 'operation', 'value');
        if (op !== 'add' && op !== 'replace' && op !== 'test') return;
        if (pointer === '') {
          this.findings.push(...checkEnvoyMessage(typeName, value, d.file, at));
        } else {
          const target = typeAtPointer(typeName, pointer);
          if (target.error || !target.type) { this.add(d.file, `${d.label}.spec.jsonPatches[${i}].operation.path`, `'${pointer}' does not exist in ${typeName}: ${target.error ?? ''}`); return; }
          this.findings.push(...checkEnvoyMessage(target.type.fullName.slice(1), target.wrap ? target.wrap(value) : value, d.file, at));
        }
        this.checked.push(`${d.file}: ${d.label} jsonPatches[${i}] (${op} ${pointer || '""'}) against ${typeName}`);
      });
    }
  }

  private checkEmbeddedPluginConfigs(d: Doc): void {
    const kind = get(d.value, 'kind');
    if (kind === 'WasmPlugin') {
      this.checkPluginConfig(d.file, `${d.label}.spec.pluginConfig`, get(d.value, 'spec', 'pluginConfig'));
      this.checked.push(`${d.file}: ${d.label} pluginConfig against plugin/config.schema.json`);
    }
    if (kind === 'EnvoyExtensionPolicy') {
      arr(get(d.value, 'spec', 'wasm')).forEach((w, i) => {
        this.checkPluginConfig(d.file, `${d.label}.spec.wasm[${i}].config`, get(w, 'config'));
        this.checked.push(`${d.file}: ${d.label} wasm[${i}].config against plugin/config.schema.json`);
      });
    }
  }

  /** Records what a rendered document defines, for the consistency checks. */
  private collectUnit(unit: Unit, d: Doc): void {
    const kind = String(get(d.value, 'kind'));
    unit.kinds.add(kind);
    unit.docs.push(d);
    if (kind === 'Service') unit.services.push({ file: d.file, value: d.value as Obj });
    if (kind === 'EnvoyFilter') {
      arr(get(d.value, 'spec', 'configPatches')).forEach((cp, i) => {
        const at = `${d.label}.spec.configPatches[${i}].patch.value`;
        const value = get(cp, 'patch', 'value');
        const applyTo = get(cp, 'applyTo');
        if (applyTo === 'CLUSTER' && get(cp, 'patch', 'operation') === 'ADD' && isObj(value)) unit.clusters.push({ file: d.file, path: at, value });
        if (applyTo === 'HTTP_ROUTE' && typeof get(value, 'route', 'cluster') === 'string') unit.routes.push({ file: d.file, path: `${at}.route.cluster`, cluster: String(get(value, 'route', 'cluster')) });
        if (applyTo === 'HTTP_FILTER') {
          const use = this.wasmFilterQuiet(d.file, at, value);
          if (use) {
            unit.plugins.push(use);
            if (get(cp, 'patch', 'operation') !== 'INSERT_BEFORE' || get(cp, 'match', 'listener', 'filterChain', 'filter', 'subFilter', 'name') !== ROUTER_FILTER_NAME) {
              this.add(d.file, `${d.label}.spec.configPatches[${i}]`, `the wasm filter must be inserted with INSERT_BEFORE ${ROUTER_FILTER_NAME}`);
            }
          }
        }
      });
    }
    if (kind === 'EnvoyPatchPolicy') {
      arr(get(d.value, 'spec', 'jsonPatches')).forEach((p, i) => {
        const at = `${d.label}.spec.jsonPatches[${i}].operation`;
        const value = get(p, 'operation', 'value');
        const url = String(get(p, 'type'));
        if (url.endsWith('.Cluster') && get(p, 'operation', 'path') === '' && isObj(value)) {
          unit.clusters.push({ file: d.file, path: `${at}.value`, value });
          if (get(value, 'name') !== get(p, 'name')) this.add(d.file, `${d.label}.spec.jsonPatches[${i}].name`, `'${String(get(p, 'name'))}' differs from the cluster's name '${String(get(value, 'name'))}'`);
        }
        if (url.endsWith('.RouteConfiguration') && /\/route\/cluster$/.test(String(get(p, 'operation', 'path'))) && typeof value === 'string') unit.routes.push({ file: d.file, path: `${at}.value`, cluster: value });
      });
    }
    if (kind === 'WasmPlugin') unit.plugins.push({ file: d.file, path: `${d.label}.spec`, config: get(d.value, 'spec', 'pluginConfig'), rootId: get(d.value, 'spec', 'pluginName') as string });
    if (kind === 'EnvoyExtensionPolicy') arr(get(d.value, 'spec', 'wasm')).forEach((w, i) => unit.plugins.push({ file: d.file, path: `${d.label}.spec.wasm[${i}]`, config: get(w, 'config'), rootId: get(w, 'rootID') as string }));
  }

  /** wasmFilter without re-reporting plugin-config findings (each file is checked once in checkObjects). */
  private wasmFilterQuiet(file: string, at: string, filter: unknown): PluginUse | null {
    const before = this.findings.length;
    const use = this.wasmFilter(file, at, filter);
    this.findings.length = before;
    return use;
  }

  // ---------------- consistency ----------------

  checkUnit(unit: Unit, c: Contract): void {
    const clusterNames = new Map<string, ClusterDef>();
    for (const cl of unit.clusters) {
      const name = String(get(cl.value, 'name'));
      if (clusterNames.has(name)) this.add(cl.file, `${cl.path}.name`, `cluster '${name}' defined twice in ${unit.name}`);
      clusterNames.set(name, cl);
      if (get(cl.value, 'type') === 'ORIGINAL_DST') {
        if (get(cl.value, 'lb_policy') !== 'CLUSTER_PROVIDED') this.add(cl.file, `${cl.path}.lb_policy`, 'an ORIGINAL_DST cluster needs lb_policy CLUSTER_PROVIDED');
        if (get(cl.value, 'original_dst_lb_config', 'use_http_header') !== true) this.add(cl.file, `${cl.path}.original_dst_lb_config.use_http_header`, 'must be true: the filter hands the replica over in a header');
        const h = get(cl.value, 'original_dst_lb_config', 'http_header_name');
        if (h !== c.header) this.add(cl.file, `${cl.path}.original_dst_lb_config.http_header_name`, `is '${String(h)}', the module sets '${c.header}'`);
      }
    }
    for (const r of unit.routes) {
      const target = clusterNames.get(r.cluster);
      if (!target) this.add(r.file, r.path, `routes to cluster '${r.cluster}', which ${unit.name} does not define`);
      else if (get(target.value, 'type') !== 'ORIGINAL_DST') this.add(r.file, r.path, `routes to '${r.cluster}', which is not the ORIGINAL_DST cluster`);
    }
    const withPlugin = unit.plugins.length > 0;
    if (withPlugin && unit.routes.length === 0) this.add(unit.name, 'routes', 'no route sends traffic to the ORIGINAL_DST cluster');
    for (const p of unit.plugins) {
      if (p.rootId !== undefined && p.rootId !== c.rootId) this.add(p.file, `${p.path}.rootId`, `root id is '${p.rootId}', the module's is '${c.rootId}'`);
      if (p.vmId !== undefined && p.vmId !== c.vmId) this.add(p.file, `${p.path}.vm_config.vm_id`, `vm_id is '${p.vmId}', must be '${c.vmId}' (all filter VMs share data through it)`);
      if (p.runtime !== undefined && p.runtime !== V8) this.add(p.file, `${p.path}.vm_config.runtime`, `is '${p.runtime}', expected ${V8}`);
      if (p.moduleFile !== undefined && p.moduleFile !== c.moduleFile) this.add(p.file, `${p.path}.vm_config.code.local.filename`, `names '${p.moduleFile}', the module file is '${c.moduleFile}'`);
      const usesControlPlane = isObj(p.config) && get(p.config, 'controlPlane') !== undefined && get(p.config, 'sharedState') !== false;
      if (usesControlPlane) {
        const cluster = String(get(p.config, 'controlPlane', 'cluster') ?? c.defaultCluster);
        const def = clusterNames.get(cluster);
        if (!def) { this.add(p.file, `${p.path} controlPlane.cluster`, `polls cluster '${cluster}', which ${unit.name} does not define`); continue; }
        const sock = get(def.value, 'load_assignment', 'endpoints', 0, 'lb_endpoints', 0, 'endpoint', 'address', 'socket_address');
        const port = Number(get(sock, 'port_value'));
        if (port !== c.controlPlanePort) this.add(def.file, `${def.path}.load_assignment`, `control-plane cluster dials port ${port}, the control plane listens on ${c.controlPlanePort}`);
        const host = String(get(sock, 'address'));
        if (unit.services.length > 0 && unit.name !== 'envoy/') {
          const svc = unit.services.find((s) => host === `${String(get(s.value, 'metadata', 'name'))}.${String(get(s.value, 'metadata', 'namespace') ?? 'prefix-router')}.svc.cluster.local`);
          if (!svc) this.add(def.file, `${def.path}.load_assignment`, `dials '${host}', which is no Service of ${unit.name} (expected <service>.<namespace>.svc.cluster.local)`);
          else if (!arr(get(svc.value, 'spec', 'ports')).some((sp) => Number(get(sp, 'port')) === port)) this.add(def.file, `${def.path}.load_assignment`, `Service ${String(get(svc.value, 'metadata', 'name'))} has no port ${port}`);
        }
      }
    }
    this.checked.push(`consistency of ${unit.name}: ${unit.clusters.length} clusters, ${unit.routes.length} routes, ${unit.plugins.length} filter configs`);
    const wiring = checkPickerWiring(unit.name, unit.docs, (f, at, m) => this.add(f, at, m), (f, at, cfg) => this.checkPluginConfig(f, at, cfg));
    if (wiring) this.checked.push(wiring);
  }

  /** The control plane's own RBAC (control-plane/rbac.yaml, another owner) must grant what base/rbac.yaml grants. */
  checkRbacAgreement(): void {
    const theirs = path.join(this.root, 'control-plane/rbac.yaml');
    const ours = path.join(this.root, 'manifests/base/rbac.yaml');
    if (!fs.existsSync(theirs) || !fs.existsSync(ours)) { this.checked.push('RBAC agreement: control-plane/rbac.yaml not present, skipped'); return; }
    const rules = (f: string): Set<string> => {
      const out = new Set<string>();
      for (const d of this.readDocs(f)) {
        if (get(d.value, 'kind') !== 'Role' && get(d.value, 'kind') !== 'ClusterRole') continue;
        for (const r of arr(get(d.value, 'rules'))) for (const g of arr(get(r, 'apiGroups'))) for (const res of arr(get(r, 'resources'))) for (const v of arr(get(r, 'verbs'))) out.add(`${String(g)}/${String(res)}:${String(v)}`);
      }
      return out;
    };
    const a = rules(ours), b = rules(theirs);
    for (const x of b) if (!a.has(x)) this.add('manifests/base/rbac.yaml', 'rules', `control-plane/rbac.yaml grants ${x}, manifests/base/rbac.yaml does not`);
    for (const x of a) if (!b.has(x)) this.add('manifests/base/rbac.yaml', 'rules', `grants ${x}, which control-plane/rbac.yaml does not`);
    this.checked.push('RBAC agreement with control-plane/rbac.yaml');
  }

  checkDockerfile(c: Contract): void {
    const file = path.join(this.root, 'plugin/Dockerfile');
    if (!fs.existsSync(file)) { this.add('plugin/Dockerfile', '(file)', 'missing'); return; }
    const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (lines[0] !== 'FROM scratch') this.add('plugin/Dockerfile', 'line 1', 'must be FROM scratch (a Wasm OCI image holds only the module)');
    if (!lines.some((l) => l === `COPY ${c.moduleFile} ./plugin.wasm`)) this.add('plugin/Dockerfile', 'COPY', `must COPY ${c.moduleFile} ./plugin.wasm (Istio and Envoy Gateway read plugin.wasm at the image root)`);
    this.checked.push('plugin/Dockerfile: FROM scratch, module copied to /plugin.wasm');
    // compose and the Deployments pass only the subcommand: the image must enter through the CLI.
    const image = path.join(this.root, 'Dockerfile');
    if (fs.existsSync(image)) {
      const entry = fs.readFileSync(image, 'utf8').split('\n').find((l) => /^\s*ENTRYPOINT\b/.test(l));
      if (!entry || !entry.includes('prefix-router.js')) this.add('Dockerfile', 'ENTRYPOINT', 'envoy/docker-compose.yaml and the manifests pass only "control-plane ..." / "picker ..." / "simulator ...": the image needs ENTRYPOINT ["node", ".../dist/prefix-router.js"]');
      this.checked.push('Dockerfile: ENTRYPOINT is the prefix-router CLI');
    } else this.add('Dockerfile', '(file)', 'missing: envoy/docker-compose.yaml and the manifests build the prefix-router image from it');
  }

  async run(): Promise<ValidateResult> {
    const c = this.contract();
    const envoyUnit = this.validateEnvoyDir();
    const units = await this.validateManifests();
    if (envoyUnit) this.checkUnit(envoyUnit, c);
    // Only the roots a user applies (overlays) must be complete deployments.
    for (const u of units) if (u.name.startsWith('manifests/overlays/') && !u.name.endsWith('/routing/')) this.checkUnit(u, c);
    this.checkRbacAgreement();
    this.checkDockerfile(c);
    const dashboards = validateDashboards(this.root);
    this.findings.push(...dashboards.findings);
    this.checked.push(...dashboards.checked);
    return { findings: this.findings, checked: this.checked };
  }
}

export async function validateRepo(root: string): Promise<ValidateResult> {
  return new RepoValidator(root).run();
}

function listFiles(dir: string, suffix: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p, suffix));
    else if (e.name.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

function pointerSuffix(e: ErrorObject): string {
  const parts = e.instancePath.split('/').slice(1);
  let s = parts.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  if (e.keyword === 'additionalProperties') s += `.${String(e.params.additionalProperty)}`;
  return s;
}

function pluginMessage(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return `unknown field '${String(e.params.additionalProperty)}'`;
  if (e.keyword === 'pattern' && e.parentSchema && typeof (e.parentSchema as Obj).description === 'string') return `must be ${String((e.parentSchema as Obj).description)}`;
  return e.message ?? e.keyword;
}
