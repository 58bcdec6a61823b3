/** A trap raised by the host itself (a restricted call, proc_exit, a call with no context). */
export class WasmTrapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WasmTrapError';
  }
}
