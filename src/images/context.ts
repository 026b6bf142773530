import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

export interface BuildContext {
  /** Files relative to the root, sorted, with their bytes. */
  files: { path: string; mode: number; data: Buffer }[];
  /** A digest of every path, mode and byte: the same context always builds the same image. */
  hash: string;
}

/** Collects `paths` (files or folders) under `root`, skipping anything `skip` names. */
export function collectContext(root: string, paths: string[], skip: RegExp): BuildContext {
  const files: BuildContext['files'] = [];
  const walk = (abs: string): void => {
    const rel = relative(root, abs).split(sep).join('/');
    if (skip.test(rel)) return;
    const st = statSync(abs);
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) walk(join(abs, name));
    } else if (st.isFile()) {
      files.push({ path: rel, mode: st.mode & 0o777, data: readFileSync(abs) });
    }
  };
  for (const p of paths) walk(join(root, p));
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.path}\0${f.mode}\0${f.data.length}\0`);
    h.update(f.data);
  }
  return { files, hash: h.digest('hex').slice(0, 16) };
}

/** The context as the tar stream the engine's build endpoint takes. */
export function contextTar(ctx: BuildContext): Readable {
  const pack = tar.pack();
  for (const f of ctx.files) {
    // A fixed mtime keeps the tar (and so the engine's layer cache) stable across checkouts.
    pack.entry({ name: f.path, mode: f.mode, mtime: new Date(0) }, f.data);
  }
  pack.finalize();
  // @types/tar-stream resolves an older @types/node through a transitive dependency; the
  // object is a real stream.Readable at run time.
  return pack as unknown as Readable;
}
