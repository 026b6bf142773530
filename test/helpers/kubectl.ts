import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The lab's context; the e2e tier talks to the lab cluster and nothing else. */
export const context = process.env.TP_E2E_CONTEXT ?? 'tp-lab';

export interface KubectlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function kubectl(args: string[], timeoutMs = 60_000): Promise<KubectlResult> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      ['--context', context, ...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ exitCode, stdout, stderr });
      },
    );
  });
}

/** kubectl's stdout, or a thrown error with its stderr. */
export async function kubectlOk(args: string[], timeoutMs?: number): Promise<string> {
  const r = await kubectl(args, timeoutMs);
  if (r.exitCode !== 0)
    throw new Error(`kubectl ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/** Runs the samples binary in a pod of `samples` (the images have no shell). */
export function inPod(target: string, args: string[]): Promise<string> {
  return kubectlOk(['-n', 'samples', 'exec', target, '--', '/samples', ...args]);
}

export interface PortForward extends AsyncDisposable {
  port: number;
  stop(): Promise<void>;
}

/** `kubectl port-forward` to a free local port; the handle ends it. */
export async function portForward(
  namespace: string,
  target: string,
  remotePort: number,
): Promise<PortForward> {
  const child: ChildProcess = spawn(
    'kubectl',
    ['--context', context, '-n', namespace, 'port-forward', target, `:${remotePort}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      reject(new Error(`port-forward to ${target} did not start: ${out}`));
    }, 20_000);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`port-forward exited with ${String(code)}: ${out}`));
    });
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      if (child.exitCode !== null) resolve();
      else {
        child.once('exit', () => {
          resolve();
        });
        child.kill();
      }
    });
    return stopped;
  };
  return { port, stop, [Symbol.asyncDispose]: stop };
}

/**
 * A kubeconfig file for a ServiceAccount of the lab: the lab's server and CA with a fresh
 * token, so a test can act as a user with exactly the permissions it granted.
 */
export async function serviceAccountKubeconfig(
  dir: string,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const token = (
    await kubectlOk(['-n', namespace, 'create', 'token', serviceAccount, '--duration=10m'])
  ).trim();
  const [server, ca] = (
    await kubectlOk([
      'config',
      'view',
      '--raw',
      '--minify',
      '--flatten',
      '-o',
      'jsonpath={.clusters[0].cluster.server} {.clusters[0].cluster.certificate-authority-data}',
    ])
  ).split(' ');
  const file = join(dir, `${serviceAccount}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sa',
      clusters: [{ name: 'lab', cluster: { server, 'certificate-authority-data': ca } }],
      users: [{ name: 'sa', user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'lab', user: 'sa', namespace } }],
    }),
  );
  return file;
}
