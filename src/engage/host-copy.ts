/**
 * `--mount <dir>`: the copies of a pod's mounts on this host as well, under a directory, for
 * tools outside Docker. The tar comes from a pod, so names that would leave the directory are
 * refused and links are made last: no file is ever written through a link from the tar.
 * Only the owner may read the copies, as with env files: they hold Secrets and tokens.
 */
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, rm, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type ExtractEvents, type Header } from 'tar-stream';

type Body = ExtractEvents['entry'][1];

/**
 * Where an entry goes under the directory: undefined for the root itself; an error for a name
 * outside it. `strip` is a leading folder the entries all carry (a tar read back from Docker).
 */
export function entryPath(name: string, strip = ''): string | undefined {
  let rel = posix.normalize(name).replace(/\/+$/, '');
  if (strip !== '') {
    if (rel === strip) return undefined;
    if (!rel.startsWith(`${strip}/`)) throw new Error(`${name} is not under ${strip}/`);
    rel = rel.slice(strip.length + 1);
  }
  if (rel === '.' || rel === '') return undefined;
  if (rel.startsWith('/') || rel === '..' || rel.startsWith('../') || rel.includes('\0')) {
    throw new Error(`${name} would leave the directory`);
  }
  return rel;
}

/** Owner-only permissions that keep the owner's bits, and let a later copy overwrite. */
const privateMode = (mode: number): number => (mode & 0o700) | 0o600;

/** Extracts the tar under `dir` (created if need be); resolves to the bytes of files written. */
export async function extractTo(tar: Readable, dir: string, strip = ''): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const links: { path: string; target: string }[] = [];
  let bytes = 0;
  const write = async (header: Header, body: Body): Promise<void> => {
    const rel = entryPath(header.name, strip);
    const path = rel === undefined ? dir : join(dir, rel);
    if (header.type === 'directory') {
      body.resume();
      await mkdir(path, { recursive: true, mode: 0o700 });
      return;
    }
    if (rel === undefined) throw new Error(`${header.name} is not a folder`);
    if (header.type === 'symlink') {
      body.resume();
      links.push({ path, target: header.linkname });
      return;
    }
    if (header.type !== 'file' && header.type !== 'contiguous-file') {
      body.resume();
      return;
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    // Whatever is there goes, a link above all, rather than being written through.
    await rm(path, { force: true });
    await pipeline(body, createWriteStream(path, { flags: 'wx', mode: privateMode(header.mode) }));
    await chmod(path, privateMode(header.mode));
    bytes += header.size;
  };
  const ex = extract();
  ex.on('entry', (header, body, next) => {
    write(header, body).then(
      () => {
        next();
      },
      (err: unknown) => {
        body.resume();
        next(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  await pipeline(tar, ex);
  for (const l of links) {
    if ((await lstat(l.path).catch(() => undefined)) !== undefined) await rm(l.path);
    await mkdir(dirname(l.path), { recursive: true, mode: 0o700 });
    await symlink(l.target, l.path);
  }
  return bytes;
}
