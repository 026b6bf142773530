/**
 * `--port local[:remote][/tcp|/udp]` and the ports a replace takes: every port the container
 * declares, each to the same local port unless a flag says otherwise, plus any a flag adds
 * (`--port` also takes ports the manifest does not declare, as pod-IP traffic reaches them).
 */
import type { AgentPort, Protocol } from '../contract/agent.js';
import { TpError } from '../lib/errors.js';
import type { Container } from './workload.js';

export interface PlannedPort extends AgentPort {
  /** Where the daemon sends it: this port in its network namespace. */
  local: number;
}

export interface PortFlag {
  local: number;
  remote?: number | string;
  protocol?: Protocol;
}

const usage = (flag: string, why: string): TpError =>
  new TpError('usage', `--port ${flag}: ${why}.`, {
    code: 'PORT_FLAG_INVALID',
    fix: 'Write it as local[:remote][/tcp|/udp], e.g. --port 8080, --port 9090:8080, --port 9090:http.',
  });

function portNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    throw usage(flag, `"${text}" is not a port number`);
  return n;
}

export function parsePortFlag(flag: string): PortFlag {
  const m = /^([^:/]+)(?::([^:/]+))?(?:\/(tcp|udp))?$/i.exec(flag);
  if (m === null) throw usage(flag, 'it is not local[:remote][/tcp|/udp]');
  const [, local = '', remote, proto] = m;
  const out: PortFlag = { local: portNumber(local, flag) };
  if (remote !== undefined) {
    out.remote = /^\d+$/.test(remote) ? portNumber(remote, flag) : remote;
    if (typeof out.remote === 'string' && !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(out.remote)) {
      throw usage(flag, `"${remote}" is neither a port number nor a port name`);
    }
  }
  if (proto !== undefined) out.protocol = proto.toUpperCase() as Protocol;
  return out;
}

function declared(c: Container): PlannedPort[] {
  return (c.ports ?? [])
    .filter((p) => (p.protocol ?? 'TCP') === 'TCP' || p.protocol === 'UDP')
    .map((p) => ({
      port: p.containerPort,
      protocol: (p.protocol ?? 'TCP') as Protocol,
      local: p.containerPort,
      ...(p.name === undefined ? {} : { name: p.name }),
    }));
}

/** The ports a replace of `c` takes, with the flags applied. */
export function planPorts(c: Container, flags: readonly PortFlag[]): PlannedPort[] {
  const ports = declared(c);
  const list = (): string =>
    ports.length === 0
      ? 'it declares none'
      : `it declares ${ports.map((p) => `${p.port}/${p.protocol.toLowerCase()}${p.name === undefined ? '' : ` (${p.name})`}`).join(', ')}`;
  for (const f of flags) {
    const text = `${f.local}${f.remote === undefined ? '' : `:${f.remote}`}`;
    if (f.remote === undefined) {
      if (ports.length > 1) {
        throw new TpError(
          'usage',
          `--port ${text}: container ${c.name} has several ports; ${list()}.`,
          {
            code: 'PORT_AMBIGUOUS',
            fix: 'Say which one as --port local:remote (a number or a name).',
          },
        );
      }
      const only = ports[0];
      if (only === undefined)
        ports.push({ port: f.local, protocol: f.protocol ?? 'TCP', local: f.local });
      else only.local = f.local;
      continue;
    }
    const remote = f.remote;
    const match = ports.find((p) =>
      typeof remote === 'string'
        ? p.name === remote
        : p.port === remote && (f.protocol === undefined || p.protocol === f.protocol),
    );
    if (match !== undefined) {
      match.local = f.local;
    } else if (typeof remote === 'string') {
      throw new TpError(
        'usage',
        `--port ${text}: container ${c.name} has no port named ${remote}; ${list()}.`,
        {
          code: 'PORT_UNKNOWN',
          fix: 'Name one of its ports, or give the port number.',
        },
      );
    } else {
      ports.push({ port: remote, protocol: f.protocol ?? 'TCP', local: f.local });
    }
  }
  const seen = new Set<string>();
  for (const p of ports) {
    const key = `${p.local}/${p.protocol}`;
    if (seen.has(key)) {
      throw new TpError(
        'usage',
        `Two ports of ${c.name} would go to local port ${p.local}/${p.protocol.toLowerCase()}.`,
        {
          code: 'PORT_LOCAL_TWICE',
          fix: 'Give each a local port of its own with --port local:remote.',
        },
      );
    }
    seen.add(key);
  }
  return ports;
}

/**
 * Refuses ports whose local end another engagement of the session already uses: both would
 * be dialled at the same port in the daemon's namespace, and one would get the other's traffic.
 */
export function checkLocalPorts(
  ports: readonly PlannedPort[],
  others: readonly { workload: string; ports: readonly { local: number; protocol: string }[] }[],
): void {
  for (const p of ports) {
    const holder = others.find((o) =>
      o.ports.some((q) => q.local === p.local && q.protocol === p.protocol),
    );
    if (holder !== undefined) {
      const remote = p.name ?? String(p.port);
      throw new TpError(
        'usage',
        `Local port ${p.local}/${p.protocol.toLowerCase()} already takes ${holder.workload}'s traffic in this session.`,
        {
          code: 'LOCAL_PORT_TAKEN',
          fix: `Send this one elsewhere with --port <free port>:${remote}.`,
        },
      );
    }
  }
}
