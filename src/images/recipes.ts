import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TpError } from '../lib/errors.js';
import type { Component } from '../lib/labels.js';
import { packageRoot } from '../lib/package-info.js';
import { moduleClosure } from './closure.js';
import { collectFiles, hashFiles, type ContextFile, type ContextSource } from './context.js';
import { imagePlatform } from './deps.js';
import { lockedClosure, readLockPackages, type LockedPackage } from './lockfile.js';

export type ImageComponent = Extract<Component, 'daemon' | 'agent'>;

interface ImageRecipe {
  dockerfile: string;
  /** The program the image runs, under dist/; the context holds the modules it imports. */
  entry: string;
  /** The Dockerfile builds the Go library from netstack/. */
  netstack: boolean;
  /** The Dockerfile copies deps/node_modules (a COPY of a folder the context lacks fails). */
  nodeModules: boolean;
}

export const recipes: Record<ImageComponent, ImageRecipe> = {
  daemon: {
    dockerfile: 'containers/daemon.Dockerfile',
    entry: 'src/daemon/main.js',
    netstack: true,
    nodeModules: true,
  },
  agent: {
    dockerfile: 'containers/agent.Dockerfile',
    entry: 'agent/main.js',
    netstack: false,
    nodeModules: true,
  },
};

/** What `go build ./cmd/libtpnetstack` reads: the module files and the non-test sources. */
const goSources: Omit<ContextSource, 'dir'> = {
  paths: ['netstack'],
  skip: /(^|\/)(testdata|vendor|\.git)$/,
  keep: /(^|\/)go\.(mod|sum)$|(?<!_test)\.go$/,
};

export interface ImageContext {
  root: string;
  /** The context's files apart from the staged packages and Go modules. */
  files: ContextFile[];
  /** The npm packages the image's modules use, which the build copies from the stage. */
  packages: LockedPackage[];
  /** Identifies what goes into the context, so the image this tp builds. */
  hash: string;
}

/**
 * The build context of a component's image, from the package at `root`: its Dockerfile, a
 * manifest, the modules its entry point imports, the packages those import, and for the
 * daemon the netstack's Go sources; nothing a test or another program left under dist/.
 */
export async function imageContext(
  component: ImageComponent,
  root = packageRoot(),
): Promise<ImageContext> {
  const recipe = recipes[component];
  const needed = [recipe.dockerfile, 'package.json', 'package-lock.json'];
  if (recipe.netstack) needed.push('netstack/go.mod');
  const missing = needed.filter((p) => !existsSync(join(root, p)));
  if (missing.length > 0) {
    throw new TpError(
      'config',
      `The ${component} image cannot be built: ${missing.join(', ')} missing under ${root}.`,
      { code: 'IMAGE_CONTEXT_MISSING', fix: 'Reinstall tp.' },
    );
  }
  const modules = await moduleClosure(join(root, 'dist'), recipe.entry);
  if (recipe.nodeModules !== modules.packages.length > 0) {
    const uses = modules.packages.length > 0 ? modules.packages.join(', ') : 'no npm package';
    const copies = recipe.nodeModules ? 'copies' : 'does not copy';
    throw new TpError(
      'internal',
      `The ${component} image's modules use ${uses}, but ${recipe.dockerfile} ${copies} deps/node_modules.`,
      {
        code: 'IMAGE_RECIPE',
        fix: `Make ${recipe.dockerfile} and its recipe in src/images/recipes.ts agree.`,
      },
    );
  }
  const packages = lockedClosure(readLockPackages(root), modules.packages, imagePlatform);
  const sources: ContextSource[] = [
    { dir: root, paths: [recipe.dockerfile] },
    { dir: join(root, 'dist'), paths: modules.files, prefix: 'dist' },
  ];
  if (recipe.netstack) sources.push({ dir: root, ...goSources });
  const files = [manifest(root), ...collectFiles(sources)];
  // The stage is installed from the lockfile, so its entries stand for the packages' bytes.
  const hash = hashFiles(
    files,
    packages.map((p) => `${p.path} ${p.identity}`),
  );
  return { root, files, packages, hash };
}

/**
 * The image's package.json: what Node (`type`) and package-info.ts (`name`, `version`) read in
 * it. The whole file would tie the image to every dependency and script tp has.
 */
function manifest(root: string): ContextFile {
  const pkg: unknown = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const { name, version, type } = pkg as Record<string, unknown>;
  const data = Buffer.from(`${JSON.stringify({ name, version, type }, null, 2)}\n`);
  return { path: 'package.json', mode: 0o644, data };
}

/** The staged packages as context sources, each without its nested node_modules. */
export function stagedPackages(stage: string, packages: readonly LockedPackage[]): ContextSource[] {
  const absent = packages.filter((p) => !existsSync(join(stage, p.path, 'package.json')));
  if (absent.length > 0) {
    throw new TpError(
      'config',
      `The staged dependencies in ${stage} lack ${absent.map((p) => p.path).join(', ')}.`,
      { code: 'DEPS_INCOMPLETE', fix: `Remove ${stage} so that tp installs them again.` },
    );
  }
  // A package's nested node_modules are packages of their own, copied when the closure has them.
  const nested = /^node_modules\/.+\/node_modules$/;
  return packages.map((p) => ({ dir: stage, paths: [p.path], prefix: 'deps', skip: nested }));
}
