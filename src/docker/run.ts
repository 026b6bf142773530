import type { Writable } from 'node:stream';
import type { ContainerSpec, DockerEngine } from './engine.js';
import { dockerError } from './errors.js';

/**
 * Runs a container in the foreground like `docker run --rm`: its stdout and stderr stream to
 * ours as they come, and its exit code is the result. The container is removed either way.
 */
export async function runAttached(
  engine: DockerEngine,
  spec: ContainerSpec,
  stdout: Writable,
  stderr: Writable,
): Promise<number> {
  if ((await engine.imageInfo(spec.image)) === undefined) await engine.pullImage(spec.image);
  const docker = engine.client;
  let id: string | undefined;
  try {
    const c = await docker.createContainer({
      Image: spec.image,
      Labels: spec.labels,
      ...(spec.name === undefined ? {} : { name: spec.name }),
      ...(spec.cmd === undefined ? {} : { Cmd: spec.cmd }),
      ...(spec.entrypoint === undefined ? {} : { Entrypoint: spec.entrypoint }),
      Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: { ...(spec.networkMode === undefined ? {} : { NetworkMode: spec.networkMode }) },
    });
    id = c.id;
    const stream = await c.attach({ stream: true, stdout: true, stderr: true });
    docker.modem.demuxStream(stream, stdout, stderr);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
    });
    await c.start();
    const result = (await c.wait()) as { StatusCode: number };
    await ended;
    return result.StatusCode;
  } catch (err) {
    throw dockerError(err, engine.endpoint, `run ${spec.image}`);
  } finally {
    if (id !== undefined) await engine.removeContainer(id);
  }
}
