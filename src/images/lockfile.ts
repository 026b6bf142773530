import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TpError } from '../lib/errors.js';

/** One installed package: where npm puts it and what it holds. */
export interface LockedPackage {
  /** Its folder under the install root, e.g. `node_modules/a/node_modules/@s/b`. */
  path: string;
  /** Version and integrity: the lockfile's promise of the folder's contents. */
  identity: string;
}

export interface Platform {
  os: string;
  cpu: string;
  libc: string;
}

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
}

export type LockPackages = Readonly<Record<string, LockEntry>>;

/** package-lock.json's `packages` map (lockfile version 2 and later). */
export function readLockPackages(root: string): LockPackages {
  const file = join(root, 'package-lock.json');
  const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages?: LockPackages };
  if (lock.packages?.[''] === undefined) {
    throw new TpError('config', `${file} has no \`packages\` map.`, {
      code: 'LOCKFILE_UNSUPPORTED',
      fix: 'Regenerate it with npm 7 or later (`npm install --package-lock-only`).',
    });
  }
  return lock.packages;
}

/**
 * The packages that loading `names` from the package root can reach, as `npm ci --omit=dev`
 * installs them for `platform`: each name's dependencies, followed the way Node resolves them
 * (the nearest `node_modules` up the tree), sorted by path. Optional dependencies are taken
 * only when the lockfile has them for that platform, as npm does.
 */
export function lockedClosure(
  packages: LockPackages,
  names: readonly string[],
  platform: Platform,
): LockedPackage[] {
  const root = packages[''] ?? {};
  const found = new Map<string, LockedPackage>();
  const visit = (from: string, dep: { name: string; optional: boolean }): void => {
    const path = resolveFrom(packages, from, dep.name);
    const entry = path === undefined ? undefined : packages[path];
    if (path === undefined || entry === undefined) {
      if (dep.optional) return;
      throw lockError(`${from || 'package.json'} needs ${dep.name}, which it does not list`);
    }
    if (found.has(path) || (dep.optional && !fits(entry, platform))) return;
    if (entry.link === true) throw lockError(`${path} is a link, not an installed package`);
    found.set(path, {
      path,
      identity: `${entry.version ?? ''} ${entry.integrity ?? entry.resolved ?? ''}`,
    });
    for (const next of edges(entry)) visit(path, next);
  };
  for (const name of names) {
    const declared = [root.dependencies, root.optionalDependencies, root.peerDependencies];
    if (!declared.some((deps) => deps !== undefined && name in deps)) {
      throw new TpError(
        'internal',
        `An image's modules import ${name}, which is not a dependency.`,
        {
          code: 'IMAGE_UNDECLARED_PACKAGE',
          fix: `Add ${name} to package.json's dependencies (npm install ${name}), or stop importing it.`,
        },
      );
    }
    visit('', { name, optional: false });
  }
  return [...found.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function edges(entry: LockEntry): { name: string; optional: boolean }[] {
  const optionalPeer = (name: string): boolean =>
    entry.peerDependenciesMeta?.[name]?.optional === true;
  return [
    ...Object.keys(entry.dependencies ?? {}).map((name) => ({ name, optional: false })),
    ...Object.keys(entry.optionalDependencies ?? {}).map((name) => ({ name, optional: true })),
    ...Object.keys(entry.peerDependencies ?? {}).map((name) => ({
      name,
      optional: optionalPeer(name),
    })),
  ];
}

/** The nearest `node_modules/<name>` at or above `from`, as Node looks it up. */
function resolveFrom(packages: LockPackages, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (base === '') return undefined;
    const up = base.lastIndexOf('/node_modules/');
    base = up < 0 ? '' : base.slice(0, up);
  }
}

function fits(entry: LockEntry | undefined, platform: Platform): boolean {
  return (
    entry !== undefined &&
    allows(entry.os, platform.os) &&
    allows(entry.cpu, platform.cpu) &&
    allows(entry.libc, platform.libc)
  );
}

/** npm's `os`/`cpu`/`libc` lists: any of the plain values, none of the `!`-negated ones. */
function allows(list: readonly string[] | undefined, value: string): boolean {
  if (list === undefined || list.length === 0) return true;
  if (list.includes(`!${value}`)) return false;
  const plain = list.filter((v) => !v.startsWith('!'));
  return plain.length === 0 || plain.includes(value);
}

function lockError(what: string): TpError {
  return new TpError('config', `tp's package-lock.json cannot be installed as it is: ${what}.`, {
    code: 'LOCKFILE_INCONSISTENT',
    fix: 'Reinstall tp, or in a checkout run `npm install` to repair the lockfile.',
  });
}
