// The endpoint-picker path of one kustomize root, checked end to end: an HTTPRoute that sends to
// an InferencePool names a pool of the root; the pool's endpointPickerRef names a Service of the
// root with that port; the port leads to a container running `prefix-router picker` on it; the
// picker's --config passes the plugin schema (debug headers off); its control-plane --cluster
// names a Service of the root and a port it has.
type Obj = Record<string, unknown>;
export interface WiringDoc { file: string; label: string; value: unknown }
type Add = (file: string, at: string, message: string) => void;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
function get(v: unknown, ...keys: (string | number)[]): unknown {
  let cur = v;
  for (const k of keys) cur = isObj(cur) || Array.isArray(cur) ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

const DEFAULT_PICKER_PORT = 9002;
const ofKind = (docs: WiringDoc[], kind: string) => docs.filter((d) => get(d.value, 'kind') === kind);
const named = (docs: WiringDoc[], kind: string, name: unknown) => ofKind(docs, kind).find((d) => get(d.value, 'metadata', 'name') === name);

/** The value of --flag=value (or --flag value) in a container's args. */
function flag(args: string[], name: string): string[] {
  const out: string[] = [];
  args.forEach((a, i) => {
    if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
    else if (a === `--${name}` && i + 1 < args.length) out.push(args[i + 1]!);
  });
  return out;
}

export function checkPickerWiring(unit: string, docs: WiringDoc[], add: Add, checkPluginConfig: (file: string, at: string, config: unknown) => void): string | null {
  const routes = ofKind(docs, 'HTTPRoute').flatMap((r) => arr(get(r.value, 'spec', 'rules')).flatMap((rule, ri) =>
    arr(get(rule, 'backendRefs')).map((b, bi) => ({ r, at: `${r.label}.spec.rules[${ri}].backendRefs[${bi}]`, b })))).filter((x) => get(x.b, 'kind') === 'InferencePool');
  if (routes.length === 0) return null;
  for (const { r, at, b } of routes) {
    const pool = named(docs, 'InferencePool', get(b, 'name'));
    if (!pool) { add(r.file, at, `sends to InferencePool '${String(get(b, 'name'))}', which ${unit} does not define`); continue; }
    const ref = get(pool.value, 'spec', 'endpointPickerRef');
    const refAt = `${pool.label}.spec.endpointPickerRef`;
    const svc = named(docs, 'Service', get(ref, 'name'));
    if (!svc) { add(pool.file, refAt, `names Service '${String(get(ref, 'name'))}', which ${unit} does not define`); continue; }
    const port = arr(get(svc.value, 'spec', 'ports')).find((p) => get(p, 'port') === get(ref, 'port', 'number'));
    if (!port) { add(pool.file, `${refAt}.port.number`, `Service ${String(get(ref, 'name'))} has no port ${String(get(ref, 'port', 'number'))}`); continue; }
    const selector = get(svc.value, 'spec', 'selector');
    const deployment = ofKind(docs, 'Deployment').find((d) => isObj(selector) && Object.entries(selector).every(([k, v]) => get(d.value, 'spec', 'template', 'metadata', 'labels', k) === v));
    if (!deployment) { add(svc.file, `${svc.label}.spec.selector`, `selects no Deployment of ${unit}`); continue; }
    const target = get(port, 'targetPort') ?? get(port, 'port');
    const containers = arr(get(deployment.value, 'spec', 'template', 'spec', 'containers'));
    const ci = containers.findIndex((c) => arr(get(c, 'ports')).some((p) => get(p, 'name') === target || get(p, 'containerPort') === target));
    if (ci < 0) { add(svc.file, `${svc.label}.spec.ports`, `targetPort ${String(target)} is no container port of Deployment ${String(get(deployment.value, 'metadata', 'name'))}`); continue; }
    const c = containers[ci];
    const cAt = `${deployment.label}.spec.template.spec.containers[${ci}]`;
    const containerPort = arr(get(c, 'ports')).map((p) => get(p, 'name') === target || get(p, 'containerPort') === target ? get(p, 'containerPort') : undefined).find((x) => x !== undefined);
    const args = arr(get(c, 'args')).map(String);
    if (args[0] !== 'picker') { add(deployment.file, `${cAt}.args`, 'the endpoint picker\'s container must run `prefix-router picker`'); continue; }
    const listens = Number(flag(args, 'port')[0] ?? DEFAULT_PICKER_PORT);
    if (listens !== containerPort) add(deployment.file, `${cAt}.args`, `picker listens on ${listens}, the Service sends to container port ${String(containerPort)}`);
    const config = flag(args, 'config')[0];
    let parsed: unknown;
    try { parsed = JSON.parse(config ?? ''); } catch { add(deployment.file, `${cAt}.args --config`, 'is not inline JSON'); continue; }
    checkPluginConfig(deployment.file, `${cAt}.args --config`, parsed);
    const cluster = String(get(parsed, 'controlPlane', 'cluster') ?? 'prefix_router_control_plane');
    if (get(parsed, 'controlPlane') === undefined) continue;
    const url = flag(args, 'cluster').find((x) => x.startsWith(`${cluster}=`))?.slice(cluster.length + 1);
    if (!url) { add(deployment.file, `${cAt}.args`, `--config polls cluster '${cluster}', which no --cluster defines`); continue; }
    const u = new URL(url);
    const cp = ofKind(docs, 'Service').find((s) => u.hostname === `${String(get(s.value, 'metadata', 'name'))}.${String(get(s.value, 'metadata', 'namespace') ?? 'prefix-router')}.svc.cluster.local`);
    if (!cp) add(deployment.file, `${cAt}.args --cluster`, `dials '${u.hostname}', which is no Service of ${unit}`);
    else if (!arr(get(cp.value, 'spec', 'ports')).some((p) => get(p, 'port') === Number(u.port))) add(deployment.file, `${cAt}.args --cluster`, `Service ${String(get(cp.value, 'metadata', 'name'))} has no port ${u.port}`);
  }
  return `picker wiring of ${unit}: ${routes.length} route(s) to an InferencePool, its picker Service, container, --config and control-plane cluster`;
}
