import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Progress } from '../cli/progress.js';
import { stageCached } from './stage.js';

const run = promisify(execFile);

/**
 * Vendors the netstack's Go modules on the host and returns the folder holding `vendor/`, or
 * undefined when the module has no dependencies. For the same reason as the npm dependencies
 * (deps.ts), the image build fetches nothing itself; `go build` inside it uses the vendor
 * folder. Cached by go.mod and go.sum.
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
  return stageCached(
    {
      kind: 'go-vendor',
      key,
      marker: join('vendor', 'modules.txt'),
      label: 'Vendoring the netstack Go modules for the daemon image',
      produce: async (dir) => {
        await run('go', ['mod', 'vendor', '-o', join(dir, 'vendor')], {
          cwd: moduleDir,
          env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' },
          maxBuffer: 16 * 1024 * 1024,
        });
      },
      failure: (message) => ({
        code: 'GO_VENDOR',
        message: `Vendoring the netstack's Go modules failed: ${message}`,
        fix: 'Building the daemon image needs Go 1.26 on this machine and access to the Go module proxy.',
      }),
    },
    progress,
  );
}
