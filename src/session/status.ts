/** Finding sessions in Docker and asking their daemons how they are. */
import type { DockerEngine } from '../docker/engine.js';
import { inspectContainer, type ContainerDetails } from '../docker/inspect.js';
import type { SessionStatus } from '../contract/session.js';
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
  /** The Docker networks the daemon is on; the first is the session's own. */
  networks: string[];
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
    name: sessionName(d),
    container: d.id,
    context: d.labels[LABEL_CONTEXT] ?? '',
    namespace: d.labels[LABEL_NAMESPACE] ?? '',
    running: d.running,
    networks: Object.keys(d.networks).sort((a, b) =>
      a === d.name ? -1 : b === d.name ? 1 : a.localeCompare(b),
    ),
  };
  if (!d.running) s.exit = { code: d.exitCode, oomKilled: d.oomKilled, finishedAt: d.finishedAt };
  return s;
}

/**
 * How a command lets its user pick a session: `--name` where the command has flags of its
 * own, `TP_SESSION` everywhere. An error that asks the user to pick one offers only those.
 */
export type SessionSelector = '--name' | '--use' | 'TP_SESSION';
export const FLAG_OR_ENV: readonly SessionSelector[] = ['--name', 'TP_SESSION'];
/**
 * Engagement commands keep --name for Telepresence's meaning (the engagement's name) and pick
 * the session with --use, Telepresence's flag for picking a daemon.
 */
export const USE_OR_ENV: readonly SessionSelector[] = ['--use', 'TP_SESSION'];
/** `tp curl` passes every argument to curl, so it cannot take --name. */
export const ENV_ONLY: readonly SessionSelector[] = ['TP_SESSION'];

/** "`--name <session>` or `TP_SESSION=<session>`", as far as the command allows. */
export function selectorHint(selectors: readonly SessionSelector[], session = '<session>'): string {
  return selectors
    .map((s) => (s === 'TP_SESSION' ? `\`TP_SESSION=${session}\`` : `\`${s} ${session}\``))
    .join(' or ');
}

/**
 * Another tp command aimed at one session, written the way the user already picks sessions:
 * a user of `tp curl` is shown TP_SESSION, not a flag, even for commands that take --name.
 */
function tpFor(selectors: readonly SessionSelector[], session: string, command: string): string {
  return selectors.includes('--name')
    ? `\`tp ${command} --name ${session}\``
    : `\`TP_SESSION=${session} tp ${command}\``;
}

function sessionName(d: ContainerDetails): string {
  return d.labels[LABEL_SESSION] ?? d.name;
}

/** The session called `name` (by its label or its container's name), if there is one. */
export function findSession(
  sessions: readonly ContainerDetails[],
  name: string,
): ContainerDetails | undefined {
  return sessions.find((s) => sessionName(s) === name || s.name === name);
}

/**
 * The one session a command is about: the one named, else the only one there is. Several
 * sessions and no name is a usage error that lists them and says how to pick one.
 */
export async function pickSession(
  engine: DockerEngine,
  name: string | undefined,
  selectors: readonly SessionSelector[],
): Promise<ContainerDetails | undefined> {
  const sessions = await listSessions(engine);
  if (name !== undefined) return findSession(sessions, name);
  if (sessions.length <= 1) return sessions[0];
  throw ambiguousSessions(sessions.map(sessionName), selectors);
}

export function ambiguousSessions(
  names: readonly string[],
  selectors: readonly SessionSelector[],
): TpError {
  const sorted = [...names].sort();
  return new TpError('usage', `There are ${sorted.length} sessions: ${sorted.join(', ')}.`, {
    code: 'SESSION_AMBIGUOUS',
    fix: `Say which one with ${selectorHint(selectors)}.`,
  });
}

/**
 * Not connected, or not to the session asked for. `running` lists the sessions there are, so
 * the fix can offer them with the selectors the command takes.
 */
export function notConnected(
  name: string | undefined,
  selectors: readonly SessionSelector[],
  running: readonly string[] = [],
): TpError {
  if (name === undefined) {
    return new TpError('state', 'tp is not connected.', {
      code: 'NOT_CONNECTED',
      fix: 'Connect first with `tp connect --docker`.',
    });
  }
  const others =
    running.length === 0
      ? ''
      : `, or pick one of the running sessions (${[...running].sort().join(', ')}) with ${selectorHint(selectors)}`;
  return new TpError('state', `There is no session named ${name}.`, {
    code: 'NOT_CONNECTED',
    fix: `Start it with ${tpFor(selectors, name, 'connect --docker')}${others}.`,
  });
}

/** The session's daemon container exists but has stopped. */
export function notRunning(
  name: string,
  exitCode: number,
  selectors: readonly SessionSelector[],
): TpError {
  return new TpError(
    'state',
    `The daemon container of session ${name} is not running (exit code ${exitCode}).`,
    {
      code: 'SESSION_NOT_RUNNING',
      fix: `Clean it up with ${tpFor(selectors, name, 'quit')}, then connect again.`,
    },
  );
}

/**
 * The running session a command works in: the one selected, else the only one. Anything else
 * is an error whose fix names the selectors the command takes.
 */
export async function requireRunningSession(
  engine: DockerEngine,
  name: string | undefined,
  selectors: readonly SessionSelector[],
): Promise<ContainerDetails> {
  const sessions = await listSessions(engine);
  if (name === undefined && sessions.length > 1) {
    throw ambiguousSessions(sessions.map(sessionName), selectors);
  }
  const d = name === undefined ? sessions[0] : findSession(sessions, name);
  if (d === undefined) {
    throw notConnected(name, selectors, sessions.filter((s) => s.running).map(sessionName));
  }
  if (!d.running) throw notRunning(sessionName(d), d.exitCode, selectors);
  return d;
}

export async function readSessionStatus(
  engine: DockerEngine,
  d: ContainerDetails,
  timeoutMs?: number,
): Promise<SessionStatus> {
  const client = await ControlClient.for(engine, d);
  if (client === undefined) throw new Error(`container ${d.name} has no control API`);
  return client.call('GET /v1/status', undefined, timeoutMs);
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
          fix: `Look at \`docker logs ${d.name}\`, then \`tp quit --name ${d.name}\` and connect again.`,
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

/** `tp status` without a selector when there are several sessions: each one's report. */
export interface StatusReports {
  sessions: StatusReport[];
}

/**
 * What `tp status` shows: the session's container and, when it answers, its daemon's view.
 * Without a name and with several sessions, every session's, as Telepresence shows all its
 * connections.
 */
export async function statusReport(
  engine: DockerEngine,
  name: string | undefined,
): Promise<StatusReport | StatusReports> {
  const sessions = await listSessions(engine);
  if (name === undefined && sessions.length > 1) {
    const sorted = [...sessions].sort((a, b) => sessionName(a).localeCompare(sessionName(b)));
    return { sessions: await Promise.all(sorted.map((d) => reportOf(engine, d))) };
  }
  const d = name === undefined ? sessions[0] : findSession(sessions, name);
  return d === undefined ? { connected: false } : reportOf(engine, d);
}

async function reportOf(engine: DockerEngine, d: ContainerDetails): Promise<StatusReport> {
  const session = summary(d);
  if (!d.running) return { connected: false, session };
  try {
    return { connected: true, session, status: await readSessionStatus(engine, d) };
  } catch (err) {
    return { connected: false, session, error: err instanceof Error ? err.message : String(err) };
  }
}
