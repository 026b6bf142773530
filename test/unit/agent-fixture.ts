/**
 * The agent on loopback for the unit tier: every port free, engaged ports on 127.0.0.1, and
 * plain TCP connections to its port where the daemon would open port-forwards.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startAgent, type Agent, type AgentOptions } from '../../agent/agent.js';
import type { AgentConfig } from '../../src/contract/agent.js';
import type { SessionStatus } from '../../src/contract/session.js';
import { ControlServer } from '../../src/daemon/control.js';
import { engagementRoutes, type Engagements } from '../../src/daemon/engagements.js';

/** A port free for both TCP and UDP on 127.0.0.1 (engaged ports may be either). */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => {
        resolve(false);
      });
      udp.bind(port, '127.0.0.1', () => {
        resolve(true);
      });
    });
    if (free) await new Promise<void>((resolve) => udp.close(resolve));
    await new Promise((resolve) => server.close(resolve));
    if (free) return port;
  }
}

export async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      resolve(s);
    });
    s.once('error', reject);
  });
}

export const emptyConfig: AgentConfig = { container: 'app', ports: [], mounts: [], ownEnv: [] };

/** An agent on free ports; the caller stops it. */
export async function loopbackAgent(
  config: Partial<AgentConfig> = {},
  opts: Partial<AgentOptions> = {},
): Promise<Agent> {
  return startAgent({
    port: 0,
    healthPort: 0,
    publicHost: '127.0.0.1',
    // The host running the tests may be a pod: its own token is no mount of these agents.
    serviceAccountDir: '/nonexistent/serviceaccount',
    ...opts,
    config: { ...emptyConfig, ...config },
  });
}

/**
 * The daemon's control API in front of `engagements`, on a free port, as the session serves
 * it; the caller stops it.
 */
export function daemonControl(engagements: Engagements, secret = 'secret'): Promise<ControlServer> {
  return ControlServer.listen(0, secret, {
    'GET /v1/status': () => ({ name: 'x' }) as SessionStatus,
    'POST /v1/quit': () => ({ stopping: true }),
    ...engagementRoutes(engagements),
  });
}
