/**
 * The control API between the CLI and the daemon. Docker publishes it on the host's loopback
 * only; containers that join the daemon's network namespace can reach the port too, so every
 * request must carry the session's secret.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export type ControlRoutes = Record<string, () => Promise<object> | object>;

export class ControlServer implements AsyncDisposable {
  private stopped: Promise<void> | undefined;

  private constructor(private readonly server: Server) {}

  static async listen(port: number, secret: string, routes: ControlRoutes): Promise<ControlServer> {
    const expected = Buffer.from(`Bearer ${secret}`);
    const server = createServer((req, res) => {
      const given = Buffer.from(req.headers.authorization ?? '');
      const send = (status: number, body: object): void => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        send(401, { error: 'this request does not carry the session secret' });
        return;
      }
      const route = routes[`${req.method ?? 'GET'} ${req.url ?? '/'}`];
      if (route === undefined) {
        send(404, { error: `no route ${req.method ?? ''} ${req.url ?? ''}` });
        return;
      }
      Promise.resolve()
        .then(route)
        .then(
          (body) => {
            send(200, body);
          },
          (err: unknown) => {
            send(500, { error: err instanceof Error ? err.message : String(err) });
          },
        );
    });
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '0.0.0.0', () => {
        resolve();
      });
    });
    return new ControlServer(server);
  }

  stop(): Promise<void> {
    this.stopped ??= new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => {
        resolve();
      });
    });
    return this.stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
