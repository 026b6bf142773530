/**
 * The agent role (docs/engagements.md): in an engaged pod, it tells the daemon the target
 * container's environment and mounts, sends mounts as tars, and hands clients of the engaged
 * ports to the daemon's `accept` streams. It needs no capability and runs as any uid: it only
 * listens and reads files the container can read.
 */
import { statSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer, type Socket } from 'node:net';
import {
  AGENT_HEALTH_PORT,
  AGENT_PORT,
  SERVICE_ACCOUNT_DIR,
  type AgentConfig,
  type AgentInfo,
  type AgentReply,
  type AgentRequest,
} from '../src/contract/agent.js';
import { clientVersion } from '../src/lib/package-info.js';
import { parseAgentRequest } from '../src/tunnel/agent-protocol.js';
import { finDecoder } from '../src/tunnel/frames.js';
import { encodeLine, readLine } from '../src/tunnel/protocol.js';
import { AcceptQueue, listenTcp, listenUdp, type Listener } from './engaged.js';
import { listenHealth } from './health.js';
import { walkMount, writeMountTar } from './mount-tar.js';
import { applyWrite } from './mount-write.js';
import { listenProxy, type ProxyListener } from './proxy/port.js';
import { Taps } from './taps.js';

export interface AgentOptions {
  config: AgentConfig;
  /** The daemon's port, on loopback. */
  port?: number;
  /** The probes' port, on `publicHost`. */
  healthPort?: number;
  /** Where the engaged ports and the health port listen: all interfaces in a pod. */
  publicHost?: string;
  /** How long a client waits for an accept stream before it is reset. */
  acceptWaitMs?: number;
  udpIdleMs?: number;
  /** A stream that sends no request line within this is dropped. */
  requestWaitMs?: number;
  /** Where a proxied port's app listens: the pod's loopback. */
  appHost?: string;
  /** A tap whose daemon says nothing for this long is dropped (TAP_SILENCE_MS). */
  tapSilenceMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Where the pod's ServiceAccount token would be mounted (a folder of the loopback tests). */
  serviceAccountDir?: string;
  log?: (o: object) => void;
}

export interface Agent extends AsyncDisposable {
  readonly port: number;
  readonly healthPort: number;
  /** Each proxied app port, and the port it is proxied on (the one asked for, or chosen for 0). */
  readonly proxied: ReadonlyMap<number, number>;
  stop(): Promise<void>;
}

/**
 * The environment the app sees. HOSTNAME is the pod's name, which the local container has a
 * name of its own for; PATH belongs to the local image; `ownEnv` is what the agent image set.
 */
export function appEnv(env: NodeJS.ProcessEnv, ownEnv: readonly string[]): Record<string, string> {
  const drop = new Set(['HOSTNAME', 'PATH', ...ownEnv]);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !drop.has(k)) out[k] = v;
  return out;
}

/**
 * The mounts the app sees: the configured ones, and the ServiceAccount token the admission
 * plugin mounted read-only beside them when no configured mount covers its folder.
 */
export function appMounts(
  configured: AgentConfig['mounts'],
  serviceAccountDir: string,
): AgentConfig['mounts'] {
  const covered = configured.some((m) =>
    `${serviceAccountDir}/`.startsWith(`${m.path.replace(/\/+$/, '')}/`),
  );
  if (covered || statSync(serviceAccountDir, { throwIfNoEntry: false })?.isDirectory() !== true)
    return configured;
  return [...configured, { path: serviceAccountDir, readOnly: true }];
}

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const { config } = opts;
  const log = opts.log ?? (() => undefined);
  const publicHost = opts.publicHost ?? '0.0.0.0';
  const requestWaitMs = opts.requestWaitMs ?? 60_000;
  const open = new Set<Socket>();
  const track = (s: Socket): void => {
    open.add(s);
    s.once('close', () => open.delete(s));
  };
  const queue = new AcceptQueue(opts.acceptWaitMs ?? 5000);
  const proxies = config.proxies ?? [];
  const taps = new Taps({
    targets: proxies.map((p) => p.target),
    acceptWaitMs: opts.acceptWaitMs ?? 5000,
    track,
    log,
    ...(opts.tapSilenceMs === undefined ? {} : { silenceMs: opts.tapSilenceMs }),
  });
  const info: AgentInfo = {
    version: clientVersion(),
    container: config.container,
    env: appEnv(opts.env ?? process.env, config.ownEnv),
    mounts: appMounts(config.mounts, opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR),
    ports: config.ports,
  };

  const sendTar = async (stream: Socket, path: string): Promise<void> => {
    if (!info.mounts.some((m) => m.path === path)) {
      stream.end(
        encodeLine(reply({ ok: false, error: `${path} is not a mount of the container` })),
      );
      return;
    }
    let walk;
    try {
      walk = await walkMount(path);
    } catch (err) {
      stream.end(encodeLine(reply({ ok: false, error: `${path}: ${String(err)}` })));
      return;
    }
    stream.write(
      encodeLine(
        reply({
          ok: true,
          tar: true,
          ...(walk.skipped.length > 0 ? { skipped: walk.skipped } : {}),
          size: walk.size,
          root: walk.root,
        }),
      ),
    );
    try {
      await writeMountTar(walk, stream, log);
    } catch (err) {
      // The tar is cut short, which its reader sees: a tar ends with two zero blocks.
      log({ msg: 'tar failed', path, error: String(err) });
      stream.destroy();
    }
  };

  const receiveWrite = async (stream: Socket, path: string, deletes: string[]): Promise<void> => {
    const mount = info.mounts.find((m) => m.path === path);
    const refusal =
      mount === undefined
        ? `${path} is not a mount of the container`
        : mount.readOnly
          ? `${path} is read-only in the pod`
          : undefined;
    if (refusal !== undefined) {
      stream.end(encodeLine(reply({ ok: false, error: refusal })));
      return;
    }
    try {
      const written = await applyWrite(path, deletes, finDecoder(stream, true));
      log({ msg: 'written back', path, ...written });
      stream.end(encodeLine(reply({ ok: true, written })));
    } catch (err) {
      log({ msg: 'write failed', path, error: String(err) });
      // The rest of the tar is not read: the reply is the last thing on the stream.
      if (!stream.destroyed) stream.end(encodeLine(reply({ ok: false, error: String(err) })));
    }
  };

  const serve = (stream: Socket, req: AgentRequest): void => {
    if (req.op === 'info') stream.end(encodeLine(reply({ ok: true, info })));
    else if (req.op === 'tar') void sendTar(stream, req.path);
    else if (req.op === 'write') void receiveWrite(stream, req.path, req.deletes);
    else if (req.op === 'tap') void taps.serve(stream, req);
    else if (req.session !== undefined) taps.offer(req.session, stream);
    else queue.offer(stream);
  };

  const control = createServer({ allowHalfOpen: true, noDelay: true }, (stream) => {
    track(stream);
    stream.on('error', () => stream.destroy());
    stream.setTimeout(requestWaitMs, () => stream.destroy());
    readLine(stream)
      .then((line) => {
        stream.setTimeout(0);
        let req;
        try {
          req = parseAgentRequest(line);
        } catch (err) {
          stream.end(encodeLine(reply({ ok: false, error: `bad request: ${String(err)}` })));
          return;
        }
        serve(stream, req);
      })
      .catch(() => stream.destroy());
  });

  const listeners: (Listener | ProxyListener)[] = [];
  const proxied = new Map<number, number>();
  let health: Server | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      queue.close();
      taps.close();
      for (const s of open) s.destroy();
      health?.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) =>
          control.close(() => {
            resolve();
          }),
        ),
        new Promise<void>((resolve) => {
          if (health === undefined) resolve();
          else
            health.close(() => {
              resolve();
            });
        }),
        ...listeners.map((l) => l.close()),
      ]);
    })());

  try {
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen(opts.port ?? AGENT_PORT, '127.0.0.1', () => {
        control.off('error', reject);
        resolve();
      });
    });
    const engaged = { host: publicHost, queue, udpIdleMs: opts.udpIdleMs ?? 60_000, track, log };
    for (const p of config.ports) {
      try {
        listeners.push(
          await (p.protocol === 'TCP' ? listenTcp(p, engaged) : listenUdp(p, engaged)),
        );
      } catch (err) {
        // A port below 1024 needs the runtime to allow unprivileged ports (containerd and
        // Docker do by default); the message names the port either way.
        throw new Error(`cannot listen on ${p.protocol} port ${p.port}: ${String(err)}`);
      }
    }
    for (const p of proxies) {
      try {
        const listener = await listenProxy(p, {
          appHost: opts.appHost ?? '127.0.0.1',
          host: publicHost,
          taps: (target) => taps.at(target),
          track,
          log,
        });
        listeners.push(listener);
        proxied.set(p.target, listener.port);
      } catch (err) {
        throw new Error(`cannot listen on proxied port ${p.listen}: ${String(err)}`);
      }
    }
    // Last, so that the pod turns Ready only once the engaged ports listen.
    health = await listenHealth(opts.healthPort ?? AGENT_HEALTH_PORT, publicHost);
  } catch (err) {
    await stop();
    throw err;
  }
  const portOf = (s: { address(): unknown }, fallback: number): number => {
    const a = s.address();
    return typeof a === 'object' && a !== null ? (a as { port: number }).port : fallback;
  };
  const agent: Agent = {
    port: portOf(control, opts.port ?? AGENT_PORT),
    healthPort: portOf(health, opts.healthPort ?? AGENT_HEALTH_PORT),
    proxied,
    stop,
    [Symbol.asyncDispose]: stop,
  };
  log({
    msg: 'tp agent listening',
    port: agent.port,
    healthPort: agent.healthPort,
    engaged: config.ports.map((p) => `${p.port}/${p.protocol}`),
    proxied: proxies.map((p) => `${p.listen}->${p.target}`),
  });
  return agent;
}

const reply = (r: AgentReply): AgentReply => r;
