/**
 * `tp connect --docker`: everything checked before anything is created (bad input changes
 * nothing), then the images, tp-manager in the cluster, and the daemon container; returns
 * once the daemon's session is up.
 */
import { randomBytes } from 'node:crypto';
import type { Progress } from '../cli/progress.js';
import type { DockerEngine } from '../docker/engine.js';
import {
  inspectContainer,
  networkSubnets,
  type ContainerDetails,
  type NetworkDetails,
} from '../docker/inspect.js';
import { findPublisher } from '../docker/publisher.js';
import {
  CONTROL_PORT,
  SESSION_CONFIG_PATH,
  SESSION_SECRET_PATH,
  type SessionConfig,
} from '../contract/session.js';
import { DAEMON_KUBECONFIG_PATH, daemonKubeconfig } from '../k8s/daemon-kubeconfig.js';
import { kubeIdentity, loadKubeConfig, type KubeSelection } from '../k8s/kubeconfig.js';
import { serverVersion } from '../k8s/cluster.js';
import { MANAGER_PORT, ManagerClient } from '../k8s/manager.js';
import { requireNamespace } from '../k8s/namespaces.js';
import { applyProxyFlags, checkCollisions, discoverSubnets } from '../k8s/subnets.js';
import { TpError } from '../lib/errors.js';
import { GRACE_ENV } from '../lib/grace.js';
import { LABEL_SESSION, tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';
import {
  DEFAULT_NETWORK,
  chooseApiPath,
  loopbackEndpoint,
  type ApiPath,
  type ApiRoute,
} from './api-path.js';
import { ensureSessionNetwork, userNetworks } from './network.js';
import { agentImage, checkImageSettings, daemonImage } from './images.js';
import {
  LABEL_CONTEXT,
  LABEL_MANAGER_NAMESPACE,
  LABEL_NAMESPACE,
  defaultSessionName,
  validateSessionName,
} from './naming.js';
import type { TpSettings } from './config.js';
import { currentOwner, ownerLabels, ownershipConflict, type SessionOwner } from './ownership.js';
import { endSession } from './quit.js';
import { readSessionStatus, waitForSession, type SessionStatus } from './status.js';

export interface ConnectOptions {
  kube: KubeSelection;
  namespace?: string;
  name?: string;
  alsoProxy: string[];
  neverProxy: string[];
  settings: TpSettings;
  /** End a running session of this name (as `tp quit` does) and start a new one. */
  replace?: boolean;
  /** The user's own Docker networks the daemon also joins, for their containers' names. */
  networks?: string[];
}

export interface ConnectResult {
  /** False when a session with this name was already running: connect changed nothing. */
  created: boolean;
  /** True when --replace ended a running session of this name first. */
  replaced: boolean;
  name: string;
  container: string;
  /** The session's Docker network: containers started on it are reached by name. */
  network: string;
  context: string;
  namespace: string;
  server: string;
  /** How the daemon container reaches the API server. */
  apiPath: ApiPath;
  routes: string[];
  status: SessionStatus;
}

export async function connectDocker(
  engine: DockerEngine,
  opts: ConnectOptions,
  progress: Progress,
): Promise<ConnectResult> {
  const { kc, target } = loadKubeConfig(opts.kube);
  const namespace = opts.namespace ?? target.namespace;
  const name = opts.name ?? defaultSessionName(target.context, namespace);
  const badName = validateSessionName(name);
  if (badName !== undefined) {
    throw new TpError('usage', `--name ${name}: ${badName}.`, {
      code: 'SESSION_NAME_INVALID',
      fix: 'Pick another --name.',
    });
  }
  // Parses the CIDR flags now, so a typo fails before anything talks to Docker or the cluster.
  applyProxyFlags({ pods: [], services: [] }, opts.alsoProxy, opts.neverProxy);
  checkImageSettings(opts.settings);

  const owner = currentOwner(kubeIdentity(kc, target));
  const replace = opts.replace === true;
  const existing = await inspectContainer(engine, name);
  if (existing !== undefined) {
    const reused = await reuse(engine, existing, {
      context: target.context,
      namespace,
      owner,
      replace,
    });
    if (reused !== undefined) return reused;
  }

  const check = progress.step(`Checking context ${target.context}`);
  let plan;
  let kubeconfig;
  let route: ApiRoute;
  let extra: NetworkDetails[];
  try {
    // The daemon's kubeconfig first: an exec-credential user fails here, before any request.
    kubeconfig = daemonKubeconfig(kc, target);
    await engine.version();
    route = await apiRoute(engine, target.server);
    if (route.server !== undefined) {
      kubeconfig = daemonKubeconfig(kc, target, { server: route.server });
    }
    await serverVersion(kc, target);
    await requireNamespace(kc, target, namespace);
    const subnets = await discoverSubnets(kc, target);
    plan = applyProxyFlags(subnets, opts.alsoProxy, opts.neverProxy);
    extra = await userNetworks(engine, opts.networks ?? []);
    const apiNet = { name: route.network, subnets: await networkSubnets(engine, route.network) };
    checkCollisions(plan.routed, dockerRanges([apiNet, ...extra]));
    const via = route.path.startsWith('network ') ? ` via ${route.path}` : '';
    check.succeed(`${target.server}${via}, namespace ${namespace}`);
    plan = { ...plan, subnets };
  } catch (err) {
    check.fail();
    throw err;
  }

  const image = await daemonImage(engine, opts.settings, progress);
  await ensureManager(engine, new ManagerClient(kc, target), opts.settings, progress);

  // reuse() let through only a stopped daemon, or a running one with --replace.
  if (existing !== undefined) {
    const ending = progress.step(`Ending session ${name}`);
    await endSession(engine, existing);
    ending.succeed();
  }
  const labels = tpLabels(clientVersion(), 'network', { [LABEL_SESSION]: name });
  const network = await ensureSessionNetwork(engine, name, labels);
  try {
    checkCollisions(plan.routed, dockerRanges([network]));
  } catch (err) {
    await engine.removeLabelled({ [LABEL_SESSION]: name });
    throw err;
  }
  const secret = randomBytes(32).toString('hex');
  const config: SessionConfig = {
    name,
    context: target.context,
    namespace,
    server: target.server,
    apiPath: route.path,
    managerNamespace: opts.settings.managerNamespace,
    managerPort: MANAGER_PORT,
    routes: plan.routed,
    neverProxy: plan.neverProxy,
    subnetSources: { pods: plan.subnets.podsFrom, services: plan.subnets.servicesFrom },
    tunnelPoolSize: 4,
    controlPort: CONTROL_PORT,
  };
  const start = progress.step(`Starting daemon container ${name}`);
  try {
    const daemon = await engine.startContainer({
      image,
      name,
      labels: tpLabels(clientVersion(), 'daemon', {
        [LABEL_SESSION]: name,
        [LABEL_CONTEXT]: target.context,
        [LABEL_NAMESPACE]: namespace,
        [LABEL_MANAGER_NAMESPACE]: opts.settings.managerNamespace,
        ...ownerLabels(owner),
      }),
      capAdd: ['NET_ADMIN'],
      devices: ['/dev/net/tun'],
      networkMode: network.name,
      // The API server's network (a kind control plane's) and the user's own, deduplicated.
      networks: [...new Set([route.network, ...extra.map((n) => n.name)])].filter(
        (n) => n !== DEFAULT_NETWORK && n !== network.name,
      ),
      publishLoopback: [CONTROL_PORT],
      extraHosts: route.extraHosts,
      // How often it must send heartbeats so that tp-manager leaves its engagements be.
      env: { [GRACE_ENV]: String(opts.settings.engagementGraceSeconds) },
      files: [
        { path: SESSION_CONFIG_PATH, content: JSON.stringify(config) },
        { path: SESSION_SECRET_PATH, content: secret },
        { path: DAEMON_KUBECONFIG_PATH, content: kubeconfig.text },
      ],
    });
    start.update('waiting for the tunnel, routes and DNS');
    const status = await waitForSession(engine, daemon.id, 60_000);
    start.succeed();
    return {
      created: true,
      replaced: existing?.running === true,
      name,
      container: daemon.id,
      network: network.name,
      context: target.context,
      namespace,
      server: target.server,
      apiPath: route.path,
      routes: plan.routed,
      status,
    };
  } catch (err) {
    start.fail();
    throw err;
  }
}

/** Docker networks' subnets as checkCollisions takes them. */
function dockerRanges(
  networks: readonly { name: string; subnets: string[] }[],
): { name: string; cidr: string }[] {
  return networks.flatMap((n) => n.subnets.map((cidr) => ({ name: n.name, cidr })));
}

/** Installs or updates tp-manager unless it already runs this tp's agent image. */
async function ensureManager(
  engine: DockerEngine,
  manager: ManagerClient,
  settings: TpSettings,
  progress: Progress,
): Promise<void> {
  const agent = await agentImage(engine, settings, progress);
  const ns = settings.managerNamespace;
  const current = await manager.state(ns);
  if (current?.ready === true && current.image === agent.ref) return;
  await agent.publish();
  const step = progress.step(`Installing tp-manager in ${ns}`);
  try {
    const state = await manager.install(
      { namespace: ns, image: agent.ref, version: clientVersion() },
      (msg) => {
        step.update(msg);
      },
    );
    step.succeed(state.warning === undefined ? undefined : `warning: ${state.warning}`);
  } catch (err) {
    step.fail();
    throw err;
  }
}

/**
 * A loopback API server published by a container (kind, k3d, minikube) is reached on that
 * container's network; any other server as before.
 */
async function apiRoute(engine: DockerEngine, server: string): Promise<ApiRoute> {
  const loopback = loopbackEndpoint(server);
  const publisher =
    loopback === undefined ? undefined : await findPublisher(engine, loopback.port, loopback.host);
  return chooseApiPath(server, publisher);
}

interface ReuseWanted {
  context: string;
  namespace: string;
  owner: SessionOwner;
  replace: boolean;
}

/**
 * A running session with this name is reported as it is; a stopped one is replaced. A running
 * daemon is never removed unless --replace asks for it: containers joined to it lose the
 * cluster with it.
 */
async function reuse(
  engine: DockerEngine,
  existing: ContainerDetails,
  want: ReuseWanted,
): Promise<ConnectResult | undefined> {
  if (existing.labels['tp.managed'] !== 'true') {
    throw new TpError(
      'state',
      `A container named ${existing.name} exists and was not created by tp.`,
      {
        code: 'SESSION_NAME_TAKEN',
        fix: 'Remove or rename that container, or pick another --name.',
      },
    );
  }
  if (!existing.running) return undefined;
  const notYours = ownershipConflict(existing.name, existing.labels, want.owner);
  if (notYours !== undefined) throw notYours;
  if (want.replace) return undefined;
  const { context, namespace } = want;
  if (
    existing.labels[LABEL_CONTEXT] !== context ||
    existing.labels[LABEL_NAMESPACE] !== namespace
  ) {
    throw new TpError(
      'state',
      `Session ${existing.name} is connected to ${existing.labels[LABEL_CONTEXT] ?? '?'}/${existing.labels[LABEL_NAMESPACE] ?? '?'}, not ${context}/${namespace}.`,
      {
        code: 'SESSION_CONFLICT',
        fix: `Run \`tp quit --name ${existing.name}\` first, connect again with --replace, or pick another --name.`,
      },
    );
  }
  const status = await statusOfRunning(engine, existing);
  if (status === undefined) return undefined;
  return {
    created: false,
    replaced: false,
    name: existing.name,
    container: existing.id,
    // A session from before session networks sits on another network; report that one.
    network:
      existing.name in existing.networks
        ? existing.name
        : (Object.keys(existing.networks)[0] ?? ''),
    context,
    namespace,
    server: status.server,
    apiPath: status.apiPath,
    routes: status.routes,
    status,
  };
}

const STATUS_TRIES = 4;
const STATUS_RETRY_MS = 1000;

/**
 * The running daemon's status, asked a few times over about three seconds (a busy machine can
 * be slow to answer once). Undefined when the container stops meanwhile; a daemon that keeps
 * running and still does not answer is an error that says how to replace it deliberately.
 */
async function statusOfRunning(
  engine: DockerEngine,
  daemon: ContainerDetails,
): Promise<SessionStatus | undefined> {
  let lastError = '';
  for (let attempt = 1; ; attempt++) {
    try {
      return await readSessionStatus(engine, daemon, 2000);
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    const now = await inspectContainer(engine, daemon.id);
    if (now?.running !== true) return undefined;
    if (attempt >= STATUS_TRIES) break;
    await new Promise((r) => setTimeout(r, STATUS_RETRY_MS));
  }
  const name = daemon.name;
  throw new TpError(
    'state',
    `Session ${name} has a running daemon container that does not answer (${lastError}).`,
    {
      code: 'SESSION_UNHEALTHY',
      fix: `tp leaves it running, since containers joined to it would lose the cluster. See \`docker logs ${name}\`; to start over, run \`tp quit --name ${name}\` and connect again, or connect again with --replace.`,
    },
  );
}
