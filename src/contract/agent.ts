/**
 * The agent's side of an engagement (docs/engagements.md): how tp configures the agent in the
 * pod, and the request and reply lines on the streams the daemon and the CLI open to it.
 */

/** The port the agent listens on, on the pod's loopback only: a port-forward reaches it. */
export const AGENT_PORT = 8190;
/** The port the pod's probes reach the agent on (all interfaces; it answers nothing else). */
export const AGENT_HEALTH_PORT = 8191;
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
}

export type AgentRequest =
  | { op: 'info' }
  /** A tar of one mount path; the reply line, then the tar, then the stream ends. */
  | { op: 'tar'; path: string }
  /** Wait for a client connection to an engaged port; it then flows in frames. */
  | { op: 'accept' }
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
