import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Progress } from '../cli/progress.js';
import type { Platform } from './lockfile.js';
import { stageCached } from './stage.js';

const run = promisify(execFile);

/** What the images run on, so which of a package's platform builds npm installs for them. */
export const imagePlatform: Platform = { os: 'linux', cpu: 'x64', libc: 'glibc' };

/** What the production dependencies are determined by: the lockfile and the manifest. */
export function depsKey(root: string): string {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const manifest = readFileSync(join(root, 'package.json'));
  return createHash('sha256').update(lock).update(manifest).digest('hex').slice(0, 16);
}

/**
 * Installs tp's production dependencies for the images' platform on the host and returns the
 * folder holding `node_modules`, from which each image build copies the packages it uses.
 *
 * Dependencies are fetched here, not by `npm ci` inside the image build, because a build
 * container may not reach the npm registry the way the host does (a proxy's CA that only
 * the host trusts, for one). The result is cached by lockfile, so it is installed once.
 */
export function stageProductionDeps(root: string, progress: Progress): Promise<string> {
  return stageCached(
    {
      kind: 'deps',
      key: depsKey(root),
      marker: 'node_modules',
      label: 'Installing production dependencies for the images',
      produce: async (dir) => {
        copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
        copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
        // Fetch the images' platform's prebuilt binaries (koffi's), not the host's, and run no
        // install scripts (no production dependency needs one).
        const { os, cpu, libc } = imagePlatform;
        const args = ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'];
        await run('npm', [...args, `--os=${os}`, `--cpu=${cpu}`, `--libc=${libc}`], {
          cwd: dir,
          maxBuffer: 16 * 1024 * 1024,
        });
      },
      failure: (message) => ({
        code: 'DEPS_INSTALL',
        message: `Installing the images' dependencies with npm failed: ${message}`,
        fix: 'Check that `npm ci` works here (registry access, proxy settings), then try again.',
      }),
    },
    progress,
  );
}
