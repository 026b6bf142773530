import {
  CoreV1Api,
  NetworkingV1Api,
  NetworkingV1beta1Api,
  V1ObjectMeta,
  V1Service,
  V1ServicePort,
  V1ServiceSpec,
  type KubeConfig,
} from '@kubernetes/client-node';
import {
  aggregate,
  coveringCidrs,
  normaliseCidr,
  overlaps,
  parseCidr,
  subtract,
} from '../lib/cidr.js';
import { TpError, messageOf } from '../lib/errors.js';
import { httpStatus, statusMessage, withTimeout } from './api-errors.js';
import { clusterError } from './cluster.js';
import type { KubeTarget } from './kubeconfig.js';

export interface DiscoveredSubnets {
  /** The pods' ranges, aggregated. Empty when neither nodes nor pods tell them. */
  pods: string[];
  /** The services' ranges, aggregated. */
  services: string[];
  podsFrom: 'node.spec.podCIDRs' | 'pod IPs';
  servicesFrom: 'ServiceCIDR' | 'apiserver error';
  /** Why a fallback was taken, in words for the user. */
  notes: string[];
}

/**
 * Documentation addresses (RFC 5737, RFC 3849) are what a service range is least likely to
 * hold; the API server names its valid range when it refuses one. Only a field value in a
 * dry-run request: nothing is created and nothing is sent to these addresses.
 */
const PROBE_IPS = ['192.0.2.1', '2001:db8::1'] as const;
const PROBE_NAME = 'tp-service-range-probe-';

/** Finds the address ranges of the cluster's pods and services, which the daemon routes. */
export async function discoverSubnets(
  kc: KubeConfig,
  target: KubeTarget,
  timeoutMs = 10_000,
): Promise<DiscoveredSubnets> {
  const notes: string[] = [];
  const pods = await podRanges(kc, target, notes, timeoutMs);
  const services = await serviceRanges(kc, target, notes, timeoutMs);
  return { ...pods, ...services, notes };
}

async function podRanges(
  kc: KubeConfig,
  target: KubeTarget,
  notes: string[],
  timeoutMs: number,
): Promise<Pick<DiscoveredSubnets, 'pods' | 'podsFrom'>> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    const nodes = await withTimeout(core.listNode({}), timeoutMs);
    const cidrs = nodes.items.flatMap((n) => {
      const spec = n.spec;
      if (spec?.podCIDRs !== undefined && spec.podCIDRs.length > 0) return spec.podCIDRs;
      return spec?.podCIDR === undefined ? [] : [spec.podCIDR];
    });
    if (cidrs.length > 0) return { pods: aggregate(cidrs), podsFrom: 'node.spec.podCIDRs' };
    notes.push(
      "No node has a podCIDR (the network plugin allocates pod addresses itself), so the pod ranges are summarised from the pods' addresses; pass --also-proxy <pod range> if some are missing.",
    );
  } catch (err) {
    if (httpStatus(err) !== 403) throw clusterError(err, target);
    notes.push(
      "Listing nodes is forbidden for this user, so the pod ranges are summarised from the pods' addresses; pass --also-proxy <pod range> if some are missing.",
    );
  }
  return { pods: await podRangesFromPodIPs(kc, target, timeoutMs), podsFrom: 'pod IPs' };
}

/**
 * Summarises the addresses of the pods that have their own (not the node's network), see
 * `coveringCidrs`. Falls back to the connected namespace when all namespaces are forbidden.
 */
export async function podRangesFromPodIPs(
  kc: KubeConfig,
  target: KubeTarget,
  timeoutMs = 10_000,
): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const ips: string[] = [];
  const collect = async (namespace?: string): Promise<void> => {
    let cont: string | undefined;
    do {
      const page = { limit: 500, ...(cont === undefined ? {} : { _continue: cont }) };
      const list = await withTimeout(
        namespace === undefined
          ? core.listPodForAllNamespaces(page)
          : core.listNamespacedPod({ namespace, ...page }),
        timeoutMs,
      );
      for (const pod of list.items) {
        if (pod.spec?.hostNetwork === true) continue;
        for (const { ip } of pod.status?.podIPs ?? []) ips.push(ip);
      }
      cont = list.metadata?._continue === '' ? undefined : list.metadata?._continue;
    } while (cont !== undefined);
  };
  try {
    await collect();
  } catch (err) {
    if (httpStatus(err) !== 403) throw clusterError(err, target);
    try {
      await collect(target.namespace);
    } catch (inner) {
      if (httpStatus(inner) !== 403) throw clusterError(inner, target);
      throw forbidden(target, `list pods in namespace "${target.namespace}"`, 'list pods', inner);
    }
  }
  return coveringCidrs(ips);
}

async function serviceRanges(
  kc: KubeConfig,
  target: KubeTarget,
  notes: string[],
  timeoutMs: number,
): Promise<Pick<DiscoveredSubnets, 'services' | 'servicesFrom'>> {
  // ServiceCIDR is GA (networking.k8s.io/v1) in Kubernetes 1.33 and beta before it.
  for (const api of [kc.makeApiClient(NetworkingV1Api), kc.makeApiClient(NetworkingV1beta1Api)]) {
    try {
      const list = await withTimeout(api.listServiceCIDR({}), timeoutMs);
      const cidrs = list.items.flatMap((s) => s.spec?.cidrs ?? []);
      if (cidrs.length > 0) return { services: aggregate(cidrs), servicesFrom: 'ServiceCIDR' };
      notes.push('The cluster has no ServiceCIDR objects, so the API server was asked instead.');
      break;
    } catch (err) {
      const status = httpStatus(err);
      if (status === 404) continue;
      if (status !== 403) throw clusterError(err, target);
      notes.push('Listing ServiceCIDRs is forbidden for this user, so the API server was asked.');
      break;
    }
  }
  return {
    services: await serviceRangesFromApiServer(kc, target, timeoutMs),
    servicesFrom: 'apiserver error',
  };
}

/**
 * Asks the API server for its service ranges the way that works on every version: a dry-run
 * Service whose clusterIP is outside any sensible range is refused with "The range of valid
 * IPs is <cidr>". One probe per family; a family the cluster lacks says so and is skipped.
 */
export async function serviceRangesFromApiServer(
  kc: KubeConfig,
  target: KubeTarget,
  timeoutMs = 10_000,
): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const found: string[] = [];
  for (const clusterIP of PROBE_IPS) {
    try {
      await withTimeout(
        core.createNamespacedService({
          namespace: target.namespace,
          dryRun: 'All',
          body: probeService(clusterIP),
        }),
        timeoutMs,
      );
      // Accepted: the probe address is inside a range, which therefore stays unknown.
    } catch (err) {
      const status = httpStatus(err);
      if (status === 403) {
        throw forbidden(
          target,
          `create services (even as a dry run) in namespace "${target.namespace}"`,
          'create services',
          err,
        );
      }
      if (status !== 422) throw clusterError(err, target);
      found.push(...rangesInMessage(statusMessage(err) ?? messageOf(err)));
    }
  }
  if (found.length === 0) {
    throw new TpError(
      'unavailable',
      `The API server of context "${target.context}" did not say which service ranges it allocates from.`,
      {
        code: 'SERVICE_RANGE_UNKNOWN',
        fix: "Pass the service range with --also-proxy <cidr>: it is the API server's --service-cluster-ip-range (`kubectl get servicecidrs` on Kubernetes 1.33 and later).",
      },
    );
  }
  return aggregate(found);
}

/**
 * client-node types its bodies as model classes; build real instances rather than literals
 * (the serializer does not care, the type checker does).
 */
function probeService(clusterIP: string): V1Service {
  const port = Object.assign(new V1ServicePort(), { port: 80 });
  return Object.assign(new V1Service(), {
    metadata: Object.assign(new V1ObjectMeta(), { generateName: PROBE_NAME }),
    spec: Object.assign(new V1ServiceSpec(), { clusterIP, ports: [port] }),
  });
}

/** The CIDRs after "The range of valid IPs is" in an API server's refusal. */
export function rangesInMessage(message: string): string[] {
  const m = /The range of valid IPs is ([0-9A-Fa-f:./,\s]+)/.exec(message);
  if (m?.[1] === undefined) return [];
  return m[1]
    .split(/[\s,]+/)
    .filter((token) => token.includes('/'))
    .flatMap((token) => {
      try {
        return [normaliseCidr(token)];
      } catch {
        return [];
      }
    });
}

export interface OwnNetwork {
  /** The Docker network (or other local network) the daemon is attached to. */
  name: string;
  cidr: string;
}

/**
 * Refuses routes that overlap a network the daemon itself is on: routing it into the cluster
 * would cut the daemon off from that network (its gateway, the API server behind it).
 */
export function checkCollisions(routed: string[], own: OwnNetwork[]): void {
  const clashes = routed.flatMap((range) =>
    own.filter((net) => overlaps(range, net.cidr)).map((net) => ({ range, net })),
  );
  const first = clashes[0];
  if (first === undefined) return;
  const described = clashes
    .map(({ range, net }) => `${range} collides with Docker network "${net.name}" (${net.cidr})`)
    .join('; ');
  // Two overlapping ranges share exactly the narrower one, so that is what to leave out.
  const holes = [
    ...new Set(
      clashes.map(({ range, net }) =>
        parseCidr(range).prefix >= parseCidr(net.cidr).prefix ? range : normaliseCidr(net.cidr),
      ),
    ),
  ];
  throw new TpError('usage', `The cluster's address ranges overlap the daemon's: ${described}.`, {
    code: 'SUBNET_COLLISION',
    fix: `Leave the overlap out with ${holes.map((h) => `--never-proxy ${h}`).join(' ')} (those cluster addresses become unreachable), or run the daemon on a Docker network outside ${first.range}.`,
  });
}

export interface ProxyPlan {
  /** The ranges to route into the cluster: exact, aggregated, never-proxy ranges cut out. */
  routed: string[];
  /** The --never-proxy ranges, normalised. */
  neverProxy: string[];
}

/**
 * Combines the discovered ranges with --also-proxy and --never-proxy. A route cannot have a
 * hole, so a never-proxy range inside a routed one splits it into the more specific ranges
 * around the hole (a /24 out of a /16 leaves eight routes); the daemon then needs no
 * exceptions of its own, and a never-proxy address simply has no route into the cluster.
 */
export function applyProxyFlags(
  discovered: Pick<DiscoveredSubnets, 'pods' | 'services'>,
  alsoProxy: string[],
  neverProxy: string[],
): ProxyPlan {
  const also = alsoProxy.map((c) => flagCidr('--also-proxy', c));
  const never = aggregate(neverProxy.map((c) => flagCidr('--never-proxy', c)));
  const wanted = aggregate([...discovered.pods, ...discovered.services, ...also]);
  return { routed: subtract(wanted, never), neverProxy: never };
}

function flagCidr(flag: string, value: string): string {
  try {
    return normaliseCidr(value);
  } catch (err) {
    if (!(err instanceof TpError)) throw err;
    throw new TpError('usage', `${flag}: ${err.message}`, {
      code: err.code,
      fix: err.fix,
      cause: err,
    });
  }
}

function forbidden(target: KubeTarget, what: string, canI: string, cause: unknown): TpError {
  return new TpError(
    'config',
    `The user of context "${target.context}" may not ${what}, which tp needs to find the cluster's address ranges.`,
    {
      code: 'CLUSTER_FORBIDDEN',
      fix: `Grant it (check with \`kubectl --context ${target.context} auth can-i ${canI}\`), or pass the ranges with --also-proxy <cidr>.`,
      cause,
    },
  );
}
