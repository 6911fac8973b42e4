/**
 * The small front `npm run cluster` puts before its two API processes, as a load balancer would:
 * TCP connections on `listenPort` go round-robin to the backend ports on 127.0.0.1, and one whose
 * backend refuses (an API being restarted) is handed to the next, so one API's death costs no
 * request that had not reached it yet. Usage: front.ts <listenPort> <backendPort>...
 */
import { createConnection, createServer, type Socket } from 'node:net';

const [listenPort, ...backends] = process.argv.slice(2).map(Number);
if (!listenPort || backends.length === 0 || [listenPort, ...backends].some((p) => !Number.isInteger(p))) {
  process.stderr.write('usage: front.ts <listenPort> <backendPort>...\n');
  process.exit(2);
}
let next = 0;

function forward(client: Socket, tried: number): void {
  if (tried >= backends.length) {
    client.destroy();
    return;
  }
  const port = backends[next++ % backends.length]!;
  const upstream = createConnection({ host: '127.0.0.1', port });
  let connected = false;
  upstream.once('connect', () => {
    connected = true;
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', () => {
    if (connected) client.destroy();
    else forward(client, tried + 1);
  });
  client.on('error', () => upstream.destroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => connected && client.destroy());
}

// pauseOnConnect: bytes the client sends before a backend is chosen wait in the socket.
const server = createServer({ pauseOnConnect: true }, (client) => forward(client, 0));
server.listen(listenPort, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ msg: 'front listening', port: listenPort, backends })}\n`));
// Open keep-alive connections would hold a graceful close for as long as clients keep them: exit at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0));
