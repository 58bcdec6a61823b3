// Every message the filter logs or answers with, in one place. A long one is one
// literal continued over lines (a backslash before the line break): the compiler
// does not join literals added with +, so each part would be a string of its own,
// joined at start-up.

export const EXPECTED_CONFIG_SHAPE = '{"controlPlane": {"cluster": "prefix_router_control_plane"}} or {"replicas": ["10.0.0.1:8000"]} \
(every other field is optional; plugin/CONFIG.md lists each with its default)';

export const CONFIG_REJECTED = "prefix_router: configuration rejected: ";
export const CONFIG_NEEDS_SOURCE = "needs 'controlPlane' or a non-empty 'replicas' list to learn replicas from";
export const CONFIG_SHARED_STATE_NEEDS_REPLICAS = "'sharedState': false has no control plane: it needs a non-empty 'replicas' list";
export const CONFIG_NOT_JSON = "not a JSON object";

export const STATE_REJECTED = "prefix_router: state rejected: ";
export const STATE_FROM_CONTROL_PLANE = "prefix_router: state version ";
export const POLL_FAILED = "prefix_router: control plane poll failed: ";
export const POLL_FLEET_REFUSED = "prefix_router: the control plane does not take fleet reports (POST /v1/state answered 405); polling with GET, so this gateway neither shares its placements nor learns the other gateways'";
export const POLL_CONTENT_REFUSED = "prefix_router: the control plane refused a fleet report with content counts (400); reporting without them, so the other gateways do not see the content this gateway writes";
export const POLL_NOT_STARTED = "prefix_router: could not start the control plane poll (unknown cluster?): ";

export const BODY_NOT_DELIVERED = "prefix_router: the proxy does not hand this filter the request body after pausing the headers, so requests are routed on load alone, \
without prefix affinity. On Envoy, use 1.35 or later and set allow_on_headers_stop_iteration: true in the Wasm filter's config (see envoy/envoy.yaml)";

export const NO_REPLICA_DETAILS = "prefix_router_no_ready_replica";
export const NO_REPLICA_BODY =
  '{"error":{"message":"no ready inference replica is available","type":"service_unavailable","param":null,"code":"no_ready_replica"}}';

export const STATE_ERR_SHORT = "shorter than the header";
export const STATE_ERR_MAGIC = "bad magic";
export const STATE_ERR_FORMAT = "unsupported format version";
export const STATE_ERR_FLAGS = "reserved flags set";
export const STATE_ERR_CHECKSUM = "checksum mismatch";
export const STATE_ERR_VERSION = "version 0";
export const STATE_ERR_WEIGHTS = "weights must be in [0, 1e6] and not all 0";
export const STATE_ERR_COUNT = "too many replicas";
export const STATE_ERR_TRUNCATED = "truncated replica record";
export const STATE_ERR_ADDRESS = "bad replica address";
export const STATE_ERR_DUPLICATE = "replica listed twice";
export const STATE_ERR_REPLICA_FLAGS = "unknown replica flags";
export const STATE_ERR_KV = "kvUsage outside 0..1";
export const STATE_ERR_TRAILING = "trailing bytes after the last replica";
export const STATE_ERR_SECTION_TRUNCATED = "truncated section";
export const STATE_ERR_SECTION_ORDER = "section tags must increase";
export const STATE_ERR_SECTION_RESERVED = "reserved section bits set";
export const STATE_ERR_SECTION_COUNT = "too many sections";
export const STATE_ERR_SECTION_NONE = "format 2 without sections";
export const STATE_ERR_CONTEXT = "context section (17): not 4 bytes for each replica after the count";
export const STATE_ERR_OBSERVABILITY_LENGTH = "observability section (tag 32) must be 8 bytes";
export const STATE_ERR_OBSERVABILITY_RESERVED = "observability section (tag 32): reserved bits set";
export const STATE_ERR_OBSERVABILITY_EVERY = "observability section (tag 32): decisionLogEvery above 1000000";

export const LORA_ERR_TRUNCATED = "LoRA section (16) truncated";
export const LORA_ERR_COUNT = "LoRA section (16): too many adapters or base models";
export const LORA_ERR_NAME = "LoRA section (16): a name is not UTF-8";
export const LORA_ERR_DUPLICATE = "LoRA section (16): adapter listed twice";
export const LORA_ERR_REPLICAS = "LoRA section (16): replica count differs from the state's";
export const LORA_ERR_FLAGS = "LoRA section (16): bad replica flags";
export const LORA_ERR_INDEX = "LoRA section (16): adapter index out of range";
export const LORA_ERR_TRAILING = "LoRA section (16): trailing bytes";

export const ADMISSION_REFUSED_DETAILS = "prefix_router_saturated";
export const ADMISSION_REFUSED_BODY =
  '{"error":{"message":"every inference replica is saturated; retry later","type":"rate_limit_exceeded","param":null,"code":"replicas_saturated"}}';

export const STATE_ERR_PLACEMENTS_LENGTH = "placements section length does not match its count";
export const STATE_ERR_PLACEMENT_REPLICA = "placement names a replica outside the state";
export const STATE_ERR_PLACEMENT_DEPTH = "placement depth is not a checkpoint depth";
export const STATE_ERR_WORK_LENGTH = "work section length does not match its count";
export const STATE_ERR_WORK_REPLICA = "work record names a replica outside the state, or one twice";
export const STATE_ERR_CONTENT_LENGTH = "content section (tag 4) length does not match its count";
export const STATE_ERR_CONTENT_REPLICA = "content record (tag 4) names a replica outside the state, or one twice, or sets reserved bits";
export const STATE_ERR_FLEET_POSITION_LENGTH = "fleet position section (tag 3) must be 4 bytes";
export const STATE_ERR_FLEET_POSITION = "fleet position section (tag 3): index must be below a count of at least 1";
