/** The CLI's side of the daemon's control API: loopback port and secret from Docker. */
import { request as httpRequest } from 'undici';
import type { DockerEngine } from '../docker/engine.js';
import { readContainerFile } from '../docker/files.js';
import type { ContainerDetails } from '../docker/inspect.js';
import type { ControlRequest, ControlResponse, ControlRoute } from '../contract/control.js';
import { CONTROL_PORT, SESSION_SECRET_PATH } from '../contract/session.js';

export class ControlClient {
  private constructor(
    private readonly base: string,
    private readonly secret: string,
  ) {}

  /** Undefined when the container publishes no control port or holds no secret. */
  static async for(
    engine: DockerEngine,
    daemon: ContainerDetails,
  ): Promise<ControlClient | undefined> {
    const port = daemon.loopbackPorts[CONTROL_PORT];
    if (port === undefined) return undefined;
    const secret = await readContainerFile(engine, daemon.id, SESSION_SECRET_PATH);
    if (secret === undefined) return undefined;
    return new ControlClient(`http://127.0.0.1:${port}`, secret.trim());
  }

  /** One call to the daemon: the route and its request body (undefined when it takes none). */
  async call<R extends ControlRoute>(
    route: R,
    request: ControlRequest<R>,
    timeoutMs = 5000,
  ): Promise<ControlResponse<R>> {
    // Widened: today's routes take no body, and a check on their type would be always true.
    const body: unknown = request;
    const [method, path] = route.split(' ') as ['GET' | 'POST', string];
    const res = await httpRequest(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.secret}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new Error(`control API ${route}: HTTP ${res.statusCode} ${text}`);
    return JSON.parse(text) as ControlResponse<R>;
  }
}
