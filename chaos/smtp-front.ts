/**
 * An SMTP front for the mail catcher: it pipes each connection through to maildev, except during
 * a refusal window, when it greets with `421 4.3.2` (service not available) and closes, as a mail
 * server does when it is overloaded or going down.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface SmtpFront {
  port: number;
  /** Drop open sessions and refuse new connections for `ms` from now. */
  refuseFor(ms: number): void;
  refused(): number;
  stop(): Promise<void>;
}

export async function startSmtpFront(opts: { port: number; targetPort: number }): Promise<SmtpFront> {
  let refuseUntil = 0;
  let refused = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (Date.now() < refuseUntil) {
      refused += 1;
      client.end('421 4.3.2 service not available, try later\r\n');
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: opts.targetPort });
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  return {
    port: opts.port,
    refuseFor(ms) {
      refuseUntil = Date.now() + ms;
      // Pooled sessions would otherwise go on sending through the window: the server goes away for them too.
      for (const s of open) s.destroy();
    },
    refused: () => refused,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
