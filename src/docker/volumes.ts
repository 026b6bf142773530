/**
 * Docker volumes that hold copies of an engaged pod's mounts (docs/engagements.md). They are
 * filled through one helper container that mounts them all and is created but never started:
 * the engine extracts a tar into a container's filesystem, its volumes included, running or not.
 */
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { pack } from 'tar-stream';
import type { MountRoot } from '../contract/agent.js';
import { labelSelector } from '../lib/labels.js';
import type { DockerEngine } from './engine.js';
import { dockerError, statusCodeOf } from './errors.js';

/** Where the helper mounts the volumes, each under its own name. */
const HELPER_DIR = '/tp-volumes';

export interface FillerSpec {
  volumes: string[];
  /** On the volumes and on the helper, so that quit removes a helper a crash left behind. */
  labels: Record<string, string>;
  /** A container whose image the helper is created from: one the engine is sure to have. */
  imageOf: string;
}

export class VolumeFiller implements AsyncDisposable {
  private removed: Promise<unknown> | undefined;

  private constructor(
    private readonly engine: DockerEngine,
    private readonly helper: Docker.Container,
  ) {}

  /** Creates the volumes (empty) and the helper that mounts them. */
  static async create(engine: DockerEngine, spec: FillerSpec): Promise<VolumeFiller> {
    const docker = engine.client;
    try {
      const image = (await docker.getContainer(spec.imageOf).inspect()).Image;
      for (const name of spec.volumes)
        await docker.createVolume({ Name: name, Labels: spec.labels });
      const helper = await docker.createContainer({
        Image: image,
        // Never run: a created container is all the archive API needs.
        Entrypoint: ['/bin/false'],
        Cmd: [],
        Labels: spec.labels,
        NetworkDisabled: true,
        HostConfig: { Binds: spec.volumes.map((v) => `${v}:${HELPER_DIR}/${v}`) },
      });
      return new VolumeFiller(engine, helper);
    } catch (err) {
      throw dockerError(err, engine.endpoint, 'create volumes');
    }
  }

  /** Extracts the tar into the volume, owners and modes as the tar has them. */
  async fill(volume: string, tar: Readable, root?: Omit<MountRoot, 'file'>): Promise<void> {
    try {
      // copyUIDGID keeps the pod's owners: a local process of the app's uid can write where
      // the app could (otherwise everything would belong to root).
      await this.helper.putArchive(tar, { path: `${HELPER_DIR}/${volume}`, copyUIDGID: '1' });
      if (root !== undefined) {
        await this.helper.putArchive(await rootTar(volume, root), {
          path: HELPER_DIR,
          copyUIDGID: '1',
        });
      }
    } catch (err) {
      tar.destroy();
      throw dockerError(err, this.engine.endpoint, `copy into volume ${volume}`);
    }
  }

  /** The volume's contents as a tar whose entries are under `<volume>/`. */
  async read(volume: string): Promise<Readable> {
    try {
      return (await this.helper.getArchive({
        path: `${HELPER_DIR}/${volume}`,
      })) as unknown as Readable;
    } catch (err) {
      throw dockerError(err, this.engine.endpoint, `read volume ${volume}`);
    }
  }

  /** Removes the helper; the volumes stay. */
  remove(): Promise<unknown> {
    this.removed ??= this.engine.removeContainer(this.helper.id);
    return this.removed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

/**
 * The mount point as a tar entry of its own: put in the helper's folder, the engine gives the
 * volume's root that mode and owner (an entry `./` inside the volume is ignored).
 */
async function rootTar(volume: string, root: Omit<MountRoot, 'file'>): Promise<Buffer> {
  const p = pack();
  p.entry({ name: `${volume}/`, type: 'directory', mode: root.mode, uid: root.uid, gid: root.gid });
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface RemovedVolumes {
  removed: string[];
  /** Volumes a container still uses (one the user started with them): quit removes them. */
  inUse: string[];
}

/** Removes the volumes carrying these tp labels, and any helper a crash left with them. */
export async function removeVolumes(
  engine: DockerEngine,
  labels: Readonly<Record<string, string>>,
  only?: readonly string[],
): Promise<RemovedVolumes> {
  const docker = engine.client;
  const filters = JSON.stringify({ label: labelSelector(labels) });
  const out: RemovedVolumes = { removed: [], inUse: [] };
  try {
    if (only === undefined) {
      for (const c of await docker.listContainers({ all: true, filters })) {
        await engine.removeContainer(c.Id);
      }
    }
    const { Volumes } = await docker.listVolumes({ filters });
    for (const v of Volumes) {
      if (only !== undefined && !only.includes(v.Name)) continue;
      try {
        await docker.getVolume(v.Name).remove();
        out.removed.push(v.Name);
      } catch (err) {
        const status = statusCodeOf(err);
        if (status === 409) out.inUse.push(v.Name);
        else if (status !== 404) throw err;
      }
    }
  } catch (err) {
    throw dockerError(err, engine.endpoint, 'remove tp volumes');
  }
  return out;
}
