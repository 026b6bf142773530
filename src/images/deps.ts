import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Progress } from '../cli/progress.js';
import { cacheDir } from '../lib/dirs.js';
import { TpError, messageOf } from '../lib/errors.js';

const run = promisify(execFile);

/** What the production dependencies are determined by: the lockfile and the manifest. */
export function depsKey(root: string): string {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const manifest = readFileSync(join(root, 'package.json'));
  return createHash('sha256').update(lock).update(manifest).digest('hex').slice(0, 16);
}

/**
 * Installs tp's production dependencies for linux/x64 on the host and returns the folder
 * holding `node_modules`, which the image builds copy in.
 *
 * Dependencies are fetched here, not by `npm ci` inside the image build, because a build
 * container may not reach the npm registry the way the host does (a proxy's CA that only
 * the host trusts, for one). The result is cached by lockfile, so it is installed once.
 */
export async function stageProductionDeps(root: string, progress: Progress): Promise<string> {
  const key = depsKey(root);
  const dir = join(cacheDir(), 'deps', key);
  if (existsSync(join(dir, 'node_modules'))) return dir;

  const step = progress.step('Installing production dependencies for the images');
  mkdirSync(join(cacheDir(), 'deps'), { recursive: true });
  const tmp = mkdtempSync(join(cacheDir(), 'deps', `.${key}-`));
  try {
    copyFileSync(join(root, 'package.json'), join(tmp, 'package.json'));
    copyFileSync(join(root, 'package-lock.json'), join(tmp, 'package-lock.json'));
    // The images run Debian on x64: fetch that platform's prebuilt binaries (koffi's), not
    // the host's, and run no install scripts (none of the production deps needs one).
    await run(
      'npm',
      [
        'ci',
        '--omit=dev',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--os=linux',
        '--cpu=x64',
        '--libc=glibc',
      ],
      { cwd: tmp, maxBuffer: 16 * 1024 * 1024 },
    );
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    step.fail();
    throw new TpError(
      'unavailable',
      `Installing the images' dependencies with npm failed: ${messageOf(err)}`,
      {
        code: 'DEPS_INSTALL',
        fix: 'Check that `npm ci` works here (registry access, proxy settings), then try again.',
        cause: err,
      },
    );
  }
  step.succeed();
  return dir;
}
