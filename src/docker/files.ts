import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';
import type { DockerEngine } from './engine.js';
import { dockerError, statusCodeOf } from './errors.js';

/** A tar of a few small files, for putArchive at `/` before a container starts. */
export async function filesTar(
  files: readonly { path: string; content: string; mode?: number }[],
): Promise<Buffer> {
  const p = pack();
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.replace(/^\/+/, '').split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) p.entry({ name: `${d}/`, type: 'directory', mode: 0o755 });
  for (const f of files) {
    p.entry({ name: f.path.replace(/^\/+/, ''), mode: f.mode ?? 0o600 }, f.content);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of p) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads one small file out of a container (running or not) through the engine. */
export async function readContainerFile(
  engine: DockerEngine,
  containerId: string,
  path: string,
): Promise<string | undefined> {
  let archive: NodeJS.ReadableStream;
  try {
    archive = await engine.client.getContainer(containerId).getArchive({ path });
  } catch (err) {
    if (statusCodeOf(err) === 404) return undefined;
    throw dockerError(err, engine.endpoint, `read ${path} from ${containerId}`);
  }
  const ex = extract();
  let content: string | undefined;
  ex.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => {
      if (header.type === 'file' && content === undefined)
        content = Buffer.concat(chunks).toString('utf8');
      next();
    });
    stream.resume();
  });
  await pipeline(archive, ex);
  return content;
}
