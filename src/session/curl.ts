import type { Writable } from 'node:stream';
import type { DockerEngine } from '../docker/engine.js';
import { runAttached } from '../docker/run.js';
import { LABEL_SESSION, tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';
import { ENV_ONLY, requireRunningSession } from './status.js';

/**
 * curl from a container joined to the daemon's network namespace, so it sees the cluster
 * exactly as a joined application would. The daemon image carries curl. Every argument is
 * curl's, so the session is picked by TP_SESSION alone.
 */
export async function curlInSession(
  engine: DockerEngine,
  name: string | undefined,
  args: string[],
  stdout: Writable,
  stderr: Writable,
): Promise<number> {
  const daemon = await requireRunningSession(engine, name, ENV_ONLY);
  const session = daemon.labels[LABEL_SESSION] ?? daemon.name;
  return runAttached(
    engine,
    {
      image: daemon.image,
      entrypoint: ['curl'],
      cmd: args,
      labels: tpLabels(clientVersion(), 'joined', { [LABEL_SESSION]: session }),
      networkMode: `container:${daemon.id}`,
    },
    stdout,
    stderr,
  );
}
