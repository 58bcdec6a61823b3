// The shape of a host function as the module imports it: numbers (i64 as bigint) in, a status out.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type HostFn = (...a: any[]) => any;
export type HostFunctions = Record<string, HostFn>;
