// The plugin configuration (plugin/CONFIG.md): parsed and checked once, in
// onConfigure; a bad one is rejected with a message naming the field.
import { JsonKind, JsonValue, jsonError, parseJson } from "./jsonDocument";
import { Weights } from "../scheduling/weights";
import { WorkParams } from "../scheduling/workModel";
import { isValidAddress } from "../state/address";
import { CONFIG_NEEDS_SOURCE, CONFIG_NOT_JSON, CONFIG_SHARED_STATE_NEEDS_REPLICAS } from "../errors";
import { configError, configFailed, readBool, readInt, readNum, readObject, readStr, setConfigError, unknownKey } from "./configReaders";
import { parseFeatures } from "./featureConfig";
import { SaturationBound } from "../admission/saturation";
import { AdmissionConfig } from "../admission/admissionConfig";
import { SessionConfig } from "../scheduling/sessionAffinity";
import { LoraConfig } from "../scheduling/loraAffinity";

export { configError };

/** About 16 tokens at 4 characters a token: one vLLM KV block. */
const DEFAULT_BLOCK_CHARS = 64;
/**
 * Blocks hashed at most, when the configuration does not say: as many as
 * maxBodyBytes holds (engines cache tens of thousands of tokens, and a match
 * is only as deep as the hash), up to this many (64 MiB of 64-byte blocks).
 */
const MAX_BLOCKS_LIMIT = 1048576;
/** 2^19 (block, replica) entries, about 17 MiB per worker VM (about 34 bytes each). */
const DEFAULT_INDEX_ENTRIES = 524288;
/**
 * Without shared state (GCP Service Extensions) a VM gets about 16 MiB in all:
 * 2^17 entries (about 4.5 MiB) leave room for the rest.
 */
const DEFAULT_INDEX_ENTRIES_SMALL = 131072;
/** About the KV size of one 24 GB GPU serving a 3B model; used until a state says better. */
const DEFAULT_CAPACITY_TOKENS = 500000;
/**
 * Affinity holds until a replica is 50% over the mean (or the least-loaded
 * bound): at the paper's usual 25% the guard spilled too eagerly and the
 * spilled requests paid uncached prefills. bench:routing (seed 1), 0.25 ->
 * 0.5: sp-32x32 TTFT p95 449 -> 287 ms (GIE-style 290), sp-150x5@8 hit 0.566
 * -> 0.629 (TTFT p95 3.14 -> 2.48 s), @16 0.758 -> 0.826, high-cache 0.453 ->
 * 0.477 (TTFT p95 1922 -> 1624 ms); one system prompt stays spread (max/mean
 * <= 1.02). At 1.0, sp-150x5's TTFT p95 got 10% worse.
 */
const DEFAULT_EPSILON = 0.5;
/** The inference extension's staleness bound for metrics. */
const DEFAULT_STALENESS_MS = 2000;
/** Envoy's default buffer limit for a buffering filter. */
const DEFAULT_MAX_BODY_BYTES = 1048576;
const DEFAULT_LONG_POLL_MS = 10000;
const DEFAULT_RETRY_MS = 250;

@final
export class StaticReplica {
  constructor(public address: string, public kvCapacityTokens: u32) {}
}

@final
export class PluginConfig {
  hasControlPlane: bool = false;
  cluster: string = "prefix_router_control_plane";
  authority: string = "prefix-router-control-plane";
  path: string = "/v1/state";
  longPollMs: u32 = DEFAULT_LONG_POLL_MS;
  retryMs: u32 = DEFAULT_RETRY_MS;
  replicas: Array<StaticReplica> = [];
  weights: Weights = new Weights();
  work: WorkParams = new WorkParams();
  blockChars: i32 = DEFAULT_BLOCK_CHARS;
  /** Blocks hashed at most (configured, or what maxBodyBytes holds). */
  maxBlocks: i32 = DEFAULT_MAX_BODY_BYTES / DEFAULT_BLOCK_CHARS;
  indexEntries: u32 = DEFAULT_INDEX_ENTRIES;
  defaultCapacityTokens: u32 = DEFAULT_CAPACITY_TOKENS;
  loadBoundEpsilon: f64 = DEFAULT_EPSILON;
  stalenessMs: u32 = DEFAULT_STALENESS_MS;
  maxBodyBytes: u32 = DEFAULT_MAX_BODY_BYTES;
  /** Off by default: the headers hand every client the chosen replica's ip:port. */
  debugHeaders: bool = false;
  /**
   * Name the runner-up in x-prefix-router-fallback-endpoint. Off by default:
   * Envoy's ORIGINAL_DST dials only the destination header, on retries too,
   * so only a gateway that reads it (ours) gains from a header mutation per request.
   */
  fallbackHeader: bool = false;
  /**
   * Route only among the endpoints named in x-prefix-router-endpoint-subset
   * (removed before the request goes on). Off by default: in a proxy it would
   * let a client choose its replicas; `prefix-router picker` turns it on and
   * sets it from the proxy's subset hint alone.
   */
  subsetHeader: bool = false;
  sharedState: bool = true;
  /** When a replica counts as saturated (admission, session affinity). */
  saturation: SaturationBound = new SaturationBound();
  admission: AdmissionConfig = new AdmissionConfig();
  session: SessionConfig = new SessionConfig();
  lora: LoraConfig = new LoraConfig();
}

function fail(msg: string): PluginConfig | null {
  setConfigError(msg);
  return null;
}

export function parseConfig(bytes: Uint8Array): PluginConfig | null {
  setConfigError("");
  const cfg = new PluginConfig();
  if (bytes.length == 0) return fail(CONFIG_NEEDS_SOURCE);
  const root = parseJson(bytes);
  if (root === null) return fail("not valid JSON: " + jsonError);
  if (root.kind != JsonKind.Object) return fail(CONFIG_NOT_JSON);
  if (unknownKey(root, ["controlPlane", "replicas", "weights", "prefix", "work", "loadBoundEpsilon", "stalenessMs", "maxBodyBytes", "debugHeaders", "fallbackHeader", "subsetHeader", "sharedState", "saturation", "admission", "sessionAffinity", "lora"], "")) return null;

  const cp = readObject(root, "controlPlane", ["cluster", "authority", "path", "longPollMs", "retryMs"]);
  if (configFailed()) return null;
  if (cp !== null) {
    cfg.hasControlPlane = true;
    cfg.cluster = readStr(cp, "controlPlane.", "cluster", cfg.cluster);
    cfg.authority = readStr(cp, "controlPlane.", "authority", cfg.authority);
    cfg.path = readStr(cp, "controlPlane.", "path", cfg.path);
    if (configFailed()) return null;
    if (!cfg.path.startsWith("/")) return fail("'controlPlane.path' must start with '/'");
    cfg.longPollMs = <u32>readInt(cp, "controlPlane.", "longPollMs", 100, 60000, cfg.longPollMs);
    cfg.retryMs = <u32>readInt(cp, "controlPlane.", "retryMs", 10, 60000, cfg.retryMs);
    if (configFailed()) return null;
  }

  const reps = root.get("replicas");
  if (reps !== null) {
    if (reps.kind != JsonKind.Array) return fail("'replicas' must be an array");
    if (reps.items.length > 4096) return fail("'replicas' holds at most 4096 entries");
    for (let i = 0; i < reps.items.length; i++) {
      const r = reps.items[i];
      const where = "replicas[" + i.toString() + "]";
      let address = "";
      let kv: u32 = 0;
      if (r.kind == JsonKind.String) address = r.str;
      else if (r.kind == JsonKind.Object) {
        if (unknownKey(r, ["address", "kvCapacityTokens"], where + ".")) return null;
        const a = r.get("address");
        if (a === null || a.kind != JsonKind.String) return fail("'" + where + ".address' must be a string \"ip:port\"");
        address = a.str;
        const k = r.get("kvCapacityTokens");
        if (k !== null) {
          if (k.kind != JsonKind.Number || k.num < 1 || k.num > 4294967295 || k.num != Math.floor(k.num)) return fail("'" + where + ".kvCapacityTokens' must be a whole number >= 1");
          kv = <u32>k.num;
        }
      } else return fail("'" + where + "' must be \"ip:port\" or {\"address\": \"ip:port\"}");
      if (!isValidAddress(address)) return fail("'" + where + "' is not ip:port: \"" + address + "\"");
      for (let j = 0; j < cfg.replicas.length; j++) if (cfg.replicas[j].address == address) return fail("'" + where + "' repeats " + address);
      cfg.replicas.push(new StaticReplica(address, kv));
    }
  }

  const w = readObject(root, "weights", ["prefix", "queue", "kvCache", "inflight", "work"]);
  if (configFailed()) return null;
  if (w !== null) {
    cfg.weights.prefix = readNum(w, "weights.", "prefix", 0, 1e6, cfg.weights.prefix);
    cfg.weights.queue = readNum(w, "weights.", "queue", 0, 1e6, cfg.weights.queue);
    cfg.weights.kvCache = readNum(w, "weights.", "kvCache", 0, 1e6, cfg.weights.kvCache);
    cfg.weights.inflight = readNum(w, "weights.", "inflight", 0, 1e6, cfg.weights.inflight);
    cfg.weights.work = readNum(w, "weights.", "work", 0, 1e6, cfg.weights.work);
    if (configFailed()) return null;
    const ws = cfg.weights;
    if (ws.prefix + ws.queue + ws.kvCache + ws.inflight + ws.work == 0) return fail("'weights' must not all be 0");
  }

  const p = readObject(root, "prefix", ["blockChars", "maxBlocks", "indexEntries", "defaultCapacityTokens"]);
  if (configFailed()) return null;
  if (p !== null) {
    cfg.blockChars = <i32>readInt(p, "prefix.", "blockChars", 8, 4096, cfg.blockChars);
    cfg.maxBlocks = <i32>readInt(p, "prefix.", "maxBlocks", 1, MAX_BLOCKS_LIMIT, cfg.maxBlocks);
    cfg.indexEntries = <u32>readInt(p, "prefix.", "indexEntries", 1024, 16777216, cfg.indexEntries);
    cfg.defaultCapacityTokens = <u32>readInt(p, "prefix.", "defaultCapacityTokens", 1, 4294967295, cfg.defaultCapacityTokens);
    if (configFailed()) return null;
  }

  const wk = readObject(root, "work", ["prefillOverheadMs", "prefillTimePerTokenMs", "interTokenLatencyMs", "decodeTimePerSeqMs", "saturationNumSeqs", "chunkTokens", "decodeTokenCost", "defaultMaxTokens", "evictionReuse", "evictionReuseFloor"]);
  if (configFailed()) return null;
  if (wk !== null) {
    cfg.work.prefillOverheadMs = readNum(wk, "work.", "prefillOverheadMs", 0, 1e6, cfg.work.prefillOverheadMs);
    cfg.work.prefillTimePerTokenMs = readNum(wk, "work.", "prefillTimePerTokenMs", 0, 1e3, cfg.work.prefillTimePerTokenMs);
    cfg.work.interTokenLatencyMs = readNum(wk, "work.", "interTokenLatencyMs", 0, 1e6, cfg.work.interTokenLatencyMs);
    cfg.work.decodeTimePerSeqMs = readNum(wk, "work.", "decodeTimePerSeqMs", 0, 1e6, cfg.work.decodeTimePerSeqMs);
    cfg.work.saturationNumSeqs = readInt(wk, "work.", "saturationNumSeqs", 1, 1e6, cfg.work.saturationNumSeqs);
    cfg.work.chunkTokens = readInt(wk, "work.", "chunkTokens", 1, 1e7, cfg.work.chunkTokens);
    cfg.work.decodeTokenCost = readNum(wk, "work.", "decodeTokenCost", 0, 1e3, cfg.work.decodeTokenCost);
    cfg.work.defaultMaxTokens = readInt(wk, "work.", "defaultMaxTokens", 0, 1e7, cfg.work.defaultMaxTokens);
    cfg.work.evictionReuse = readNum(wk, "work.", "evictionReuse", 0, 100, cfg.work.evictionReuse);
    cfg.work.evictionReuseFloor = readNum(wk, "work.", "evictionReuseFloor", 0, 1, cfg.work.evictionReuseFloor);
    if (configFailed()) return null;
  }

  cfg.loadBoundEpsilon = readNum(root, "", "loadBoundEpsilon", 0, 10, cfg.loadBoundEpsilon);
  cfg.stalenessMs = <u32>readInt(root, "", "stalenessMs", 100, 600000, cfg.stalenessMs);
  cfg.maxBodyBytes = <u32>readInt(root, "", "maxBodyBytes", 1024, 67108864, cfg.maxBodyBytes);
  cfg.debugHeaders = readBool(root, "", "debugHeaders", cfg.debugHeaders);
  cfg.fallbackHeader = readBool(root, "", "fallbackHeader", cfg.fallbackHeader);
  cfg.subsetHeader = readBool(root, "", "subsetHeader", cfg.subsetHeader);
  cfg.sharedState = readBool(root, "", "sharedState", cfg.sharedState);
  if (configFailed()) return null;
  if (!parseFeatures(root, cfg.saturation, cfg.admission, cfg.session, cfg.lora)) return null;

  if (p === null || p.get("maxBlocks") === null) {
    const fit = (cfg.maxBodyBytes + <u32>cfg.blockChars - 1) / <u32>cfg.blockChars;
    cfg.maxBlocks = fit < <u32>MAX_BLOCKS_LIMIT ? <i32>fit : MAX_BLOCKS_LIMIT;
  }

  if (!cfg.sharedState) {
    if (p === null || p.get("indexEntries") === null) cfg.indexEntries = DEFAULT_INDEX_ENTRIES_SMALL;
    if (cfg.hasControlPlane) return fail("'controlPlane' needs 'sharedState': true (the polled state lives in shared data)");
    if (cfg.admission.enabled) return fail("'admission' needs 'sharedState': true (held requests are let go on ticks, and saturation is read from the control plane's state)");
    if (cfg.replicas.length == 0) return fail(CONFIG_SHARED_STATE_NEEDS_REPLICAS);
  } else if (!cfg.hasControlPlane && cfg.replicas.length == 0) return fail(CONFIG_NEEDS_SOURCE);
  return cfg;
}
