import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`bin/run.js`) as a user would, with extra environment. */
export function tp(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      // `--`: Node 20 would take tp's own --env-file as its option (see bin/run.js).
      ['--', bin, ...args],
      { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ exitCode: code, stdout, stderr });
      },
    );
  });
}

export interface BackgroundTp {
  child: ChildProcess;
  /** What it printed so far. */
  output: () => { stdout: string; stderr: string };
  /** Its exit code once it exits (-1 for a signal). */
  exited: Promise<number>;
}

/** Runs the CLI without waiting for it (`--docker-run`, say); the test's end kills it. */
export function tpBackground(
  t: ExecutionContext,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): BackgroundTp {
  const child = spawn(process.execPath, ['--', bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code) => {
      resolve(code ?? -1);
    });
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return { child, output: () => ({ stdout, stderr }), exited };
}
