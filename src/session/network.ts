/**
 * The session's own Docker network. The daemon container starts on it, so Docker's embedded
 * DNS (127.0.0.11, the daemon's upstream resolver) knows the name of every container on it:
 * a local database started with `--network <session>` is reachable by name from every
 * container joined to the daemon, after the cluster's names (policy.ts). The default bridge
 * has no such DNS, which is why tp does not use it.
 */
import type { DockerEngine } from '../docker/engine.js';
import { inspectNetwork, type NetworkDetails } from '../docker/inspect.js';
import { TpError } from '../lib/errors.js';
import { LABEL_SESSION } from '../lib/labels.js';

/** Creates the network, or takes the one an earlier run of this session left behind. */
export async function ensureSessionNetwork(
  engine: DockerEngine,
  name: string,
  labels: Record<string, string>,
): Promise<NetworkDetails> {
  const found = await inspectNetwork(engine, name);
  if (found !== undefined) {
    if (found.labels[LABEL_SESSION] === labels[LABEL_SESSION]) return found;
    throw new TpError('state', `A Docker network named ${name} exists and is not this session's.`, {
      code: 'SESSION_NETWORK_TAKEN',
      fix: `Remove it (\`docker network rm ${name}\`) or pick another --name.`,
    });
  }
  await engine.createNetwork(name, labels);
  const created = await inspectNetwork(engine, name);
  if (created === undefined) throw new Error(`network ${name} vanished after it was created`);
  return created;
}

/** The user's networks the daemon also joins (`--network`), which must exist. */
export async function userNetworks(
  engine: DockerEngine,
  names: readonly string[],
): Promise<NetworkDetails[]> {
  return Promise.all(
    names.map(async (n) => {
      const found = await inspectNetwork(engine, n);
      if (found === undefined) {
        throw new TpError('usage', `--network ${n}: there is no Docker network named ${n}.`, {
          code: 'NETWORK_UNKNOWN',
          fix: 'Name an existing network (`docker network ls`), or leave --network out.',
        });
      }
      return found;
    }),
  );
}
