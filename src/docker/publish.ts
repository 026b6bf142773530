/**
 * `-p` for `--docker-run`. Docker refuses to publish ports of a container that joins another's
 * network namespace, so tp starts a helper on the session network that publishes them as the
 * user asked and relays each connection to the daemon's address there (the `forward` role of
 * the daemon image, src/daemon/forward.ts): the joined container listens in the daemon's
 * namespace, so that address reaches it.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { TpError, messageOf } from '../lib/errors.js';
import { RunningContainer, type DockerEngine } from './engine.js';
import { dockerError, statusCodeOf } from './errors.js';
import { inspectContainer } from './inspect.js';

export type PublishProtocol = 'tcp' | 'udp';

/** One container port published on the host, as Docker's API takes it. */
export interface PortBinding {
  containerPort: number;
  protocol: PublishProtocol;
  /** Empty: every interface. */
  hostIp: string;
  /** Empty: a free port; `a-b`: a free port of that range. */
  hostPort: string;
}

const usage = (value: string, why: string): TpError =>
  new TpError('usage', `--docker-run: -p ${value}: ${why}.`, {
    code: 'DOCKER_RUN_PUBLISH',
    fix: 'Write it as docker run takes it: -p [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp].',
  });

/**
 * A `-p` value read as `docker run` reads it: `[ip:][hostPort:]containerPort[/proto]`, ports
 * or ranges of them, an IPv6 address in brackets. SCTP is refused: the helper relays TCP and
 * UDP only.
 */
export function parsePublish(value: string): PortBinding[] {
  const slash = value.lastIndexOf('/');
  const spec = slash < 0 ? value : value.slice(0, slash);
  const proto = slash < 0 ? 'tcp' : value.slice(slash + 1).toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp') {
    throw usage(
      value,
      proto === 'sctp' ? 'tp publishes TCP and UDP ports only' : `no protocol ${proto}`,
    );
  }
  let hostIp = '';
  let rest = spec;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(spec);
  if (v6 !== null) {
    hostIp = v6[1] ?? '';
    rest = v6[2] ?? '';
    if (isIP(hostIp) !== 6) throw usage(value, `${hostIp} is not an IPv6 address`);
  }
  const parts = rest.split(':');
  if (v6 === null && parts.length === 3) {
    hostIp = parts.shift() ?? '';
    if (isIP(hostIp) === 0) throw usage(value, `${hostIp} is not an IP address`);
  }
  if (parts.length > 2 || (v6 !== null && parts.length !== 2))
    throw usage(value, 'too many colons');
  const container = range(value, parts.at(-1) ?? '');
  if (container === undefined) throw usage(value, 'the container port is missing');
  const hostText = parts.length === 2 ? (parts[0] ?? '') : '';
  const host = hostText === '' ? undefined : range(value, hostText);
  const count = container[1] - container[0];
  if (host !== undefined && count > 0 && host[1] - host[0] !== count) {
    throw usage(value, 'the host and container ranges differ in length');
  }
  const out: PortBinding[] = [];
  for (let i = 0; i <= count; i++) {
    let hostPort = '';
    if (host !== undefined) {
      // One container port with a host range takes a free port of the range, as Docker does.
      hostPort =
        count === 0 && host[1] !== host[0]
          ? `${String(host[0])}-${String(host[1])}`
          : String(host[0] + i);
    }
    out.push({ containerPort: container[0] + i, protocol: proto, hostIp, hostPort });
  }
  return out;
}

function range(value: string, text: string): [number, number] | undefined {
  if (text === '') return undefined;
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const start = Number(m?.[1]);
  const end = m?.[2] === undefined ? start : Number(m[2]);
  const valid = (p: number): boolean => Number.isInteger(p) && p > 0 && p < 65536;
  if (m === null || !valid(start) || !valid(end) || end < start)
    throw usage(value, `${text} is not a port or a range of ports`);
  return [start, end];
}

export interface PublishSpec {
  /** The `-p` values as the user gave them. */
  publish: readonly string[];
  /** The daemon container, whose image and session-network address the helper uses. */
  daemon: string;
  /** The session's network (named like the session). */
  network: string;
  labels: Record<string, string>;
}

export interface Publishing extends AsyncDisposable {
  /** The helper container's name (`docker port NAME` shows what it publishes). */
  readonly container: string;
  /** Host addresses by container port (`8080/tcp` → `0.0.0.0:8080`), as Docker bound them. */
  readonly ports: Record<string, string[]>;
  /** Removes the helper; any number of calls. */
  stop(): Promise<void>;
}

/** Starts the helper and waits until it relays; the handle removes it. */
export async function startPublishing(
  engine: DockerEngine,
  spec: PublishSpec,
): Promise<Publishing> {
  const bindings = spec.publish.flatMap(parsePublish);
  const daemon = await inspectContainer(engine, spec.daemon);
  const target = daemon?.networks[spec.network]?.ip;
  if (daemon === undefined || target === undefined || target === '') {
    throw new TpError('state', `The session daemon is not on its network ${spec.network}.`, {
      code: 'SESSION_NETWORK_MISSING',
      fix: 'Reconnect the session (`tp connect --replace`).',
    });
  }
  const key = (b: PortBinding): string => `${String(b.containerPort)}/${b.protocol}`;
  const portBindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const b of bindings) {
    (portBindings[key(b)] ??= []).push({ HostIp: b.hostIp, HostPort: b.hostPort });
  }
  const relayed = Object.keys(portBindings);
  const name = `${spec.network}-publish-${randomBytes(3).toString('hex')}`;
  let helper: RunningContainer;
  try {
    const c = await engine.client.createContainer({
      name,
      Image: daemon.image,
      Cmd: ['forward', target, ...relayed],
      Labels: spec.labels,
      ExposedPorts: Object.fromEntries(relayed.map((k) => [k, {}])),
      HostConfig: { NetworkMode: spec.network, PortBindings: portBindings },
    });
    helper = new RunningContainer(engine, c.id, name);
  } catch (err) {
    throw dockerError(err, engine.endpoint, `create the container that publishes -p ports`);
  }
  try {
    await engine.client.getContainer(helper.id).start();
    await helper.waitForLog(/"forwarding"/, 20_000).catch((err: unknown) => {
      // It started, then did not relay: a daemon image from another tp has no `forward` role.
      throw new TpError('state', `The helper that publishes -p ports failed: ${messageOf(err)}`, {
        code: 'PUBLISH_HELPER_FAILED',
        fix: 'Reconnect the session with this tp (`tp connect --replace`), then try again.',
        cause: err,
      });
    });
    return {
      container: name,
      ports: await boundPorts(engine, helper.id),
      stop: () => helper.stop(),
      [Symbol.asyncDispose]: () => helper.stop(),
    };
  } catch (err) {
    await helper.stop();
    throw publishError(err, spec.publish, engine.endpoint);
  }
}

async function boundPorts(engine: DockerEngine, id: string): Promise<Record<string, string[]>> {
  const info = await engine.client.getContainer(id).inspect();
  // The engine sends null for a port it did not bind, whatever the typings say.
  const ports: unknown = info.NetworkSettings.Ports;
  const raw = (ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [
      k,
      (v ?? []).map((b) => `${b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`),
    ]),
  );
}

function publishError(err: unknown, publish: readonly string[], endpoint: string): TpError {
  if (err instanceof TpError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (statusCodeOf(err) !== undefined && /already allocated|address already in use/.test(message)) {
    return new TpError(
      'state',
      `--docker-run: a host port of -p ${publish.join(' -p ')} is taken.`,
      {
        code: 'PUBLISH_PORT_TAKEN',
        fix: 'Publish on a free host port (`ss -ltnu` lists those in use), or stop what holds it.',
        cause: err,
      },
    );
  }
  return dockerError(err, endpoint, `publish -p ${publish.join(' -p ')}`);
}
