/**
 * The two images a session needs: the daemon's in the local engine, and the agent's where
 * the cluster can pull it. The agent's tag carries a hash of its build inputs, so a changed
 * tp rolls the manager and an unchanged one never pushes again.
 */
import type { Progress } from '../cli/progress.js';
import type { DockerEngine } from '../docker/engine.js';
import { pushImage } from '../docker/inspect.js';
import { ensureImage } from '../images/images.js';
import { TpError } from '../lib/errors.js';
import { clientVersion } from '../lib/package-info.js';
import type { TpSettings } from './config.js';

export async function daemonImage(
  engine: DockerEngine,
  settings: TpSettings,
  progress: Progress,
): Promise<string> {
  if (settings.daemonImage !== undefined) {
    if ((await engine.imageInfo(settings.daemonImage)) === undefined)
      await engine.pullImage(settings.daemonImage);
    return settings.daemonImage;
  }
  return (await ensureImage(engine, 'daemon', progress)).ref;
}

export interface AgentImage {
  /** The reference the cluster pulls. */
  ref: string;
  /** Makes `ref` pullable by the cluster (a push); a no-op for a configured image. */
  publish(): Promise<void>;
}

export async function agentImage(
  engine: DockerEngine,
  settings: TpSettings,
  progress: Progress,
): Promise<AgentImage> {
  const configured = settings.agentImage;
  if (configured !== undefined) return { ref: configured, publish: () => Promise.resolve() };
  if (settings.registry === undefined) throw registryUnset();
  const built = await ensureImage(engine, 'agent', progress);
  const ref = `${settings.registry}/tp-agent:${clientVersion()}-${built.contextHash.slice(0, 12)}`;
  return {
    ref,
    publish: async () => {
      const step = progress.step(`Pushing ${ref}`);
      try {
        await pushImage(engine, built.ref, ref, (line) => {
          step.update(line);
        });
      } catch (err) {
        step.fail();
        throw err;
      }
      step.succeed();
    },
  };
}

function registryUnset(): TpError {
  return new TpError(
    'config',
    'tp does not know where to put its agent image so that the cluster can pull it.',
    {
      code: 'REGISTRY_UNSET',
      fix: 'Set TP_REGISTRY to a registry your cluster pulls from (the lab: TP_REGISTRY=127.0.0.1:5000), or TP_AGENT_IMAGE to a published tp-agent image.',
    },
  );
}

/** Fails before anything is built or created when the agent image could not reach the cluster. */
export function checkImageSettings(settings: TpSettings): void {
  if (settings.agentImage === undefined && settings.registry === undefined) throw registryUnset();
}
