/** The CLI's side of the daemon's control API: loopback port and secret from Docker. */
import { request as httpRequest, type Dispatcher } from 'undici';
import type { DockerEngine } from '../docker/engine.js';
import { readContainerFile } from '../docker/files.js';
import type { ContainerDetails } from '../docker/inspect.js';
import {
  ControlStream,
  STREAM_META_HEADER,
  type ControlRequest,
  type ControlResponse,
  type ControlRoute,
  type JsonRoute,
  type StreamMeta,
  type StreamRoute,
} from '../contract/control.js';
import { CONTROL_PORT, SESSION_SECRET_PATH } from '../contract/session.js';

export class ControlClient {
  private constructor(
    private readonly base: string,
    /** The session's secret: helpers in the daemon's namespace call the API with it too. */
    readonly secret: string,
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

  /** For tests: a daemon's control API at a known address. */
  static at(base: string, secret: string): ControlClient {
    return new ControlClient(base, secret);
  }

  /** One call to the daemon: the route and its request body (undefined when it takes none). */
  async call<R extends JsonRoute>(
    route: R,
    request: ControlRequest<R>,
    timeoutMs = 5000,
  ): Promise<ControlResponse<R>> {
    const res = await this.send(route, request, timeoutMs, timeoutMs);
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new Error(`control API ${route}: HTTP ${res.statusCode} ${text}`);
    return JSON.parse(text) as ControlResponse<R>;
  }

  /**
   * A route that answers with a stream: its description, and the body to read. The body fails
   * when the daemon cuts it short or sends nothing for `idleMs`.
   */
  async stream<R extends StreamRoute>(
    route: R,
    request: ControlRequest<R>,
    timeoutMs = 30_000,
    idleMs = 60_000,
  ): Promise<ControlStream<StreamMeta<R>>> {
    const res = await this.send(route, request, timeoutMs, idleMs);
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new Error(`control API ${route}: HTTP ${res.statusCode} ${text}`);
    }
    const header = res.headers[STREAM_META_HEADER];
    if (typeof header !== 'string') {
      res.body.destroy();
      throw new Error(`control API ${route}: the stream has no ${STREAM_META_HEADER} header`);
    }
    const meta = JSON.parse(decodeURIComponent(header)) as StreamMeta<R>;
    const type = res.headers['content-type'];
    return new ControlStream(res.body, meta, typeof type === 'string' ? type : '');
  }

  private send(
    route: ControlRoute,
    request: unknown,
    headersTimeout: number,
    bodyTimeout: number,
  ): Promise<Dispatcher.ResponseData> {
    const [method, path] = route.split(' ') as ['GET' | 'POST', string];
    return httpRequest(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.secret}`,
        ...(request === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(request === undefined ? {} : { body: JSON.stringify(request) }),
      headersTimeout,
      bodyTimeout,
    });
  }
}
