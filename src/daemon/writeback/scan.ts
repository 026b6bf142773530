/**
 * What changed in a local copy of a mount since it was last sent: a walk that records each
 * entry's type, size, mtime and mode (links are not followed), and the difference of two
 * walks, as the files to send and the paths to delete.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface Entry {
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mtimeMs: number;
  mode: number;
  target?: string;
}

/** Entries by path relative to the mount, parents before children. */
export type Snapshot = Map<string, Entry>;

export async function scan(root: string): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const visit = async (dir: string, prefix: string): Promise<void> => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names.sort()) {
      const rel = prefix + n;
      const path = join(dir, n);
      const st = await lstat(path).catch(() => undefined);
      if (st === undefined) continue; // removed since readdir
      const base = { size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & 0o7777 };
      if (st.isDirectory()) {
        out.set(rel, { type: 'directory', ...base, size: 0, mtimeMs: 0 });
        await visit(path, `${rel}/`);
      } else if (st.isFile()) {
        out.set(rel, { type: 'file', ...base });
      } else if (st.isSymbolicLink()) {
        const target = await readlink(path).catch(() => undefined);
        if (target !== undefined) out.set(rel, { type: 'symlink', ...base, target });
      }
      // Sockets and fifos have nothing to send.
    }
  };
  await visit(root, '');
  return out;
}

export interface Changes {
  /** New or changed entries, parents first. */
  send: string[];
  /** Entries gone, without those under a folder that is gone too. */
  deletes: string[];
}

function same(a: Entry, b: Entry): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.target === b.target
  );
}

export function diff(before: Snapshot, after: Snapshot): Changes {
  const send = [...after].filter(([rel, e]) => {
    const was = before.get(rel);
    return was === undefined || !same(was, e);
  });
  const gone = [...before.keys()].filter((rel) => !after.has(rel));
  const goneSet = new Set(gone);
  const deletes = gone.filter((rel) => {
    // A folder that went takes its contents with it.
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      if (goneSet.has(rel.slice(0, i))) return false;
    }
    return true;
  });
  return { send: send.map(([rel]) => rel), deletes };
}

export const isEmpty = (c: Changes): boolean => c.send.length === 0 && c.deletes.length === 0;
