/**
 * The worker's one metrics endpoint. The Temporal SDK's Prometheus exporter runs inside its native
 * runtime and owns the port it binds, with no way to add metrics of ours; so it binds a private
 * loopback port and this server answers /metrics with its text followed by billflow's registry:
 * one scrape target per worker.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export function serveWorkerMetrics(opts: { host: string; port: number; registry: Registry; sdkUrl: string }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    void (async () => {
      try {
        const sdk = await fetch(opts.sdkUrl, { signal: AbortSignal.timeout(5_000) });
        if (!sdk.ok) throw new Error(`the Temporal SDK's exporter answered ${sdk.status}`);
        const text = `${(await sdk.text()).trimEnd()}\n${await opts.registry.metrics()}`;
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text);
      } catch (e) {
        // Half the metrics would look like a worker without Temporal activity: fail the scrape instead.
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`worker metrics unavailable: ${(e as Error).message}\n`);
      }
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}/metrics`,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
