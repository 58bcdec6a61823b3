// V8 flags for the long-running server processes (gateway, picker, control plane, `start`). Each
// place that launches one names them: the bin's #! line (cli/prefix-router.ts), npm start, the
// Dockerfile's ENTRYPOINT and the benchmarks' launchers; tests/cli/package.test.ts checks they agree.
// A flag set at run time (v8.setFlagsFromString) comes too late for either: the heap is configured.
//
// --no-memory-reducer: V8's memory reducer runs full mark-compacts once a busy process turns idle,
//   so the first requests after a lull each wait one (2-17 ms measured in the gateway).
// --min-semi-space-size=16: the young generation stays at V8's default maximum instead of shrinking
//   to 1 MB when idle, after which a scavenge came every 40 or so requests.
export const SERVER_NODE_FLAGS: readonly string[] = ['--no-memory-reducer', '--min-semi-space-size=16'];
