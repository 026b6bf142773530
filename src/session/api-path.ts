/**
 * How the daemon container reaches the API server. A loopback server is an address of the
 * host, which means the container itself inside one. When a container publishes that port
 * (kind, k3d and minikube run their control plane in one, published on the host's loopback
 * only), the daemon joins the publisher's network and talks to it there; otherwise it goes to
 * the host through host.docker.internal.
 */
import type { ApiPath } from '../contract/session.js';
import type { Publisher } from '../docker/publisher.js';
import { isLoopback } from '../k8s/daemon-kubeconfig.js';

export type { ApiPath };

/** The network the daemon starts on when nothing asks for another. */
export const DEFAULT_NETWORK = 'bridge';
const HOST_GATEWAY = 'host.docker.internal:host-gateway';

export interface ApiRoute {
  path: ApiPath;
  /** The Docker network the daemon container starts on. */
  network: string;
  /** The API server as the daemon must reach it, when not the default rewrite of the URL. */
  server?: string;
  /** The daemon container's /etc/hosts entries, as `name:address`. */
  extraHosts: string[];
}

/** The host and port of a server URL whose host is this machine, else undefined. */
export function loopbackEndpoint(server: string): { host: string; port: number } | undefined {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    // daemonKubeconfig reports a malformed server; here it is simply not loopback.
    return undefined;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!isLoopback(host)) return undefined;
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'http:' ? 80 : 443;
  return { host, port };
}

/**
 * Decides the route for `server` (as the kubeconfig gives it), given the container that
 * publishes its port on the host, if any. The publisher's name is pinned in /etc/hosts: the
 * daemon's DNS asks the cluster first for short names, and the cluster is reached through the
 * very API server being looked up, so a reconnect must not depend on it.
 */
export function chooseApiPath(server: string, publisher: Publisher | undefined): ApiRoute {
  const viaHost = { network: DEFAULT_NETWORK, extraHosts: [HOST_GATEWAY] };
  if (loopbackEndpoint(server) === undefined) return { path: 'direct', ...viaHost };
  const network = publisher?.networks[0];
  if (publisher === undefined || network === undefined) {
    return { path: 'host.docker.internal', ...viaHost };
  }
  const url = new URL(server);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
  const address = publisher.addresses[network];
  return {
    path: `network ${network}`,
    network,
    server: `${url.protocol}//${publisher.container}:${publisher.containerPort}${path}`,
    extraHosts: [
      HOST_GATEWAY,
      ...(address === undefined ? [] : [`${publisher.container}:${address}`]),
    ],
  };
}
