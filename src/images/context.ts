import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';

export interface ContextFile {
  /** The path inside the build context, with forward slashes. */
  path: string;
  mode: number;
  data: Buffer;
}

export interface ContextSource {
  /** The folder `paths` are relative to. */
  dir: string;
  /** Files or folders under `dir`; folders are taken whole. */
  paths: string[];
  /** Where under the context root the files go (default: the root itself). */
  prefix?: string;
  /** Paths (relative to `dir`) to leave out. */
  skip?: RegExp;
  /** When given, only files whose path (relative to `dir`) matches are taken. */
  keep?: RegExp;
}

/** Reads every file the sources name, sorted by context path. */
export function collectFiles(sources: readonly ContextSource[]): ContextFile[] {
  const files: ContextFile[] = [];
  for (const src of sources) {
    const walk = (abs: string): void => {
      const rel = relative(src.dir, abs).split(sep).join('/');
      if (src.skip?.test(rel) === true) return;
      const st = statSync(abs);
      if (st.isDirectory()) {
        for (const name of readdirSync(abs)) walk(join(abs, name));
      } else if (st.isFile() && src.keep?.test(rel) !== false) {
        const path = src.prefix === undefined ? rel : `${src.prefix}/${rel}`;
        files.push({ path, mode: st.mode & 0o777, data: readFileSync(abs) });
      }
    };
    for (const p of src.paths) walk(join(src.dir, p));
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A digest of every path, mode and byte, plus `extra` identities of what was not read. */
export function hashFiles(files: readonly ContextFile[], extra: readonly string[] = []): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.path}\0${f.mode}\0${f.data.length}\0`);
    h.update(f.data);
  }
  for (const e of extra) h.update(`\0extra\0${e}`);
  return h.digest('hex').slice(0, 16);
}

/** The files as the tar stream the engine's build endpoint takes. */
export function contextTar(files: readonly ContextFile[]): Readable {
  const pack = tar.pack();
  for (const f of files) {
    // A fixed mtime keeps the tar (and so the engine's layer cache) stable across checkouts.
    pack.entry({ name: f.path, mode: f.mode, mtime: new Date(0) }, f.data);
  }
  pack.finalize();
  // @types/tar-stream resolves an older @types/node through a transitive dependency; the
  // object is a real stream.Readable at run time.
  return pack as unknown as Readable;
}
