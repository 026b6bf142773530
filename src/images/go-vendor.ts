import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Progress } from '../cli/progress.js';
import { cacheDir } from '../lib/dirs.js';
import { TpError, messageOf } from '../lib/errors.js';

const run = promisify(execFile);

/**
 * Vendors the netstack's Go modules on the host and returns the folder holding `vendor/`, or
 * undefined when the module has no dependencies. For the same reason as the npm dependencies
 * (src/images/deps.ts), the image build fetches nothing itself; `go build` inside it uses the
 * vendor folder. Cached by go.sum.
 */
export async function stageGoVendor(
  moduleDir: string,
  progress: Progress,
): Promise<string | undefined> {
  const sumFile = join(moduleDir, 'go.sum');
  if (!existsSync(sumFile)) return undefined;
  const key = createHash('sha256')
    .update(readFileSync(join(moduleDir, 'go.mod')))
    .update(readFileSync(sumFile))
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheDir(), 'go-vendor', key);
  if (existsSync(join(dir, 'vendor', 'modules.txt'))) return dir;

  const step = progress.step('Vendoring the netstack Go modules for the daemon image');
  mkdirSync(join(cacheDir(), 'go-vendor'), { recursive: true });
  const tmp = mkdtempSync(join(cacheDir(), 'go-vendor', `.${key}-`));
  try {
    await run('go', ['mod', 'vendor', '-o', join(tmp, 'vendor')], {
      cwd: moduleDir,
      env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
      maxBuffer: 16 * 1024 * 1024,
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    step.fail();
    throw new TpError(
      'unavailable',
      `Vendoring the netstack's Go modules failed: ${messageOf(err)}`,
      {
        code: 'GO_VENDOR',
        fix: 'Building the daemon image needs Go 1.26 on this machine and access to the Go module proxy.',
        cause: err,
      },
    );
  }
  step.succeed();
  return dir;
}
