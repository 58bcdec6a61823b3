// The round-robin baseline of bench:peers, as its own process: each request goes to the next
// replica in turn, streamed both ways. Usage: roundRobinProxy.ts PORT REPLICA_URL...
import http from 'node:http';

const [portArg, ...replicas] = process.argv.slice(2);
if (!portArg || replicas.length === 0) {
  process.stderr.write('usage: roundRobinProxy.ts PORT REPLICA_URL...\n');
  process.exit(2);
}
const targets = replicas.map((r) => new URL(r));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
let next = 0;

const server = http.createServer((req, res) => {
  const t = targets[next]!;
  next = (next + 1) % targets.length;
  const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host }, agent }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.pipe(res);
  });
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream error: ${e.message}`);
    else res.destroy();
  });
  res.on('close', () => { if (!res.writableFinished) up.destroy(); });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portArg), '127.0.0.1');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
