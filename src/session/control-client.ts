/** The CLI's side of the daemon's control API: loopback port and secret from Docker. */
import { request } from 'undici';
import type { DockerEngine } from '../docker/engine.js';
import { readContainerFile } from '../docker/files.js';
import type { ContainerDetails } from '../docker/inspect.js';
import { CONTROL_PORT, SESSION_SECRET_PATH } from '../daemon/session-config.js';

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

  async get<T>(path: string, timeoutMs = 5000): Promise<T> {
    return this.call<T>('GET', path, timeoutMs);
  }

  async post<T>(path: string, timeoutMs = 5000): Promise<T> {
    return this.call<T>('POST', path, timeoutMs);
  }

  private async call<T>(method: 'GET' | 'POST', path: string, timeoutMs: number): Promise<T> {
    const res = await request(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.secret}` },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200)
      throw new Error(`control API ${method} ${path}: HTTP ${res.statusCode} ${text}`);
    return JSON.parse(text) as T;
  }
}
