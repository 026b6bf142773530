/**
 * `--docker-run`: the real `docker run`, with the user's flags as they gave them, in the
 * session daemon's network namespace and with the engagement's environment. The docker CLI,
 * not the Engine API, so that every flag, `-it` with a real terminal and Docker's own signal
 * forwarding behave exactly as with Docker itself.
 */
import { spawn } from 'node:child_process';
import { TpError } from '../lib/errors.js';
import type { RunArgs } from './run-args.js';

export interface DockerRunSpec {
  args: RunArgs;
  /** The daemon container: the container joins its network namespace. */
  daemon: string;
  labels: Record<string, string>;
  /** A private env file (Docker's syntax) with the engagement's single-line values. */
  envFile?: string;
  /**
   * Values Docker's env-file syntax cannot hold (line breaks), passed by name (`-e NAME`) with
   * the value in the docker CLI's own environment. Names that steer the CLI itself are not.
   */
  envByName: Record<string, string>;
  /** `-v` values: volume:path[:ro]. */
  volumes: string[];
}

/** Variables the docker CLI itself reads: a pod's value for them must not reach it. */
export function steersDocker(name: string): boolean {
  return /^(DOCKER_.*|HOME|PATH|XDG_.*|HTTPS?_PROXY|NO_PROXY)$/i.test(name);
}

export function dockerRunArgv(spec: DockerRunSpec): string[] {
  const { args } = spec;
  return [
    'run',
    '--network',
    `container:${spec.daemon}`,
    ...Object.entries(spec.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ...(spec.envFile === undefined ? [] : ['--env-file', spec.envFile]),
    ...Object.keys(spec.envByName)
      .filter((n) => !steersDocker(n))
      .flatMap((n) => ['-e', n]),
    ...spec.volumes.flatMap((v) => ['-v', v]),
    // The engagement ends with the container; nothing of it should be left behind.
    ...(args.rm ? [] : ['--rm']),
    ...args.flags,
    args.image,
    ...args.command,
  ];
}

/**
 * Runs it in the foreground, tp's terminal and streams attached, and resolves to its exit
 * code. SIGINT and SIGTERM to tp stop the container (docker forwards them) and tp waits for it
 * to exit, so the caller still ends the engagement.
 */
export function runDocker(spec: DockerRunSpec): Promise<number> {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(spec.envByName)) {
    if (!steersDocker(k)) env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn('docker', dockerRunArgv(spec), { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const done = (): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.once('error', (err) => {
      done();
      reject(
        new TpError('unavailable', `Cannot run the docker CLI: ${err.message}.`, {
          code: 'DOCKER_CLI_MISSING',
          fix: 'Install the docker CLI (--docker-run runs `docker run`).',
          cause: err,
        }),
      );
    });
    child.once('exit', (code, signal) => {
      done();
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}
