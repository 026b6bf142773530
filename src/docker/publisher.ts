/**
 * Which container publishes a host port. Local clusters that run their control plane in a
 * container (kind, k3d, minikube's docker driver) publish the API server on the host's
 * loopback only, which no other container can reach; the publisher's own network can.
 */
import type { DockerEngine } from './engine.js';
import { dockerError } from './errors.js';

export interface Publisher {
  /** The container's name, which Docker's DNS resolves on its user-defined networks. */
  container: string;
  /** The container port behind the published host port. */
  containerPort: number;
  /** Its user-defined networks (not bridge, host or none), sorted by name. */
  networks: string[];
  /** Its address on each of those networks, when the engine reports one. */
  addresses: Record<string, string>;
  /** Its labels say it is a kind or k3d control plane (or k3d's load balancer in front). */
  controlPlane: boolean;
}

/**
 * What picking a publisher reads from the engine's container listing, with the nulls the
 * engine sends for empty lists and maps, whatever dockerode's typings say.
 */
export interface ListedContainer {
  Id: string;
  Names: string[];
  Labels?: Record<string, string> | null;
  Ports?:
    { IP?: string | null; PrivatePort: number; PublicPort?: number | null; Type: string }[] | null;
  NetworkSettings?: {
    Networks?: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }> | null;
  } | null;
}

const BUILTIN_NETWORKS = new Set(['bridge', 'host', 'none']);
const WILDCARDS = new Set(['', '0.0.0.0', '::']);

/**
 * The running container that publishes TCP `hostPort` where a client of `host` (a loopback
 * name or address, as the kubeconfig gives it; any loopback when omitted) connects, or
 * undefined when no container does.
 */
export async function findPublisher(
  engine: DockerEngine,
  hostPort: number,
  host?: string,
): Promise<Publisher | undefined> {
  let containers: ListedContainer[];
  try {
    containers = await engine.client.listContainers();
  } catch (err) {
    throw dockerError(err, engine.endpoint, 'list containers');
  }
  return pickPublisher(containers, hostPort, host);
}

/**
 * `findPublisher` without the engine. Only one container can hold a host port on a given
 * address, so several candidates mean different addresses; a labelled control plane wins.
 */
export function pickPublisher(
  containers: readonly ListedContainer[],
  hostPort: number,
  host?: string,
): Publisher | undefined {
  const found: Publisher[] = [];
  for (const c of containers) {
    const port = (c.Ports ?? []).find(
      (p) => p.Type === 'tcp' && p.PublicPort === hostPort && bindingServes(p.IP, host),
    );
    if (port === undefined) continue;
    const attached = c.NetworkSettings?.Networks ?? {};
    const networks = Object.keys(attached)
      .filter((n) => !BUILTIN_NETWORKS.has(n))
      .sort();
    const addresses: Record<string, string> = {};
    for (const n of networks) {
      // The engine reports an address it has not assigned as "", not as absent.
      const address = [attached[n]?.IPAddress, attached[n]?.GlobalIPv6Address].find(
        (a) => a !== undefined && a !== '',
      );
      if (address !== undefined) addresses[n] = address;
    }
    found.push({
      container: (c.Names[0] ?? c.Id).replace(/^\//, ''),
      containerPort: port.PrivatePort,
      networks,
      addresses,
      controlPlane: isControlPlane(c.Labels ?? {}),
    });
  }
  return found.find((p) => p.controlPlane) ?? found[0];
}

function isControlPlane(labels: Record<string, string>): boolean {
  return (
    labels['io.x-k8s.kind.role'] === 'control-plane' ||
    labels['k3d.role'] === 'server' ||
    labels['k3d.role'] === 'loadbalancer'
  );
}

/**
 * Whether a port bound on `bindIp` answers a client connecting to `host`. Linux sends a
 * connection to an unspecified address to loopback, and Docker binds `::` separately from
 * `0.0.0.0`, so the families are kept apart.
 */
function bindingServes(bindIp: string | null | undefined, host: string | undefined): boolean {
  const ip = (bindIp ?? '').toLowerCase();
  const h = host
    ?.toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  if (h === undefined || h === 'localhost' || h.endsWith('.localhost')) {
    return WILDCARDS.has(ip) || ip === '::1' || ip.startsWith('127.');
  }
  // The only IPv6 loopback host is ::1 (or :: meaning it).
  if (h.includes(':')) return ip === '::' || ip === '::1';
  if (ip === '' || ip === '0.0.0.0') return true;
  return ip === h || (h === '0.0.0.0' && ip.startsWith('127.'));
}
