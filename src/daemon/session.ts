/**
 * The daemon's session: the tunnel to tp-manager and the heartbeats it carries, the netstack
 * with the cluster's routes, the flow router, cluster DNS for this network namespace and the
 * control API. Everything is stopped in reverse order by `stop()`, which may be called any
 * number of times.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { daemonAccess } from '../k8s/daemon-transport.js';
import { openPortForward } from '../k8s/port-forward.js';
import { getJson, type KubeTransport } from '../k8s/transport.js';
import { listAgentPods } from './pod-follower.js';
import { FlowServer } from '../netstack/flow-server.js';
import type { NetstackLibrary } from '../netstack/library.js';
import { RunningNetstack } from '../netstack/stack.js';
import { clientVersion } from '../lib/package-info.js';
import { ClusterDns } from './cluster-dns.js';
import { AGENT_PORT } from '../contract/agent.js';
import { ControlServer } from './control.js';
import { Engagements, engagementRoutes } from './engagements.js';
import { graceFromEnv, startHeartbeats } from './heartbeat.js';
import { KnownNames } from './known-names.js';
import { startSessionDns, type SessionDns } from './session-dns.js';
import { Router } from './router.js';
import {
  DAEMON_KUBECONFIG_PATH,
  SESSION_CONFIG_PATH,
  SESSION_DIR,
  SESSION_SECRET_PATH,
  type SessionConfig,
  type SessionStatus,
} from '../contract/session.js';
import { TunnelPool } from './tunnel-pool.js';

type Log = (o: object) => void;

interface PodList {
  items: {
    metadata: { name: string; deletionTimestamp?: string; creationTimestamp?: string };
    status?: { podIP?: string; conditions?: { type: string; status: string }[] };
  }[];
}

/** Finds the ready tp-manager pod, again after every failure to reach it. */
class ManagerLocator {
  private pod: Promise<string> | undefined;
  current: string | undefined;

  constructor(
    private readonly t: KubeTransport,
    private readonly namespace: string,
  ) {}

  get(): Promise<string> {
    this.pod ??= getJson<PodList>(
      this.t,
      `/api/v1/namespaces/${this.namespace}/pods?labelSelector=${encodeURIComponent('app.kubernetes.io/name=tp-manager')}`,
    ).then(
      (list) => {
        const ready = list.items
          .filter(
            (p) =>
              p.metadata.deletionTimestamp === undefined &&
              p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
          )
          .sort((a, b) =>
            (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''),
          );
        const name = ready[0]?.metadata.name;
        if (name === undefined) {
          this.pod = undefined;
          throw new Error(`no ready tp-manager pod in namespace ${this.namespace}`);
        }
        this.current = name;
        return name;
      },
      (err: unknown) => {
        this.pod = undefined;
        throw err;
      },
    );
    return this.pod;
  }

  forget(): void {
    this.pod = undefined;
  }
}

export interface Session extends AsyncDisposable {
  status(): SessionStatus;
  stop(): Promise<void>;
  /** Resolves when the session ends (SIGTERM or a quit through the control API). */
  ended: Promise<void>;
}

export async function runSession(lib: NetstackLibrary, log: Log): Promise<Session> {
  const config = JSON.parse(readFileSync(SESSION_CONFIG_PATH, 'utf8')) as SessionConfig;
  const secret = readFileSync(SESSION_SECRET_PATH, 'utf8').trim();
  const kube = daemonAccess(readFileSync(DAEMON_KUBECONFIG_PATH, 'utf8'));
  const transport = kube.transport;
  const locator = new ManagerLocator(transport, config.managerNamespace);
  const startedAt = new Date().toISOString();
  const cleanups: (() => Promise<void> | void)[] = [];
  let stopped: Promise<void> | undefined;
  let endSession: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (endSession = resolve));
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const c of cleanups.reverse()) {
        try {
          await c();
        } catch (err) {
          log({ msg: 'cleanup failed', error: String(err) });
        }
      }
      endSession();
    })());

  try {
    const pool = new TunnelPool({
      size: config.tunnelPoolSize,
      open: async () =>
        openPortForward(transport, {
          namespace: config.managerNamespace,
          pod: await locator.get(),
          port: config.managerPort,
        }),
      onOpenFailure: () => {
        locator.forget();
      },
      log,
    });
    cleanups.push(() => pool.stop());
    const info = await pool.start();
    log({ msg: 'tunnel ready', manager: locator.current, managerVersion: info.version });
    const grace = graceFromEnv();
    const heartbeats = startHeartbeats({
      send: () => pool.heartbeat(config.name, grace),
      grace,
      log,
    });
    cleanups.push(() => {
      heartbeats.stop();
    });

    const router = new Router(pool, config.neverProxy, log);
    mkdirSync(SESSION_DIR, { recursive: true });
    const flows = await FlowServer.listen(`${SESSION_DIR}/flows.sock`, router);
    cleanups.push(() => flows.stop());
    const stack = RunningNetstack.start(lib, {
      tunName: 'tp0',
      // The TUN carries only this namespace's own traffic, so a large MTU costs nothing
      // (netstack/README.md).
      mtu: 9000,
      routes: config.routes,
      socketPath: flows.path,
      udpIdleTimeoutMs: 60_000,
    });
    cleanups.push(() => stack.stop());
    router.resetFlow = (flowId) => {
      stack.resetFlow(flowId);
    };

    const nameserver = info.nameservers[0];
    let dns: SessionDns | undefined;
    if (nameserver !== undefined) {
      const clusterDns = new ClusterDns(pool, nameserver);
      cleanups.push(() => {
        clusterDns.close();
      });
      const known = new KnownNames(transport, config.namespace, log);
      await known.start();
      cleanups.push(() => {
        known.stop();
      });
      dns = await startSessionDns({
        namespace: config.namespace,
        clusterDomain: info.clusterDomain,
        exchange: clusterDns.exchange,
        knownNames: known.get,
        routes: config.routes,
        neverProxy: config.neverProxy,
      });
      cleanups.push(() => dns?.stop());
    } else {
      log({ msg: 'tp-manager reported no nameserver: cluster DNS is off' });
    }

    const engagements = new Engagements(
      (namespace, pod) => openPortForward(transport, { namespace, pod, port: AGENT_PORT }),
      log,
      config.name,
      listAgentPods(transport),
    );
    cleanups.push(() => engagements.stop());

    const status = (): SessionStatus => ({
      name: config.name,
      version: clientVersion(),
      startedAt,
      context: config.context,
      namespace: config.namespace,
      server: config.server,
      serverFromDaemon: kube.server,
      apiPath: config.apiPath,
      routes: config.routes,
      neverProxy: config.neverProxy,
      subnetSources: config.subnetSources,
      manager: {
        namespace: config.managerNamespace,
        pod: locator.current,
        version: info.version,
        podIP: info.podIP,
      },
      tunnel: pool.snapshot(),
      dns: dns?.status() ?? { enabled: false },
      engagements: engagements.status(),
      flows: {
        router: router.stats,
        handoff: flows.stats,
        stack: stack.running ? stack.stats() : undefined,
      },
    });
    const control = await ControlServer.listen(config.controlPort, secret, {
      'GET /v1/status': status,
      'POST /v1/quit': () => {
        setImmediate(() => void stop());
        return { stopping: true };
      },
      ...engagementRoutes(engagements),
    });
    cleanups.push(() => control.stop());
    log({ msg: 'session ready', routes: config.routes, namespace: config.namespace });
    return { status, stop, ended, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
