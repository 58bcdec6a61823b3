// Listening and closing for the gateway's HTTP servers (traffic and admin).
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `server` on host:port (0: any free port); resolves with its URL and port, rejects if it cannot listen. */
export async function listen(server: http.Server, host: string, port: number): Promise<{ url: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return { url: `http://${hostPart}:${addr.port}`, port: addr.port };
}

/** Drops open connections (keep-alive ones included) and waits for the server to close. */
export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}
