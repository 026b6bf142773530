/**
 * Files written locally, landing in a writable mount of the pod (replace): deletions first,
 * then a tar of what changed. Each file is written beside its final name and renamed over
 * it, so that a container left in the pod never reads half a file. Nothing may land outside
 * the mount, whatever the tar's names or the links already in the volume say.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, realpath, rename, rm, symlink, utimes } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, type ExtractEvents, type Header } from 'tar-stream';
import { relativeMountPath, type WriteSummary } from '../src/contract/agent.js';

type Body = ExtractEvents['entry'][1];

const within = (root: string, path: string): boolean =>
  path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * The folder `rel` goes in, created as needed, once its real path is known to be in the
 * mount: a link in the volume pointing out of it must not carry a write out.
 */
async function parentInside(top: string, mount: string, rel: string): Promise<string> {
  const parent = dirname(join(mount, rel));
  // The nearest folder that exists is checked before any is created: mkdir follows links.
  let existing = parent;
  while ((await lstat(existing).catch(() => undefined)) === undefined) existing = dirname(existing);
  const check = async (path: string): Promise<void> => {
    if (!within(top, await realpath(path))) throw new Error(`${rel} would land outside the mount`);
  };
  await check(existing);
  if (existing !== parent) {
    await mkdir(parent, { recursive: true });
    await check(parent);
  }
  return parent;
}

export async function applyWrite(
  mount: string,
  deletes: readonly string[],
  tar: Readable,
): Promise<WriteSummary> {
  const top = await realpath(mount);
  const summary: WriteSummary = { files: 0, bytes: 0, deleted: 0 };
  for (const rel of deletes) {
    await parentInside(top, mount, rel);
    const path = join(mount, rel);
    if ((await lstat(path).catch(() => undefined)) === undefined) continue;
    await rm(path, { recursive: true, force: true });
    summary.deleted += 1;
  }
  const extract = tarExtract();
  extract.on('entry', (header, body, next) => {
    writeEntry(top, mount, header, body).then(
      (bytes) => {
        if (header.type === 'file') {
          summary.files += 1;
          summary.bytes += bytes;
        }
        next();
      },
      (err: unknown) => {
        body.resume();
        next(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  await pipeline(tar, extract);
  return summary;
}

async function writeEntry(top: string, mount: string, header: Header, body: Body): Promise<number> {
  const rel = relativeMountPath(header.name.replace(/\/+$/, ''), 'a tar entry');
  const mode = header.mode & 0o7777;
  const parent = await parentInside(top, mount, rel);
  const path = join(mount, rel);
  if (header.type === 'directory') {
    body.resume();
    const st = await lstat(path).catch(() => undefined);
    if (st !== undefined && !st.isDirectory()) await rm(path, { recursive: true, force: true });
    await mkdir(path, { recursive: true });
    await chmod(path, mode);
    return 0;
  }
  if (header.type === 'symlink') {
    body.resume();
    await rm(path, { recursive: true, force: true });
    await symlink(header.linkname, path);
    return 0;
  }
  if (header.type !== 'file') {
    // Devices, fifos and hard links: nothing a volume copy made or a sync sends.
    body.resume();
    return 0;
  }
  const temp = join(parent, `.tp-write-${randomBytes(6).toString('hex')}`);
  try {
    let bytes = 0;
    body.on('data', (chunk) => {
      bytes += (chunk as Buffer).length;
    });
    await pipeline(body, createWriteStream(temp, { mode }));
    await chmod(temp, mode);
    await utimes(temp, header.mtime, header.mtime);
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory() === true) await rm(path, { recursive: true, force: true });
    await rename(temp, path);
    return bytes;
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
