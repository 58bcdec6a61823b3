// WASI preview1, as cpp-host answers it (src/exports.cc wasi_unstable_*): stdout and stderr go
// to the log, clocks and random from the host, files and sockets absent; proc_exit traps.
import { WASI_RANDOM_GET_MAX_BYTES } from '../abi.js';
import { WasmTrapError } from '../wasmTrapError.js';
import type { WasmVm } from '../wasmVm.js';
import type { HostFunctions } from './hostFunction.js';

const enc = new TextEncoder();

export function wasiFunctions(vm: WasmVm): HostFunctions {
  const mem = vm.mem;
  const owner = vm.owner;
  const logLevel = vm.logLevel;
  const clock = vm.clock;
  const wasi: HostFunctions = {};
  wasi.fd_write = (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) => {
    if (fd !== 1 && fd !== 2) return 8; // EBADF
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < iovsLen >>> 0; i++) {
      const base = mem.readU32(iovs + i * 8);
      const len = mem.readU32(iovs + i * 8 + 4);
      if (base === null || len === null) return 21; // EFAULT
      if (len === 0) continue;
      const b = mem.read(base, len);
      if (!b) return 21;
      parts.push(b);
      total += len;
    }
    if (total > 0) {
      let s = Buffer.concat(parts).toString('utf8');
      if (s.endsWith('\n')) s = s.slice(0, -1);
      const level = fd === 1 ? 2 : 4; // stdout -> info, stderr -> error
      if (level >= logLevel) owner.log(level, s);
    }
    return mem.writeU32(nwrittenPtr, total) ? 0 : 21;
  };
  wasi.fd_read = () => 52; // ENOSYS
  wasi.fd_seek = () => 0; // cpp-host logs an error and returns success
  wasi.fd_close = () => 0;
  wasi.fd_fdstat_get = (fd: number, statPtr: number) => {
    if (fd !== 1 && fd !== 2) return 8;
    const stat = new Uint8Array(24);
    new DataView(stat.buffer).setBigUint64(8, 64n, true); // fs_rights_base = FD_WRITE
    mem.write(statPtr, stat);
    return 0;
  };
  wasi.fd_fdstat_set_flags = () => 52;
  const envPairs = () => Object.entries(owner.envs).map(([k, v]) => enc.encode(`${k}=${v}\0`));
  wasi.environ_sizes_get = (countPtr: number, sizePtr: number) => {
    const e = envPairs();
    if (!mem.writeU32(countPtr, e.length)) return 21;
    return mem.writeU32(sizePtr, e.reduce((n, b) => n + b.length, 0)) ? 0 : 21;
  };
  wasi.environ_get = (arrayPtr: number, bufPtr: number) => {
    for (const b of envPairs()) {
      if (!mem.writeU32(arrayPtr, bufPtr)) return 21;
      if (!mem.write(bufPtr, b)) return 21;
      bufPtr += b.length;
      arrayPtr += 4;
    }
    return 0;
  };
  wasi.args_sizes_get = (argcPtr: number, sizePtr: number) => (mem.writeU32(argcPtr, 0) && mem.writeU32(sizePtr, 0) ? 0 : 21);
  wasi.args_get = () => 0;
  wasi.clock_time_get = (_clockId: number, _precision: bigint, resultPtr: number) => (mem.writeNowNs(resultPtr, clock) ? 0 : 21);
  wasi.clock_res_get = (_clockId: number, resultPtr: number) => (mem.writeU64(resultPtr, 1n) ? 0 : 21);
  wasi.random_get = (ptr: number, len: number) => {
    len >>>= 0;
    if (len > WASI_RANDOM_GET_MAX_BYTES) return 28; // EINVAL
    if (len === 0) return 0;
    const b = new Uint8Array(len);
    owner.random(b);
    return mem.write(ptr, b) ? 0 : 21;
  };
  wasi.sched_yield = () => 0;
  wasi.poll_oneoff = (_in: number, _out: number, _n: number, neventsPtr: number) => (mem.writeU32(neventsPtr, 0) ? 0 : 21);
  wasi.proc_exit = (code: number) => {
    throw new WasmTrapError(`wasi proc_exit(${code}) called: the module aborted`);
  };
  for (const f of ['fd_advise', 'fd_allocate', 'fd_datasync', 'fd_fdstat_set_rights', 'fd_filestat_set_size', 'fd_filestat_set_times', 'fd_pwrite', 'fd_renumber', 'fd_sync', 'fd_tell', 'path_create_directory', 'path_filestat_set_times', 'path_link', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink', 'path_unlink_file', 'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown']) {
    wasi[f] = () => 58; // ENOTSUP
  }
  wasi.fd_pread = () => 52;
  wasi.fd_readdir = () => 20;
  wasi.path_open = () => 44; // ENOENT
  wasi.fd_prestat_get = () => 8;
  wasi.fd_prestat_dir_name = () => 52;
  wasi.path_filestat_get = () => 58;
  wasi.fd_filestat_get = () => 8;
  return wasi;
}
