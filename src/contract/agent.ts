/**
 * The agent's side of an engagement (docs/engagements.md): how tp configures the agent in the
 * pod, and the request and reply lines on the streams the daemon and the CLI open to it.
 */

/** The port the agent listens on, on the pod's loopback only: a port-forward reaches it. */
export const AGENT_PORT = 8190;
/** The port the pod's probes reach the agent on (all interfaces; it answers nothing else). */
export const AGENT_HEALTH_PORT = 8191;
/** How often the daemon shows a tap is alive, and the silence after which the agent drops it. */
export const TAP_BEAT_MS = 1000;
export const TAP_SILENCE_MS = 3000;
/** The agent's entry point in the agent image. */
export const AGENT_COMMAND = ['node', '/app/dist/agent/main.js'];

/**
 * Where the ServiceAccount admission plugin mounts the token in every container that has
 * none there. It is not in the workload's template, so the agent finds it in the pod.
 */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export type EngageMode = 'replace' | 'ingest' | 'intercept' | 'wiretap';
export type Protocol = 'TCP' | 'UDP';

/** A port the agent takes over in the pod (replace), and where the daemon sends it locally. */
export interface AgentPort {
  port: number;
  protocol: Protocol;
  /** The container's name for the port, when it has one. */
  name?: string;
}

/**
 * An HTTP filter of an intercept or wiretap (Telepresence's `--http-header`, repeatable, all
 * must match; `--http-path-prefix`, repeatable, any may match). An engagement without one
 * takes every connection to its port, whatever it speaks.
 */
export interface HttpFilter {
  /** Names in lower case; values compared exactly. */
  headers: { name: string; value: string }[];
  /** Each starts with `/`; empty means any path. */
  pathPrefixes: string[];
}

/**
 * A port the agent stands in front of (intercept, wiretap): the Service's targetPort points
 * at `listen` while an engagement takes it, and what no session takes goes on to the app's
 * `target` on the pod's loopback.
 */
export interface ProxyPort {
  listen: number;
  /** The app's port: the one the Service's targetPort named before tp changed it. */
  target: number;
  /** What the Service says the port speaks: its appProtocol, else its port name. */
  appProtocol?: string;
}

/** What the agent is started with: the one argument after its `agent` role, as JSON. */
export interface AgentConfig {
  /** The container the agent stands in for (replace) or reads env and mounts of (ingest). */
  container: string;
  /** replace: the agent listens on these (all interfaces). Empty for ingest. */
  ports: AgentPort[];
  /** The volume mounts of the target container, as the agent sees them. */
  mounts: { path: string; readOnly: boolean }[];
  /** Env variables the agent itself brings (its image's), to leave out unless the pod sets them. */
  ownEnv: string[];
  /** intercept, wiretap: the ports the agent proxies to the app (a sidecar only). */
  proxies?: ProxyPort[];
}

/** What a `tap` stream's session takes at a proxied port. */
export interface Tap {
  session: string;
  mode: 'intercept' | 'wiretap';
  /** The proxied port, by its app port (ProxyPort.target). */
  target: number;
  filter?: HttpFilter;
}

/** What the agent reports on a `tap` stream, every second: counts since the tap began. */
export interface TapStats {
  /** Connections (no filter) or requests (HTTP) sent to the session. */
  taken: number;
  /** wiretap: copies dropped because the session's side was slow or gone. */
  dropped: number;
}

export type AgentRequest =
  | { op: 'info' }
  /** A tar of one mount path; the reply line, then the tar, then the stream ends. */
  | { op: 'tar'; path: string }
  /**
   * Wait for a client connection to an engaged port; it then flows in frames. With a session:
   * one the agent sends that session's way (intercept, wiretap); without: a replaced port's.
   */
  | { op: 'accept'; session?: string }
  /**
   * A session takes traffic at a proxied port for as long as this stream lives: the daemon
   * writes a newline at least every TAP_BEAT_MS, and the agent drops the tap once a stream
   * ends or stays silent for TAP_SILENCE_MS, so the app gets the traffic back. The agent
   * replies `tapped`, then a `tapStats` line every TAP_BEAT_MS.
   */
  | ({ op: 'tap' } & Tap)
  /**
   * Files written locally, for a writable mount (replace): `deletes` (paths relative to the
   * mount) are removed, then the tar that follows in frames, ending with a FIN, is extracted
   * into the mount; the reply comes once both are done.
   */
  | { op: 'write'; path: string; deletes: string[] };

export interface AgentInfo {
  version: string;
  container: string;
  /** The environment as the target container's process sees it (docs/engagements.md). */
  env: Record<string, string>;
  mounts: { path: string; readOnly: boolean }[];
  ports: AgentPort[];
}

/** The mount point itself: a tar of what it holds cannot carry its mode and owner. */
export interface MountRoot {
  /** A subPath mount of one file, rather than a folder. */
  file: boolean;
  mode: number;
  uid: number;
  gid: number;
}

/** What a `write` did in the mount. */
export interface WriteSummary {
  files: number;
  bytes: number;
  deleted: number;
}

/** What precedes a mount's tar. */
export interface TarReply {
  /** Files of the mount the agent could not read, left out of the tar. */
  skipped?: string[];
  /** The bytes of file contents the tar will hold, as the walk found them (for progress). */
  size?: number;
  root?: MountRoot;
}

export type AgentReply =
  | { ok: true; info: AgentInfo }
  | ({ ok: true; tar: true } & TarReply)
  /** After a `write`: what reached the mount. */
  | { ok: true; written: WriteSummary }
  | { ok: true; tapped: true }
  | { ok: true; tapStats: TapStats }
  /** On an `accept` stream, once a client connected: the stream now carries it. */
  | { ok: true; conn: { port: number; protocol: Protocol; src: string } }
  | { ok: false; error: string };

/** A path inside a mount, or an error naming `what`: relative, with no `..` or empty part. */
export function relativeMountPath(value: unknown, what: string): string {
  if (
    typeof value !== 'string' ||
    value === '' ||
    value.includes('\0') ||
    value.split('/').some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new Error(`${what} is not a relative path inside the mount: ${JSON.stringify(value)}`);
  }
  return value;
}
