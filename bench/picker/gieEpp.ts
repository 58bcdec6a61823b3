// The inference extension's endpoint picker (bench/peers/gie-epp, built by npm run peers:install)
// as a picker process for bench:picker: started on a set of model-server endpoints, ready once a
// request through it reaches one of them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPickerGateway } from '../../host/endpointPicker/pickerGateway.js';
import { freePort, startChild, tail } from '../peers/processes.js';
import { gieEppArgs, PEERS_DIR } from '../peers/routers.js';

export const GIE_EPP_BINARY = join(PEERS_DIR, 'bin/gie-epp');

export interface RunningGieEpp {
  /** ext_proc gRPC address, HOST:PORT. */
  address: string;
  pid: number;
  close(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

/** Starts gie-epp on `endpoints` (IP:PORT); resolves once GET /v1/models through it answers 200. */
export async function startGieEpp(binary: string, endpoints: string[]): Promise<RunningGieEpp> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-picker-gie-epp-'));
  const log = join(dir, 'gie-epp.log');
  const [grpcPort, healthPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const child = startChild('gie-epp', binary, gieEppArgs({ endpoints, grpcPort, healthPort, metricsPort }), log);
  const address = `127.0.0.1:${grpcPort}`;
  const close = async () => { await child.stop(); rmSync(dir, { recursive: true, force: true }); };
  const probe = await startPickerGateway({ picker: address, processResponse: false, messageTimeoutMs: 2000 });
  try {
    const end = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exited()) throw new Error(`gie-epp exited while starting:\n${tail(log)}`);
      const status = await fetch(`${probe.url}/v1/models`).then(async (r) => { await r.arrayBuffer(); return r.status; }, () => 0);
      if (status === 200) break;
      if (Date.now() > end) throw new Error(`gie-epp did not route within ${READY_TIMEOUT_MS} ms (last status ${status}):\n${tail(log)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await close();
    throw e;
  } finally {
    await probe.close();
  }
  return { address, pid: child.pid, close };
}
