/**
 * The write-back helper of a replace (docs/engagements.md, "Write-back"): the daemon image's
 * `sync` role, in the daemon's network namespace, with the Docker volumes of the writable
 * mounts mounted read-only. Stopping it (SIGTERM) makes it send what is still unsent first.
 */
import { messageOf, TpError } from '../lib/errors.js';
import { LABEL_COMPONENT } from '../lib/labels.js';
import { RunningContainer, type DockerEngine } from './engine.js';
import { dockerError } from './errors.js';
import { inspectContainer } from './inspect.js';

/** Where the helper mounts each volume, under the volume's name. */
const SYNC_DIR = '/tp-sync';
/** Long enough for the last send of a large file; Docker kills the helper after it. */
const STOP_GRACE_S = 30;

export interface SyncerSpec {
  daemon: string;
  workload: string;
  /** The daemon's control port and secret, reached on its loopback. */
  controlPort: number;
  secret: string;
  mounts: { path: string; volume: string }[];
  labels: Record<string, string>;
}

export interface Syncing extends AsyncDisposable {
  container: string;
  /** Sends what is left, then removes the helper. */
  stop(): Promise<void>;
}

export async function startSyncer(engine: DockerEngine, spec: SyncerSpec): Promise<Syncing> {
  const daemon = await inspectContainer(engine, spec.daemon);
  if (daemon === undefined) throw new Error(`the session daemon ${spec.daemon} is gone`);
  const config = {
    workload: spec.workload,
    controlPort: spec.controlPort,
    mounts: spec.mounts.map((m) => ({ path: m.path, dir: `${SYNC_DIR}/${m.volume}` })),
  };
  let helper: RunningContainer;
  try {
    const c = await engine.client.createContainer({
      Image: daemon.image,
      Cmd: ['sync', JSON.stringify(config)],
      Env: [`TP_CONTROL_SECRET=${spec.secret}`],
      Labels: spec.labels,
      StopTimeout: STOP_GRACE_S,
      HostConfig: {
        NetworkMode: `container:${daemon.id}`,
        Binds: spec.mounts.map((m) => `${m.volume}:${SYNC_DIR}/${m.volume}:ro`),
      },
    });
    const name = ((await c.inspect()).Name || c.id).replace(/^\//, '');
    helper = new RunningContainer(engine, c.id, name);
    await c.start();
  } catch (err) {
    throw dockerError(err, engine.endpoint, 'start the helper that writes back to the pod');
  }
  try {
    await helper.waitForLog(/"syncing"/, 20_000);
  } catch (err) {
    await helper.stop();
    throw new TpError('state', `The helper that writes files back failed: ${messageOf(err)}`, {
      code: 'WRITE_BACK_HELPER_FAILED',
      fix: 'Reconnect the session with this tp (`tp connect --replace`), or use --mount=false.',
      cause: err,
    });
  }
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= stopAndRemove(engine, helper.id));
  return { container: helper.name, stop, [Symbol.asyncDispose]: stop };
}

/**
 * Stops the helpers `labels` select (a session's, for a workload), each sending what is left
 * first: what `tp leave` does before the workload is restored.
 */
export async function stopSyncers(
  engine: DockerEngine,
  labels: Readonly<Record<string, string>>,
): Promise<string[]> {
  const { containers } = await engine.listLabelled({ ...labels, [LABEL_COMPONENT]: 'syncer' });
  await Promise.all(containers.map((c) => stopAndRemove(engine, c.id)));
  return containers.map((c) => c.name);
}

/** SIGTERM, which makes the helper send what is left, then the container goes. */
async function stopAndRemove(engine: DockerEngine, id: string): Promise<void> {
  await engine.client
    .getContainer(id)
    .stop({ t: STOP_GRACE_S })
    .catch(() => undefined);
  await engine.removeContainer(id);
}
