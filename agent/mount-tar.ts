/**
 * A tar of one volume mount as the app sees it. Kubernetes writes ConfigMap, Secret, downward
 * API and projected volumes atomically: the files live in a hidden `..<timestamp>` folder,
 * `..data` links to it and each visible name links through `..data`. Copying the links would
 * give the local container links to a folder that is never visible, so links that stay
 * inside the mount are followed and their targets stored under the visible names, and the
 * hidden folders themselves are left out.
 */
import { constants } from 'node:fs';
import { access, lstat, open, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, join, sep } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import type { MountRoot } from '../src/contract/agent.js';
import { finEncoder } from '../src/tunnel/frames.js';

type Headers = Partial<Header> & Pick<Header, 'name'>;

type Item =
  | { kind: 'file'; name: string; path: string }
  | { kind: 'directory'; name: string; path: string }
  | { kind: 'symlink'; name: string; path: string; target: string };

export interface MountWalk {
  items: Item[];
  /** Visible files the agent may not read (a Secret mode 0400 owned by another uid). */
  skipped: string[];
  /** The bytes of the files found, for the reader's progress; the tar may differ a little. */
  size: number;
  root: MountRoot;
}

const inside = (root: string, path: string): boolean =>
  path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/** What the tar will hold, found before the reply so the reply can name what it leaves out. */
export async function walkMount(root: string): Promise<MountWalk> {
  const items: Item[] = [];
  const skipped: string[] = [];
  let size = 0;
  const top = await realpath(root);
  const rootStat = await stat(root);
  const rootInfo: MountRoot = {
    file: rootStat.isFile(),
    mode: rootStat.mode & 0o7777,
    uid: rootStat.uid,
    gid: rootStat.gid,
  };
  if (rootStat.isFile()) {
    // A subPath mount of one file: the tar holds that file under its own name.
    const name = basename(root);
    if (await readable(root)) items.push({ kind: 'file', name, path: root });
    else skipped.push(name);
    return { items, skipped, size: items.length > 0 ? rootStat.size : 0, root: rootInfo };
  }
  if (!rootStat.isDirectory()) throw new Error(`${root} is neither a folder nor a file`);

  const visit = async (dir: string, prefix: string, ancestors: Set<string>): Promise<void> => {
    const names = (await readdir(dir)).sort();
    // The atomic writer's own names all start with "..", and only at the top.
    const atomic = prefix === '' && names.includes('..data');
    for (const n of names) {
      if (atomic && n.startsWith('..')) continue;
      const path = join(dir, n);
      const name = prefix + n;
      const l = await lstat(path).catch(() => undefined);
      if (l === undefined) continue; // removed since readdir
      let st = l;
      if (l.isSymbolicLink()) {
        const real = await realpath(path).catch(() => undefined);
        if (real === undefined || !inside(top, real)) {
          // Dangling or pointing out of the mount: a link is all the app has there too.
          items.push({ kind: 'symlink', name, path, target: await readlink(path) });
          continue;
        }
        st = await stat(path);
      }
      if (st.isDirectory()) {
        const real = await realpath(path);
        if (ancestors.has(real)) continue; // a link back up would never end
        items.push({ kind: 'directory', name, path });
        await visit(path, `${name}/`, new Set([...ancestors, real]));
      } else if (st.isFile()) {
        if (await readable(path)) {
          items.push({ kind: 'file', name, path });
          size += st.size;
        } else skipped.push(name);
      }
      // Sockets, fifos and devices have no contents to copy.
    }
  };
  await visit(root, '', new Set([top]));
  return { items, skipped, size, root: rootInfo };
}

async function readable(path: string): Promise<boolean> {
  try {
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes the walked mount as a tar to `out`, in frames ending with a FIN (src/tunnel/frames.ts)
 * so that the reader knows it is whole, and ends it; rejects (out destroyed) on failure.
 */
export async function writeMountTar(
  walk: MountWalk,
  out: Writable,
  log: (o: object) => void = () => undefined,
): Promise<void> {
  const pack = tarPack();
  const sent = pipeline(pack, finEncoder(), out);
  try {
    for (const item of walk.items) await addItem(pack, item, log);
    pack.finalize();
  } catch (err) {
    pack.destroy(err instanceof Error ? err : new Error(String(err)));
  }
  await sent;
}

async function addItem(pack: Pack, item: Item, log: (o: object) => void): Promise<void> {
  if (item.kind === 'symlink') {
    await entry(pack, { name: item.name, type: 'symlink', linkname: item.target, mode: 0o777 });
    return;
  }
  if (item.kind === 'directory') {
    const st = await stat(item.path).catch(() => undefined);
    if (st === undefined) return;
    await entry(pack, { name: item.name, type: 'directory', ...owner(st) });
    return;
  }
  // The size comes from the opened file, and only that many bytes are read: a file that
  // grows meanwhile (a log) still makes a valid entry, and one Kubernetes swaps out keeps the
  // contents it had when opened.
  const file = await open(item.path, 'r').catch((err: unknown) => {
    log({ msg: 'tar: file left out', path: item.path, error: String(err) });
    return undefined;
  });
  if (file === undefined) return;
  try {
    const st = await file.stat();
    const header: Headers = { name: item.name, type: 'file', size: st.size, ...owner(st) };
    if (st.size === 0) {
      await entry(pack, header);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header, (err) => {
        if (err) reject(err);
        else resolve();
      });
      const source = file.createReadStream({ start: 0, end: st.size - 1, autoClose: false });
      source.once('error', (err) => {
        sink.destroy(err);
        reject(err);
      });
      source.pipe(sink);
    });
  } finally {
    await file.close();
  }
}

interface Owner {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

function owner(st: Owner): Owner {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
}

function entry(pack: Pack, header: Headers): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, Buffer.alloc(0), (err) => {
      if (err) reject(err);
      else resolve();
    });
  });
}
