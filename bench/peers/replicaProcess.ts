// Simulated replicas for bench:peers in their own process (so the load generator and the routers
// do not share their event loop). Usage: replicaProcess.ts JSON_OPTIONS; prints one line
// {"urls": [...]} once they listen.
import { startReplicas } from '../../simulator/server.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const sims = await startReplicas({ basePort: 0, ...options });
process.stdout.write(JSON.stringify({ urls: sims.replicas.map((r) => r.url) }) + '\n');
const stop = () => { void sims.close().then(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
