/** Finding sessions in Docker and asking their daemons how they are. */
import type { DockerEngine } from '../docker/engine.js';
import { inspectContainer, type ContainerDetails } from '../docker/inspect.js';
import type { SessionStatus } from '../daemon/session-config.js';
import { TpError } from '../lib/errors.js';
import { LABEL_COMPONENT } from '../lib/labels.js';
import { ControlClient } from './control-client.js';
import { LABEL_CONTEXT, LABEL_NAMESPACE, LABEL_SESSION } from './naming.js';

export type { SessionStatus };

export interface SessionSummary {
  name: string;
  container: string;
  context: string;
  namespace: string;
  running: boolean;
  /** Why the container is not running, when it is not. */
  exit?: { code: number; oomKilled: boolean; finishedAt: string };
}

/** Every daemon container tp started, running or not. */
export async function listSessions(engine: DockerEngine): Promise<ContainerDetails[]> {
  const found = await engine.listLabelled({ [LABEL_COMPONENT]: 'daemon' });
  const details = await Promise.all(found.containers.map((c) => inspectContainer(engine, c.id)));
  return details.filter((d): d is ContainerDetails => d?.labels[LABEL_SESSION] !== undefined);
}

export function summary(d: ContainerDetails): SessionSummary {
  const s: SessionSummary = {
    name: d.labels[LABEL_SESSION] ?? d.name,
    container: d.id,
    context: d.labels[LABEL_CONTEXT] ?? '',
    namespace: d.labels[LABEL_NAMESPACE] ?? '',
    running: d.running,
  };
  if (!d.running) s.exit = { code: d.exitCode, oomKilled: d.oomKilled, finishedAt: d.finishedAt };
  return s;
}

/**
 * The one session a command is about: the one named, else the only one there is. Several
 * sessions and no --name is a usage error that lists them.
 */
export async function pickSession(
  engine: DockerEngine,
  name: string | undefined,
): Promise<ContainerDetails | undefined> {
  const sessions = await listSessions(engine);
  if (name !== undefined)
    return sessions.find((s) => s.labels[LABEL_SESSION] === name || s.name === name);
  if (sessions.length <= 1) return sessions[0];
  throw new TpError(
    'usage',
    `There are ${sessions.length} sessions: ${sessions.map((s) => s.name).join(', ')}.`,
    {
      code: 'SESSION_AMBIGUOUS',
      fix: 'Say which one with --name.',
    },
  );
}

export function notConnected(name: string | undefined): TpError {
  return new TpError(
    'state',
    name === undefined ? 'tp is not connected.' : `There is no session named ${name}.`,
    {
      code: 'NOT_CONNECTED',
      fix: 'Connect first with `tp connect --docker`.',
    },
  );
}

export async function readSessionStatus(
  engine: DockerEngine,
  d: ContainerDetails,
): Promise<SessionStatus> {
  const client = await ControlClient.for(engine, d);
  if (client === undefined) throw new Error(`container ${d.name} has no control API`);
  return client.get<SessionStatus>('/v1/status');
}

/** Waits until the daemon's session answers, or fails with what the daemon said. */
export async function waitForSession(
  engine: DockerEngine,
  id: string,
  timeoutMs: number,
): Promise<SessionStatus> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const d = await inspectContainer(engine, id);
    if (!d?.running) {
      const logs = d === undefined ? '' : (await engine.logsOf(id)).stdout;
      throw sessionFailed(logs, d?.name ?? id);
    }
    try {
      return await readSessionStatus(engine, d);
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new TpError(
        'unavailable',
        `The daemon did not come up within ${timeoutMs / 1000} s (${lastError}).`,
        {
          code: 'DAEMON_NOT_READY',
          fix: `Look at \`docker logs ${d.name}\`, then \`tp quit\` and connect again.`,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function sessionFailed(logs: string, name: string): TpError {
  let reason = 'it exited';
  for (const line of logs.split('\n')) {
    try {
      const o = JSON.parse(line) as { msg?: string; error?: string };
      if (o.msg === 'session failed' && o.error !== undefined) reason = o.error;
    } catch {
      // not a log record
    }
  }
  return new TpError(
    'unavailable',
    `The daemon container ${name} could not start its session: ${reason}.`,
    {
      code: 'DAEMON_FAILED',
      fix: `See \`docker logs ${name}\`; \`tp doctor\` checks what the daemon needs.`,
    },
  );
}

export interface StatusReport {
  connected: boolean;
  session?: SessionSummary;
  status?: SessionStatus;
  /** Why a running daemon did not answer. */
  error?: string;
}

/** What `tp status` shows: the session's container and, when it answers, its daemon's view. */
export async function statusReport(
  engine: DockerEngine,
  name: string | undefined,
): Promise<StatusReport> {
  const d = await pickSession(engine, name);
  if (d === undefined) return { connected: false };
  const session = summary(d);
  if (!d.running) return { connected: false, session };
  try {
    return { connected: true, session, status: await readSessionStatus(engine, d) };
  } catch (err) {
    return { connected: false, session, error: err instanceof Error ? err.message : String(err) };
  }
}
