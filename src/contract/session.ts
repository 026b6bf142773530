/**
 * The contract between the CLI and the daemon: the files connect writes into the daemon
 * container, and what the daemon answers on its control API. Both sides import it; neither
 * imports the other.
 */
import type { EngagementStatus } from './control.js';

/** What `tp connect` hands the daemon container, as files written before it starts. */
export const SESSION_DIR = '/run/tp';
export const SESSION_CONFIG_PATH = `${SESSION_DIR}/session.json`;
export const SESSION_SECRET_PATH = `${SESSION_DIR}/secret`;
/** The daemon's kubeconfig: one context, flattened (src/k8s/daemon-kubeconfig.ts). */
export const DAEMON_KUBECONFIG_PATH = `${SESSION_DIR}/kubeconfig.json`;
export const CONTROL_PORT = 7777;

/**
 * How the daemon container reaches the API server: as named (`direct`), through the host
 * (`host.docker.internal`), or on the Docker network of the container that publishes it.
 */
export type ApiPath = 'direct' | 'host.docker.internal' | `network ${string}`;

export interface SessionConfig {
  name: string;
  context: string;
  namespace: string;
  /** The API server as the user's kubeconfig names it. */
  server: string;
  apiPath: ApiPath;
  managerNamespace: string;
  managerPort: number;
  /** CIDRs routed into the netstack. */
  routes: string[];
  /** Addresses inside the routes that must not go to the cluster. */
  neverProxy: string[];
  /** How the subnets were found, for `tp status`. */
  subnetSources: { pods: string; services: string };
  tunnelPoolSize: number;
  controlPort: number;
}

/** What the daemon reports on GET /v1/status. */
export interface SessionStatus {
  name: string;
  version: string;
  startedAt: string;
  context: string;
  namespace: string;
  server: string;
  serverFromDaemon: string;
  apiPath: ApiPath;
  routes: string[];
  neverProxy: string[];
  subnetSources: { pods: string; services: string };
  manager: { namespace: string; pod?: string | undefined; version: string; podIP: string };
  tunnel: TunnelStatus;
  dns:
    | { enabled: false }
    | {
        enabled: true;
        nameserver: string;
        search: string[];
        clusterDomain: string;
        upstream: string[];
        stats: object;
      };
  flows: Record<string, unknown>;
  /** This session's engagements, as the daemon carries them. */
  engagements: EngagementStatus[];
}

/** The tunnel to tp-manager, as `tp status` shows it. */
export type TunnelState = 'connecting' | 'ready' | 'reconnecting' | 'stopped';

export interface TunnelEvent {
  time: string;
  state: TunnelState;
  message: string;
}

export interface TunnelStatus {
  state: TunnelState;
  since: string;
  lastError?: string;
  reconnects: number;
  idle: number;
  opened: number;
  dials: number;
  failedDials: number;
  events: TunnelEvent[];
}
